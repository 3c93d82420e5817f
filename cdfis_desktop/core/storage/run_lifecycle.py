"""The lifecycle of a run: creation, status, the writer lock, recovery of runs whose
process died, truncation on resume, and the history writer of a running run.

A run is written by one process at a time: it holds the run's OS file lock
(:class:`~.locks.RunLocks`) from creation (or resume) until it ends. A run still
``running`` whose lock is free was left by a dead process and is marked ``interrupted``.

SQL style: SQLAlchemy Core expressions on the tables of :mod:`.schema`, one transaction
per call. Thread rules: the training thread (the run's only writer) calls everything but
:func:`recover_interrupted_runs`, which any thread may call.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from typing import Any

import numpy as np
from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy import update as update_rows

from cdfis_desktop import __version__
from cdfis_desktop.core.config import RunConfig
from cdfis_desktop.core.errors import ConfigError, StoreError
from cdfis_desktop.core.storage import queries
from cdfis_desktop.core.storage.database import translated_errors
from cdfis_desktop.core.storage.history import HistoryWriter, rebuild_aggregates
from cdfis_desktop.core.storage.locks import RunLock, RunLocks, writer_identity
from cdfis_desktop.core.storage.records import RUN_STATUSES
from cdfis_desktop.core.storage.schema import Checkpoint, History, HistoryStep, Metric, Run


def create_run(
    engine: Engine, where: str, locks: RunLocks, config: RunConfig, *, n_train: int,
    device: str | None, name: str,
) -> int:  # fmt: skip
    """Validate ``config``, record a ``running`` run and take its lock (see
    ``Project.create_run``); returns the run id."""
    config.validate()
    pid, host = writer_identity()
    with translated_errors(where), engine.begin() as conn:
        result = conn.execute(
            insert(Run).values(
                name=name,
                config=json.dumps(config.to_dict(), sort_keys=True),
                sampler_rule=config.sampler.rule,
                sampler_mode=config.sampler.mode,
                metric=config.sampler.metric,
                seed=int(config.seed),
                device=device or config.device,
                n_train=int(n_train),
                versions=json.dumps(software_versions()),
                status="running",
                started_at=time.time(),
                writer_pid=pid,
                writer_host=host,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        run_id = int(key[0])
        # Lock before the commit makes the run visible: no reader can see it "running"
        # without a live lock and mark it interrupted.
        locks.take(run_id)
    return run_id


def set_run_status(
    engine: Engine, where: str, locks: RunLocks, run_id: int, status: str, error: str | None
) -> None:
    """Set a run's status: ``running`` takes the lock, any other status records the end
    time and releases it (see ``Project.set_run_status``)."""
    if status not in RUN_STATUSES:
        raise ConfigError(f"unknown run status {status!r}; choose one of: {RUN_STATUSES}")
    locks.take(run_id)
    values: dict[str, Any]
    if status == "running":
        pid, host = writer_identity()
        values = {"ended_at": None, "error": None, "writer_pid": pid, "writer_host": host}
    else:
        values = {"ended_at": time.time(), "error": error}
    with translated_errors(where), engine.begin() as conn:
        result = conn.execute(
            update_rows(Run).where(Run.id == run_id).values(status=status, **values)
        )
        if result.rowcount == 0:
            raise StoreError(f"no run with id {run_id} in {where}")
    if status != "running":
        locks.release(run_id)


def set_switch_step(engine: Engine, where: str, run_id: int, step: int) -> None:
    """Record the step at which importance sampling switched on."""
    with translated_errors(where), engine.begin() as conn:
        conn.execute(update_rows(Run).where(Run.id == run_id).values(switch_step=int(step)))


def recover_interrupted_runs(engine: Engine, where: str, locks: RunLocks) -> list[int]:
    """Mark ``interrupted`` every ``running`` run whose writer lock is free (its process
    died), holding the lock while marking it; returns the ids marked."""
    stale = []
    for run_id in queries.running_run_ids(engine, where):
        lock = RunLock(locks.locks_dir, run_id)
        if locks.holds(run_id) or not lock.try_acquire():
            continue  # written by this project or by a live process
        try:
            with translated_errors(where), engine.begin() as conn:
                marked = conn.execute(
                    update_rows(Run)
                    .where(Run.id == run_id, Run.status == "running")
                    .values(
                        status="interrupted",
                        error="the writing process ended without closing the run",
                    )
                ).rowcount
        finally:
            lock.release()
        if marked:
            stale.append(run_id)
    return stale


def history_writer(
    engine: Engine,
    where: str,
    locks: RunLocks,
    run_id: int,
    *,
    flush_every_steps: int,
    resume_after_step: int | None,
) -> HistoryWriter:
    """The batched history writer of a ``running`` run (see ``Project.history_writer``)."""
    status = queries.run_status(engine, where, run_id)
    if status != "running":
        raise StoreError(
            f"run {run_id} is {status}; set it running (resume) before writing history"
        )
    locks.take(run_id)
    if resume_after_step is not None:
        truncate_run(engine, where, locks, run_id, resume_after_step)
    last_recorded = queries.last_recorded_step(engine, where, run_id)
    return HistoryWriter(engine, where, run_id, flush_every_steps, last_recorded)


def truncate_run(engine: Engine, where: str, locks: RunLocks, run_id: int, after_step: int) -> None:
    """Delete the run's history, metrics and checkpoints after ``after_step`` and rebuild
    its aggregates from what remains, in one transaction, under the run's lock."""
    locks.take(run_id)
    step = int(after_step)
    # history is keyed by block: seek to the first block holding a later step
    first_block = (
        select(func.coalesce(func.min(HistoryStep.block), step + 1))
        .where(HistoryStep.run_id == run_id, HistoryStep.step > step)
        .scalar_subquery()
    )
    with translated_errors(where), engine.begin() as conn:
        conn.execute(
            delete(History).where(
                History.run_id == run_id,
                History.block >= first_block,
                History.block + History.step_offset > step,
            )
        )
        for table in (HistoryStep, Metric, Checkpoint):
            conn.execute(delete(table).where(table.run_id == run_id, table.step > step))
        rebuild_aggregates(conn, run_id)
        last = conn.execute(
            select(func.max(HistoryStep.step)).where(HistoryStep.run_id == run_id)
        ).scalar()
        conn.execute(update_rows(Run).where(Run.id == run_id).values(last_step=last))


def software_versions() -> dict[str, str]:
    """Versions recorded with each run: python, cdfis, numpy, sqlalchemy, torch if loaded."""
    import sqlalchemy

    versions = {
        "python": platform.python_version(),
        "cdfis": __version__,
        "numpy": np.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "platform": platform.platform(),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        versions["torch"] = str(getattr(torch, "__version__", "unknown"))
    return versions
