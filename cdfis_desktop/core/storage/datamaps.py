"""Stored data maps: a run's per-patch training dynamics, computed once, read in one row.

The computation itself is SQL-free (:mod:`cdfis_desktop.core.datamaps.statistics`); this
module reads its inputs (the dynamics columns of each epoch's ``run_aggregates`` row, in
one snapshot) and keeps its output in ``data_maps``: one row per run of packed arrays
indexed by patch id (``epochs_seen`` int32, ``region`` int8, the rest float32,
little-endian), with the run's
last recorded step when it was computed. A map is fresh while that step is the run's
latest: a run that records more steps (or a resume that truncates) makes it stale.

Thread rules: functions run their own short transaction (``save``) or read snapshot, and
may be called from any thread; the GUI thread reads while the training thread writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from sqlalchemy import Engine

from cdfis_desktop.core.storage.aggregates import COLUMNS
from cdfis_desktop.core.storage.database import read_snapshot, translated_errors
from cdfis_desktop.core.storage.records import StoredDataMap

DATA_MAP_DTYPES: dict[str, np.dtype] = {
    "epochs_seen": np.dtype("<i4"),
    "confidence": np.dtype("<f4"),
    "variability": np.dtype("<f4"),
    "correctness": np.dtype("<f4"),
    "aum": np.dtype("<f4"),
    "final_loss": np.dtype("<f4"),
    "region": np.dtype("i1"),
}
"""The stored arrays and their dtypes, in column order."""
DYNAMICS_INPUTS = ("label_seen", "label_probability_sum", "margin_sum", "label_correct")
"""The aggregate columns a data map is computed from (see :mod:`.aggregates`)."""

EpochFold = Callable[[int, dict[str, np.ndarray]], None]
"""``fold(epoch, arrays)``: called once per epoch in ascending order with the read-only
:data:`DYNAMICS_INPUTS` arrays of that epoch."""


def last_history_step(conn: object, run_id: int) -> int | None:
    """The run's latest recorded history step (None before the first)."""
    value = conn.exec_driver_sql(  # type: ignore[attr-defined]
        "SELECT MAX(step) FROM history_steps WHERE run_id = ?", (run_id,)
    ).scalar()
    return None if value is None else int(value)


def fold_epochs(
    engine: Engine, where: str, run_id: int, fold: EpochFold, *, max_epochs: int | None = None
) -> int | None:
    """Call ``fold`` for each of the run's epochs with history (the first ``max_epochs``
    when given), all read in one snapshot; returns the run's last history step then (None:
    no history, nothing folded)."""
    with translated_errors(where), read_snapshot(engine) as conn:
        last_step = last_history_step(conn, run_id)
        epochs = conn.exec_driver_sql(
            "SELECT epoch FROM run_aggregates WHERE run_id = ? AND epoch >= 0 ORDER BY epoch",
            (run_id,),
        ).scalars()
        wanted = [int(e) for e in epochs][:max_epochs]
        for epoch in wanted:
            row = conn.exec_driver_sql(
                f"SELECT {', '.join(DYNAMICS_INPUTS)} FROM run_aggregates "
                "WHERE run_id = ? AND epoch = ?",
                (run_id, epoch),
            ).one()
            fold(
                epoch,
                {
                    name: np.frombuffer(blob, COLUMNS[name])
                    for name, blob in zip(DYNAMICS_INPUTS, row, strict=True)
                },
            )
    return last_step


def save(
    engine: Engine,
    where: str,
    run_id: int,
    *,
    last_step: int,
    n_epochs: int,
    arrays: dict[str, np.ndarray],
) -> None:
    """Insert or replace the run's data map (``arrays``: :data:`DATA_MAP_DTYPES`, one
    length). Raises ValueError for missing arrays or unequal lengths."""
    lengths = {arrays[name].shape[0] for name in DATA_MAP_DTYPES}
    if len(lengths) != 1:
        raise ValueError(f"data map arrays must have one length (got {sorted(lengths)})")
    blobs = [arrays[n].astype(d, copy=False).tobytes() for n, d in DATA_MAP_DTYPES.items()]
    columns = ("run_id", "last_step", "n_epochs", "computed_at", "n_patches", *DATA_MAP_DTYPES)
    with translated_errors(where), engine.begin() as conn:
        conn.exec_driver_sql(
            f"INSERT OR REPLACE INTO data_maps ({', '.join(columns)}) "
            f"VALUES ({', '.join(['?'] * len(columns))})",
            (run_id, int(last_step), int(n_epochs), time.time(), lengths.pop(), *blobs),
        )


def load(engine: Engine, where: str, run_id: int) -> StoredDataMap | None:
    """The run's stored data map with ``fresh`` telling whether the run has recorded no
    step since (None when none is stored)."""
    with translated_errors(where), read_snapshot(engine) as conn:
        row = conn.exec_driver_sql(
            f"SELECT last_step, n_epochs, computed_at, {', '.join(DATA_MAP_DTYPES)} "
            "FROM data_maps WHERE run_id = ?",
            (run_id,),
        ).one_or_none()
        if row is None:
            return None
        latest = last_history_step(conn, run_id)
    arrays = {
        name: np.frombuffer(blob, dtype)
        for (name, dtype), blob in zip(DATA_MAP_DTYPES.items(), row[3:], strict=True)
    }
    return StoredDataMap(
        run_id=run_id,
        last_step=int(row[0]),
        n_epochs=int(row[1]),
        computed_at=float(row[2]),
        arrays=arrays,
        fresh=latest == int(row[0]),
    )
