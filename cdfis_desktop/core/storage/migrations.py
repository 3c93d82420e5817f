"""Versioned schema migrations: a small ordered list of functions, one per version step.

Why not Alembic: the schema has a handful of tables, one shipping backend (SQLite) and
changes that are additive; a list of plain functions ``MIGRATIONS[v]`` (upgrade v -> v+1)
run inside one transaction after a backup copy is simpler to read, test and package than
an Alembic environment. A database newer than the code is never touched (the caller
raises :class:`SchemaVersionError`).

History: version 1 is the prototype layout (slides without a patient group, no per-patch
predictions); version 2 adds ``slides.group_name`` and the ``predictions`` table; version 3
re-keys ``history`` by (run, block, patch, step offset) with float32 score/probability bit
patterns, moves each step's epoch to ``history_steps`` and drops the (run, patch, step)
index (about 45 % less space per history row, see :mod:`.schema`); version 4 replaces the
``epoch_stats`` rows (one per run, epoch and patch) by one ``run_aggregates`` row of packed
arrays per run and epoch (see :mod:`.aggregates`), built from those rows; version 5
replaces the stored cumulative row (``epoch = -1``, rewritten at every history flush) by
one of every epoch but the latest (``epoch = -2``, rewritten once per epoch), summed from
the per-epoch rows, and rebuilds ``history`` without its virtual ``step`` column (``block +
step_offset``) and its foreign key on ``runs`` (each cost ~10 % of the insert time);
version 6 adds the training dynamics (nullable ``history`` columns, zero-filled
``run_aggregates`` arrays: runs recorded before have no dynamics), the ``data_maps`` and
``review_decisions`` tables and ``patches.source``; nothing is rewritten.

Big databases: :func:`backup_sqlite` and :func:`migrate` report progress and can be
cancelled (the transaction rolls back; the database stays at its old version, intact).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, Table, text
from sqlalchemy.engine import Connection

from cdfis_desktop.core.progress import Cancelled, CancelToken, Progress, ProgressCallback
from cdfis_desktop.core.scratch import scratch_file
from cdfis_desktop.core.storage.aggregates import (
    COLUMNS,
    EARLIER_EPOCHS,
    Aggregates,
    load_aggregates,
    max_patch_id,
    save,
)
from cdfis_desktop.core.storage.schema import (
    DataMap,
    History,
    HistoryStep,
    Prediction,
    ReviewDecision,
    RunAggregate,
    encode_f32,
)

V2_BLOCK_STEPS = 64
"""Block length (steps) given to history rows migrated from version 2."""


def _table(model: type) -> Table:
    """The ``Table`` of an ORM class (typed as such for the type checker)."""
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


def _v1_to_v2(conn: Connection, report: StepReport) -> None:
    conn.execute(text("ALTER TABLE slides ADD COLUMN group_name VARCHAR(200) NOT NULL DEFAULT ''"))
    _table(Prediction).create(conn, checkfirst=True)


def _v2_to_v3(conn: Connection, report: StepReport) -> None:
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_history_patch")
    conn.exec_driver_sql("ALTER TABLE history RENAME TO history_v2")
    _table(History).create(conn)
    _table(HistoryStep).create(conn, checkfirst=True)
    conn.exec_driver_sql(
        "INSERT INTO history_steps (run_id, step, epoch, block) SELECT run_id, step, "
        f"MIN(epoch), step - step % {V2_BLOCK_STEPS} FROM history_v2 GROUP BY run_id, step"
    )
    blocks = conn.exec_driver_sql(
        "SELECT DISTINCT run_id, block FROM history_steps ORDER BY run_id, block"
    ).all()
    for done, (run_id, block) in enumerate(blocks):
        report(done, len(blocks))
        rows = conn.exec_driver_sql(
            "SELECT patch_id, step, score, probability, times_chosen, weight FROM history_v2 "
            "WHERE run_id = ? AND step >= ? AND step < ? ORDER BY patch_id, step",
            (run_id, block, block + V2_BLOCK_STEPS),
        ).all()
        columns = list(zip(*rows, strict=True))
        conn.exec_driver_sql(
            "INSERT INTO history (run_id, block, patch_id, step_offset, score_bits, "
            "probability_bits, times_chosen, weight) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            list(
                zip(
                    [run_id] * len(rows),
                    [block] * len(rows),
                    columns[0],
                    [step - block for step in columns[1]],
                    encode_f32(np.asarray(columns[2])),
                    encode_f32(np.asarray(columns[3])),
                    columns[4],
                    columns[5],
                    strict=True,
                )
            ),
        )
    conn.exec_driver_sql("DROP TABLE history_v2")


def _v3_to_v4(conn: Connection, report: StepReport) -> None:
    _table(RunAggregate).create(conn)
    length = max_patch_id(conn) + 1
    keys = conn.exec_driver_sql(
        "SELECT DISTINCT run_id, epoch FROM epoch_stats ORDER BY run_id, epoch"
    ).all()
    for done, (run_id, epoch) in enumerate(keys):
        report(done, len(keys))
        rows = conn.exec_driver_sql(
            "SELECT patch_id, times_scored, times_chosen, score_sum, last_score, last_step "
            "FROM epoch_stats WHERE run_id = ? AND epoch = ?",
            (run_id, epoch),
        ).all()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        table = Aggregates.zeros(max(length, int(ids.max()) + 1))
        table.times_scored[ids] = [r[1] for r in rows]
        table.times_chosen[ids] = [r[2] for r in rows]
        table.score_sum[ids] = [r[3] for r in rows]
        table.last_score[ids] = [r[4] for r in rows]
        table.last_step[ids] = [r[5] for r in rows]
        save(conn, run_id, epoch, table)
    conn.exec_driver_sql("DROP TABLE epoch_stats")


def _v4_to_v5(conn: Connection, report: StepReport) -> None:
    _add_dynamics_columns(conn)
    conn.exec_driver_sql("ALTER TABLE history RENAME TO history_v4")
    _table(History).create(conn)
    old = _column_names(conn, "history_v4")
    columns = ", ".join(c.name for c in History.__table__.columns if c.name in old)
    blocks = conn.exec_driver_sql(
        "SELECT DISTINCT run_id, block FROM history_v4 ORDER BY run_id, block"
    ).all()
    for done, (run_id, block) in enumerate(blocks):  # in key order: appends to the B-tree
        report(done, len(blocks))
        conn.exec_driver_sql(
            f"INSERT INTO history ({columns}) SELECT {columns} FROM history_v4 "
            "WHERE run_id = ? AND block = ? ORDER BY patch_id, step_offset",
            (run_id, block),
        )
    conn.exec_driver_sql("DROP TABLE history_v4")
    conn.exec_driver_sql("DELETE FROM run_aggregates WHERE epoch < 0")
    keys = conn.exec_driver_sql(
        "SELECT run_id, epoch FROM run_aggregates ORDER BY run_id, epoch"
    ).all()
    by_run: dict[int, list[int]] = {}
    for run_id, epoch in keys:
        by_run.setdefault(int(run_id), []).append(int(epoch))
    for run_id, epochs in by_run.items():
        if len(epochs) < 2:
            continue
        earlier = Aggregates.zeros(0)
        for epoch in epochs[:-1]:
            earlier.add(load_aggregates(conn, run_id, epoch))  # type: ignore[arg-type]
        save(conn, run_id, EARLIER_EPOCHS, earlier)


def _v5_to_v6(conn: Connection, report: StepReport) -> None:
    _add_dynamics_columns(conn)
    conn.exec_driver_sql("ALTER TABLE patches ADD COLUMN source TEXT")
    _table(DataMap).create(conn)
    _table(ReviewDecision).create(conn)


DYNAMICS_COLUMNS = {
    "history": ("label_probability_bits", "margin_bits"),
    "run_aggregates": ("label_seen", "label_correct", "label_probability_sum", "margin_sum"),
}
"""The training-dynamics columns of version 6, per table."""


def _add_dynamics_columns(conn: Connection) -> None:
    """Add the version-6 training-dynamics columns that a table lacks: NULL history values,
    zero-filled aggregate arrays (see :mod:`.aggregates`). Migrations from before version
    5 run it first too, since they read and write aggregates with this code's layout."""
    for table, columns in DYNAMICS_COLUMNS.items():
        present = _column_names(conn, table)
        for column in columns:
            if column in present:
                continue
            if table == "history":
                conn.exec_driver_sql(f"ALTER TABLE history ADD COLUMN {column} INTEGER")
                continue
            conn.exec_driver_sql(
                f"ALTER TABLE {table} ADD COLUMN {column} BLOB NOT NULL DEFAULT x''"
            )
            size = COLUMNS[column].itemsize
            conn.exec_driver_sql(f"UPDATE {table} SET {column} = zeroblob(n_patches * {size})")


