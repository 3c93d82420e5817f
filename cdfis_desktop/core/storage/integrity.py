"""Project health: the integrity check at open, and the full check of ``cdfis check``.

**At open** (:func:`ensure_intact`) SQLite's ``PRAGMA quick_check`` reads every page of the
database, so a damaged file (a bad copy, a failing disk, bytes written into it by another
program) is refused with :class:`DamagedDatabaseError` before anything is written to it,
with a message saying how to recover. Reading every page costs about 1 s per 50-100 MiB, so
the check is skipped when the files are exactly as the last process left them that had
the database open and closed it normally: :func:`record_clean_close` stores the size,
modification and status-change times and inode of ``project.db`` and its ``-wal`` in
``cache/database-state.json`` (status-change times cannot be set by programs, so a later
change by anything is noticed). A killed process, a copy, or any write by another program
makes the next open check again. SQLite's own writes are trusted: the state is recorded
only by a process that opened the database checked (or trusted) and closed it. An empty
``-wal`` counts as none: it holds no pages, and a read-only look at the database (the GUI's
:meth:`Project.pending_upgrade` before every open) creates one, which made every GUI open
after a clean close run the check (14 s at 10 million history rows).

**cdfis check** (:func:`check_project`) runs the full ``PRAGMA integrity_check`` and
``foreign_key_check``, verifies that every slide file and registered checkpoint exists,
and finds scratch files left by killed writers (:mod:`cdfis_desktop.core.scratch`), which
``fix`` deletes.

Recovery (in the messages): restore a backup made before an upgrade
(``project.db.v<N>-backup-<time>``), or rebuild what is readable with the ``sqlite3``
shell's ``.recover`` into a new file and put that in place of ``project.db``.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from cdfis_desktop.core import scratch
from cdfis_desktop.core.errors import DamagedDatabaseError, StoreError
from cdfis_desktop.core.progress import Cancelled, CancelToken, Progress, ProgressCallback
from cdfis_desktop.core.storage.database import translated_errors

LONG_CHECK_BYTES = 16 * 2**20
"""An integrity check at open that reads at least this much (about 0.2-0.3 s) is long
enough to show progress: the GUI opens the project behind a progress dialog, the CLI
prints progress lines; a smaller one opens silently."""

STATE_FILE = "database-state.json"
"""In the project's ``cache/``: the database files' state at the last clean close."""
MAX_PROBLEMS_LISTED = 20
CANCEL_POLL_S = 0.1
"""Seconds between two looks at the cancel token during a check."""
_DAMAGE_WORDS = ("malformed", "corrupt", "disk i/o error")


def check_needed(db_path: Path, state_folder: Path) -> bool:
    """Whether :func:`ensure_intact` will run the check: the files of ``db_path`` differ
    from their state at the last clean close (recorded in ``state_folder``). Reads file
    metadata only; any thread."""
    return _state_of(db_path) != _recorded_state(state_folder)


def ensure_intact(
    engine: Engine,
    db_path: Path,
    state_folder: Path,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> None:
    """Raise :class:`DamagedDatabaseError` when the SQLite database at ``db_path`` (open
    through ``engine``) fails ``quick_check``; skipped unless :func:`check_needed`. The
    check (about 1 s per 50-100 MiB) tells ``progress`` once that it starts (total 0:
    SQLite says nothing until it is done) and stops soon after ``cancel`` with
    :class:`Cancelled`."""
    if not check_needed(db_path, state_folder):
        return
    if progress is not None:
        mib = database_bytes(db_path) / 2**20
        progress(
            Progress(0, 0, f"Checking the database ({mib:,.0f} MiB): it was not closed normally")
        )
    if cancel is not None:
        cancel.raise_if_cancelled()
    problems = quick_check(engine, db_path, cancel=cancel)
    if problems:
        raise damaged_error(db_path, problems)


def database_bytes(db_path: Path) -> int:
    """Size of the database file and its WAL, bytes (what a check reads)."""
    return sum(state[0] for state in _state_of(db_path).values() if state is not None)


def quick_check(engine: Engine, db_path: Path, *, cancel: CancelToken | None = None) -> list[str]:
    """SQLite's ``quick_check`` of the database: [] when intact, else its findings; stops
    soon after ``cancel`` with :class:`Cancelled`."""
    return _run_check(engine, db_path, "quick_check", cancel=cancel)


def record_clean_close(db_path: Path, state_folder: Path) -> None:
    """After the last connection of this process closed: record the files' state, so the
    next open can skip the check. Never raises (a read-only folder records nothing)."""
    state = _state_of(db_path)
    target = state_folder / STATE_FILE
    try:
        tmp = scratch.scratch_file(target, ".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, target)
    except OSError:
        return


def damaged_error(db_path: Path, problems: list[str]) -> DamagedDatabaseError:
    """The error for a damaged database: what SQLite found and how to recover."""
    backups = sorted(db_path.parent.glob(f"{db_path.name}.v*-backup-*"))
    restore = (
        f"restore the newest backup made before an upgrade ({backups[-1].name}: copy it "
        f"to {db_path.name})"
        if backups
        else "restore project.db from a backup copy"
    )
    return DamagedDatabaseError(
        f"{db_path} is damaged (SQLite's integrity check: {problems[0]}"
        f"{f'; and {len(problems) - 1} more' if len(problems) > 1 else ''}); nothing was "
        f"written to it. Close every cdfis program, keep a copy of the damaged file, then "
        f"either {restore}, or rebuild what is readable: sqlite3 {db_path.name} .recover | "
        f"sqlite3 recovered.db, then replace {db_path.name} by recovered.db. "
        "'cdfis check --project DIR' lists the problems",
        path=db_path,
        problems=problems,
    )


@dataclass
class CheckReport:
    """What :func:`check_project` found: ``problems`` (sentences), ``orphans`` (scratch
    files of killed writers), ``removed`` (orphans deleted with ``fix``), ``checked``
    (what was looked at, for the summary)."""

    folder: Path
    problems: list[str] = field(default_factory=list)
    orphans: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        """Problems plus scratch files still there."""
        return len(self.problems) + len(self.orphans) - len(self.removed)

    @property
    def healthy(self) -> bool:
        """No problem, and no orphan left behind."""
        return self.remaining == 0

    def lines(self) -> list[str]:
        """A human-readable report, one finding per line."""
        out = [f"checked: {item}" for item in self.checked]
        out += [f"problem: {p}" for p in self.problems]
        for path in self.orphans:
            verb = "removed" if path in self.removed else "left by a killed process"
            out.append(f"scratch file {verb}: {path}")
        if self.orphans and not self.removed:
            out.append("run with --fix to delete the scratch files")
        out.append(f"{self.folder}: {'healthy' if self.healthy else 'problems found'}")
        return out


def check_project(folder: str | os.PathLike[str], *, fix: bool = False) -> CheckReport:
    """The full check of a project folder (see the module docstring); with ``fix``,
    orphaned scratch files are deleted. A damaged database is reported (with how to
    recover), not raised; other open errors (not a project, newer schema) propagate."""
    from cdfis_desktop.core.storage.project import Project

    report = CheckReport(Path(folder).expanduser().resolve())
    try:
        project = Project.open(report.folder)
    except DamagedDatabaseError as exc:
        report.checked.append(f"database {exc.path} (integrity check)")
        report.problems.extend(exc.problems[:MAX_PROBLEMS_LISTED])
        report.problems.append(str(exc))
        _find_orphans(report, report.folder, fix)
        return report
    with project:
        _check_database(project, report)
        _check_files(project, report)
        _find_orphans(report, project.folder, fix)
    return report


def _check_database(project: Any, report: CheckReport) -> None:
    report.checked.append(f"database {project.db_path} (integrity and foreign keys)")
    problems = _run_check(project.engine, project.db_path, "integrity_check")
    with translated_errors(str(project.db_path)), project.engine.connect() as conn:
        rows = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    problems += [f"row {r[1]} of table {r[0]} refers to a missing row of {r[2]}" for r in rows]
    report.problems.extend(problems[:MAX_PROBLEMS_LISTED])
    if problems:
        report.problems.append(str(damaged_error(project.db_path, problems)))


def _check_files(project: Any, report: CheckReport) -> None:
    slides = project.slides()
    report.checked.append(f"{len(slides)} slide file(s)")
    for slide in slides:
        path = slide.file
        if not path.exists():
            report.problems.append(
                f"slide {slide.id}: its file {path} is missing; put it back, or remove the "
                f"slide (cdfis slides remove --project {project.folder} {slide.id})"
            )
    runs = project.runs()
    count = 0
    for run in runs:
        for checkpoint in project.checkpoints(run.id):
            count += 1
            if not Path(checkpoint.path).exists():
                report.problems.append(
                    f"run {run.id}: checkpoint of step {checkpoint.step} is missing "
                    f"({checkpoint.path}); the run can only resume from an earlier one"
                )
    report.checked.append(f"{count} checkpoint file(s) of {len(runs)} run(s)")


def _find_orphans(report: CheckReport, folder: Path, fix: bool) -> None:
    places = [folder, *(folder / sub for sub in ("checkpoints", "cache", "slides"))]
    report.orphans = scratch.orphans_in(places)
    report.checked.append("scratch files in " + ", ".join(p.name or str(p) for p in places))
    if fix:
        report.removed = scratch.remove(report.orphans)


def _run_check(
    engine: Engine, db_path: Path, pragma: str, *, cancel: CancelToken | None = None
) -> list[str]:
    """Findings of ``PRAGMA quick_check`` / ``integrity_check`` ([] when "ok"); a file too
    damaged to run it counts as one finding. ``cancel`` interrupts it (within
    :data:`CANCEL_POLL_S`) with :class:`Cancelled`."""
    try:
        with translated_errors(str(db_path)), engine.connect() as conn:
            with _interrupted_on(cancel, conn.connection.dbapi_connection):
                rows = conn.exec_driver_sql(f"PRAGMA {pragma}({MAX_PROBLEMS_LISTED})").all()
    except StoreError as exc:  # too damaged to run the check: that is the finding
        if cancel is not None and cancel.cancelled:
            raise Cancelled() from exc
        cause = str(exc.__cause__ or exc).lower()
        if any(word in cause for word in _DAMAGE_WORDS):
            return [str(getattr(exc.__cause__, "orig", None) or exc.__cause__ or exc)]
        raise
    findings = [str(r[0]) for r in rows]
    return [] if findings == ["ok"] else findings


@contextmanager
def _interrupted_on(cancel: CancelToken | None, dbapi_connection: Any) -> Iterator[None]:
    """While the block runs, a watcher thread interrupts the SQLite connection's statement
    once ``cancel`` is set (SQLite's progress handler is not called during the B-tree
    part of a check, more than half of its time; ``interrupt()`` is)."""
    if cancel is None:
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while not done.wait(CANCEL_POLL_S):
            if cancel.cancelled:
                dbapi_connection.interrupt()
                return

    watcher = threading.Thread(target=watch, name="integrity-check-cancel", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def _state_of(db_path: Path) -> dict[str, list[int] | None]:
    """Size, mtime, ctime (ns) and inode of the database file and its WAL (None: absent,
    or a WAL of 0 bytes, which holds no pages)."""
    state: dict[str, list[int] | None] = {}
    for path in (db_path, db_path.with_name(db_path.name + "-wal")):
        try:
            st = path.stat()
        except OSError:
            state[path.name] = None
            continue
        empty_wal = path != db_path and st.st_size == 0
        stat = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        state[path.name] = None if empty_wal else stat
    return state


def _recorded_state(state_folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((state_folder / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
