"""Issue 16: a damaged database is refused at open (with how to recover), the check is
skipped after a clean close, ``cdfis check`` finds what is wrong, ``database_url`` stays
inside the project, and the commits ending a batch of steps are synced."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event

from cdfis_desktop.cli.main import main
from cdfis_desktop.core.config import RunConfig
from cdfis_desktop.core.errors import DamagedDatabaseError, StoreError
from cdfis_desktop.core.progress import Cancelled, CancelToken, Progress
from cdfis_desktop.core.scratch import host_tag
from cdfis_desktop.core.storage import Project, integrity


def copy_of(trained_project, tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    shutil.copytree(trained_project.folder, folder)
    return folder


def damage_table(db_path: Path, table: str) -> None:
    """Overwrite the header of ``table``'s root B-tree page with garbage (as a bad copy or
    another program writing into the file would)."""
    conn = sqlite3.connect(db_path)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    conn.close()
    with db_path.open("r+b") as handle:
        handle.seek((root - 1) * page_size)
        handle.write(np.random.default_rng(0).integers(0, 256, 64, dtype=np.uint8).tobytes())


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_damaged_database_is_refused_by_every_command(trained_project, tmp_path, capsys) -> None:
    """Garbage in the history table's root page. Before: runs, report and export exited 0
    and a new training appended to the damaged table."""
    folder = copy_of(trained_project, tmp_path)
    db = folder / "project.db"
    damage_table(db, "history")
    before = digest(db)
    for args in (
        ["runs", "--project", folder],
        ["report", "--project", folder, "-o", tmp_path / "r.pdf"],
        ["export", "--project", folder, "--format", "csv", "-o", tmp_path / "x.csv"],
        ["train", "--project", folder, "--steps", "1", "--batch", "4"],
        ["slides", "remove", "--project", folder, "1"],
    ):
        assert main([str(a) for a in args]) == 2, args
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("error: ") and "is damaged" in err and ".recover" in err
        assert "nothing was written" in err
    assert digest(db) == before
    assert not (tmp_path / "r.pdf").exists() and not (tmp_path / "x.csv").exists()
    code = main(["check", "--project", str(folder)])
    out, err = capsys.readouterr()
    assert code == 2
    assert "problem: " in out and "problems found" in out


def test_the_damage_message_names_the_newest_backup(trained_project, tmp_path) -> None:
    folder = copy_of(trained_project, tmp_path)
    for stamp in (1000, 2000):
        shutil.copy(folder / "project.db", folder / f"project.db.v4-backup-{stamp}")
    damage_table(folder / "project.db", "history")
    with pytest.raises(DamagedDatabaseError, match="project.db.v4-backup-2000"):
        Project.open(folder)


def test_the_check_at_open_is_skipped_only_after_a_clean_close(
    trained_project, tmp_path, quick_checks
) -> None:
    folder = copy_of(trained_project, tmp_path)
    Project.open(folder).close()  # a copy: checked once
    assert len(quick_checks) == 1
    Project.open(folder).close()  # as the last process left it: not checked again
    assert len(quick_checks) == 1
    project = Project.open(folder)  # writes, then is never closed, like a killed process
    project.set_class_names(project.class_names())
    project.engine.dispose()
    Project.open(folder).close()
    assert len(quick_checks) == 2
    stat = (folder / "project.db").stat()
    os.utime(folder / "project.db", ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same times
    Project.open(folder).close()  # but something touched the file: checked
    assert len(quick_checks) == 3


def test_history_written_by_the_writer_then_closed_is_not_checked_again(
    tmp_path, quick_checks, row_patches
) -> None:
    """Before: the GUI's read-only look for a pending upgrade left an empty ``-wal``, so
    every GUI open after a clean close ran the check (14 s at 10 million history rows)."""
    folder = tmp_path / "p"
    with Project.create(folder) as project:
        _, ids = row_patches(project, 50)
        run_id = project.create_run(RunConfig(), n_train=ids.size, device="cpu")
        with project.history_writer(run_id, flush_every_steps=2) as writer:
            for step in range(5):
                chosen = (np.arange(ids.size) < 4).astype(np.int32)
                scores = np.full(ids.size, 1 / ids.size, np.float32)
                writer.record(step, 0, ids, scores, scores, chosen, chosen.astype(np.float32))
        project.set_run_status(run_id, "finished")
    checked = len(quick_checks)
    assert Project.pending_upgrade(folder) is None  # what the GUI asks before opening
    assert Project.pending_check_bytes(folder) == 0
    Project.open(folder).close()
    assert len(quick_checks) == checked


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://user:pw@db.example.org/cdfis",
        "mysql+pymysql://db.example.org/cdfis",
        "sqlite:///:memory:",
        "sqlite:///{outside}/elsewhere.db",
        "{outside}/elsewhere.db",
        "../elsewhere.db",
        "link/elsewhere.db",
    ],
)
def test_database_url_stays_inside_the_project(trained_project, tmp_path, url) -> None:
    """Before: any URL was used as given: a file outside the folder was created by even
    'cdfis runs', errors named project.db, and a server URL needed (and would use) a
    network driver."""
    folder = copy_of(trained_project, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (folder / "link").symlink_to(outside)
    toml = folder / "project.toml"
    toml.write_text(toml.read_text() + f'database_url = "{url.format(outside=outside)}"\n')
    with pytest.raises(StoreError, match="database_url"):
        Project.open(folder)
    assert list(outside.iterdir()) == [] and not (tmp_path / "elsewhere.db").exists()


def test_a_database_file_inside_the_project_may_be_named(trained_project, tmp_path) -> None:
    folder = copy_of(trained_project, tmp_path)
    (folder / "data").mkdir()
    shutil.move(folder / "project.db", folder / "data" / "runs.db")
    toml = folder / "project.toml"
    toml.write_text(toml.read_text() + 'database_url = "sqlite:///data/runs.db"\n')
    with Project.open(folder) as project:
        assert project.db_path == folder / "data" / "runs.db"
        assert len(project.runs()) == 2
    assert not (folder / "project.db").exists()


def test_a_batch_of_steps_is_synced_and_other_commits_are_not(trained_project, tmp_path) -> None:
    """The durability choice: history flushes commit with synchronous=FULL (2), the
    per-step metric commits with NORMAL (1). Before: every commit was NORMAL."""
    folder = copy_of(trained_project, tmp_path)
    with Project.open(folder) as project:
        levels: list[int] = []

        @event.listens_for(project.engine, "commit")
        def on_commit(conn) -> None:  # noqa: ANN001
            dbapi = conn.connection.dbapi_connection
            levels.append(dbapi.execute("PRAGMA synchronous").fetchone()[0])

        run_id = project.create_run(RunConfig(), n_train=4, device="cpu")
        ids = project.patches().id[:4]
        levels.clear()
        with project.history_writer(run_id, flush_every_steps=2) as writer:
            zeros = np.zeros(4, np.float32)
            for step in (1, 2):
                writer.record(step, 0, ids, zeros, zeros + 0.25, np.ones(4, int), zeros)
        assert levels == [2]
        project.log_metrics(run_id, 2, 0, 1.0, train_loss=0.5)
        assert levels == [2, 1]


def test_check_fix_removes_the_scratch_of_killed_processes(
    trained_project, tmp_path, capsys
) -> None:
    import subprocess
    import sys

    folder = copy_of(trained_project, tmp_path)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    tag = f"cdfis-{host_tag()}-{child.pid}"
    orphans = [
        folder / "checkpoints" / f".run00001-step000000400.pt.{tag}.a1b2c3.tmp",
        folder / "slides" / f".8863.tiff.{tag}.a1b2c3.tmp",
    ]
    for path in orphans:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"partial")
    (folder / "slides" / f".pyramid-{tag}-x1y2").mkdir()
    assert main(["check", "--project", str(folder)]) == 2
    out = capsys.readouterr().out
    assert out.count("left by a killed process") == 3 and "--fix" in out
    assert main(["check", "--project", str(folder), "--fix"]) == 0
    out = capsys.readouterr().out
    assert out.count("scratch file removed") == 3 and "healthy" in out
    assert not any(p.name.startswith(".") for p in (folder / "slides").iterdir())
    assert not any(p.name.startswith(".") for p in (folder / "checkpoints").iterdir())


def test_check_lists_missing_slide_and_checkpoint_files(trained_project, tmp_path, capsys) -> None:
    folder = copy_of(trained_project, tmp_path)
    with Project.open(folder) as project:
        slide_id = project.add_slide(
            tmp_path / "gone.svs", fingerprint="gone", width=10, height=10, mpp=0.5
        )
        project.register_checkpoint(1, 30, 2, folder / "checkpoints" / "run00001-step30.pt")
    assert main(["check", "--project", str(folder)]) == 2
    out = capsys.readouterr().out
    assert f"problem: slide {slide_id}: its file {tmp_path / 'gone.svs'} is missing" in out
    assert f"cdfis slides remove --project {folder} {slide_id}" in out
    assert "run 1: checkpoint of step 30 is missing" in out


def test_a_cancelled_check_opens_nothing_and_checks_again_next_time(
    trained_project, tmp_path, quick_checks
) -> None:
    """Cancel while the check of an unclean database runs (here: at its progress report):
    :class:`Cancelled`, no project, and the next open still checks."""
    folder = copy_of(trained_project, tmp_path)
    token = CancelToken()
    reports: list[Progress] = []

    def cancel_at_start(progress: Progress) -> None:
        reports.append(progress)
        token.cancel()

    assert Project.pending_check_bytes(folder) > 0
    with pytest.raises(Cancelled):
        Project.open(folder, progress=cancel_at_start, cancel=token)
    assert "Checking the database" in reports[0].message
    assert Project.pending_check_bytes(folder) > 0
    Project.open(folder).close()
    assert len(quick_checks) == 1
    assert Project.pending_check_bytes(folder) == 0


def test_cancel_interrupts_a_running_check_statement(tmp_path) -> None:
    """The cancel watcher interrupts SQLite inside one long statement (the B-tree part of
    ``quick_check`` never calls SQLite's progress handler)."""
    conn = sqlite3.connect(tmp_path / "x.db", check_same_thread=False)
    token = CancelToken()
    timer = threading.Timer(0.2, token.cancel)
    timer.start()
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c"
    with pytest.raises(sqlite3.OperationalError, match="interrupted"):
        with integrity._interrupted_on(token, conn):
            conn.execute(endless).fetchall()
    timer.join()
    conn.close()