def _column_names(conn: Connection, table: str) -> set[str]:
    return {str(r[1]) for r in conn.exec_driver_sql(f"PRAGMA table_info({table})")}


StepReport = Callable[[int, int], None]
"""``report(done, total)``: how far one migration is, in units it chooses (history
blocks, aggregate rows, ...)."""

MIGRATIONS: dict[int, Callable[[Connection, StepReport], None]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
    4: _v4_to_v5,
    5: _v5_to_v6,
}
"""``MIGRATIONS[v](conn)`` upgrades a version-``v`` database to ``v + 1``."""


def migrate(
    conn: Connection,
    from_version: int,
    to_version: int,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> None:
    """Apply the migrations from ``from_version`` up to ``to_version`` inside the caller's
    transaction (all or nothing).

    ``progress`` gets one :class:`Progress` per unit of work of each migration (called in
    this thread). ``cancel``: checked between units and, through SQLite's progress
    handler, every :data:`CHECK_EVERY_VM_STEPS` steps of a statement; a cancel raises
    :class:`Cancelled` and the caller's transaction rolls back, leaving the database as it
    was. Other failures propagate the same way."""
    for version in range(from_version, to_version):
        title = f"Upgrading the project database to version {version + 1}"

        def report(done: int, total: int, title: str = title) -> None:
            if cancel is not None:
                cancel.raise_if_cancelled()
            if progress is not None:
                progress(Progress(done, total, title))

        report(0, 0)
        with _interrupted_by(conn, cancel):
            MIGRATIONS[version](conn, report)


CHECK_EVERY_VM_STEPS = 100_000
"""SQLite virtual-machine steps between two looks at the cancel token inside one
statement (a few milliseconds)."""


@contextmanager
def _interrupted_by(conn: Connection, cancel: CancelToken | None) -> Iterator[None]:
    """While inside, SQLite interrupts the running statement of ``conn`` once ``cancel``
    is set, and the error it raises becomes :class:`Cancelled`."""
    if cancel is None or conn.dialect.name != "sqlite":
        yield
        return
    raw = conn.connection.dbapi_connection
    raw.set_progress_handler(lambda: int(cancel.cancelled), CHECK_EVERY_VM_STEPS)  # type: ignore[union-attr]
    try:
        yield
    except Cancelled:
        raise
    except Exception as exc:  # SQLite's "interrupted", as the driver or SQLAlchemy raise it
        if cancel.cancelled:
            raise Cancelled() from exc
        raise
    finally:
        raw.set_progress_handler(None, 0)  # type: ignore[union-attr]


def backup_sqlite(
    engine: Engine,
    db_path: Path,
    version: int,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Copy the SQLite database to ``<db>.v<version>-backup-<unix time>`` with SQLite's
    online backup (consistent even with a WAL), atomically (temp file + rename), in
    chunks of :data:`BACKUP_PAGES` pages: ``progress`` gets the pages copied after each,
    ``cancel`` is checked between them (:class:`Cancelled`; no backup is left).
    Returns the backup path."""
    target = db_path.with_name(f"{db_path.name}.v{version}-backup-{int(time.time())}")
    partial = scratch_file(target, ".partial")  # unique: two processes may open at once
    title = f"Backing up the version-{version} database before upgrading it"

    def copied(_status: int, remaining: int, total: int) -> None:
        if cancel is not None:
            cancel.raise_if_cancelled()
        if progress is not None:
            progress(Progress(total - remaining, total, title))

    try:
        with engine.connect() as conn:
            source = conn.connection.dbapi_connection
            destination = sqlite3.connect(partial)
            try:
                source.backup(destination, pages=BACKUP_PAGES, progress=copied)  # type: ignore[union-attr]
            finally:
                destination.close()
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


BACKUP_PAGES = 1024
"""Pages copied per step of :func:`backup_sqlite` (16 MiB at the store's page size)."""
