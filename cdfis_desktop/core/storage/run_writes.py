"""What a running run writes besides its importance history (:mod:`.history`): metrics,
predictions and checkpoint registrations.

SQL style: SQLite statements with positional parameters run on the driver
(``Connection.exec_driver_sql``); merges are ``INSERT ... ON CONFLICT DO UPDATE``. Why:
the predictions of 100,000 patches are stored 2x faster this way than through
SQLAlchemy's Core upsert, an executemany of dicts (``benchmarks/store_writes.py``). One
transaction per call. Thread rules: the training thread, the run's only writer.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from cdfis_desktop.core.storage.database import translated_errors
from cdfis_desktop.core.storage.schema import METRIC_COLUMNS


def log_metrics(
    engine: Engine,
    where: str,
    run_id: int,
    step: int,
    epoch: int,
    wall_s: float,
    values: Mapping[str, float | None],
) -> None:
    """Record metrics at a step (``values``: some of :data:`~.schema.METRIC_COLUMNS`),
    merged with a row of the same step: a value given later wins, None keeps the earlier
    one (see ``Project.log_metrics``). The run's ``last_step`` follows."""
    merge = ", ".join(f"{c} = COALESCE(excluded.{c}, {c})" for c in METRIC_COLUMNS)
    sql = (
        f"INSERT INTO metrics (run_id, step, epoch, wall_s, {', '.join(METRIC_COLUMNS)}) "
        f"VALUES ({', '.join('?' * (4 + len(METRIC_COLUMNS)))}) ON CONFLICT(run_id, step) "
        f"DO UPDATE SET epoch = excluded.epoch, wall_s = excluded.wall_s, {merge}"
    )
    row = (
        int(run_id),
        int(step),
        int(epoch),
        float(wall_s),
        *(_float_or_none(values.get(name)) for name in METRIC_COLUMNS),
    )
    with translated_errors(where), engine.begin() as conn:
        conn.exec_driver_sql(sql, row)
        conn.exec_driver_sql(
            "UPDATE runs SET last_step = MAX(COALESCE(last_step, 0), ?) WHERE id = ?",
            (int(step), int(run_id)),
        )


def set_predictions(
    engine: Engine,
    where: str,
    run_id: int,
    epoch: int,
    patch_ids: np.ndarray,
    predicted_label: np.ndarray,
    probability: np.ndarray,
) -> None:
    """Store per-patch predictions at an epoch, replacing earlier ones of that epoch (see
    ``Project.set_predictions``)."""
    ids = np.asarray(patch_ids, dtype=np.int64).ravel()
    labels = np.asarray(predicted_label, dtype=np.int64).ravel()
    probs = np.asarray(probability, dtype=np.float64).ravel()
    if not ids.shape == labels.shape == probs.shape:
        raise ValueError("patch_ids, predicted_label and probability must have one length")
    n = ids.shape[0]
    rows = list(
        zip(
            [int(run_id)] * n,
            [int(epoch)] * n,
            ids.tolist(),
            labels.tolist(),
            probs.tolist(),
            strict=True,
        )
    )
    with translated_errors(where), engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO predictions (run_id, epoch, patch_id, predicted_label, probability) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(run_id, epoch, patch_id) DO UPDATE SET "
            "predicted_label = excluded.predicted_label, probability = excluded.probability",
            rows,
        )


def register_checkpoint(
    engine: Engine,
    where: str,
    folder: Path,
    run_id: int,
    step: int,
    epoch: int,
    path: str | os.PathLike[str],
) -> int:
    """Register a written checkpoint file, relative to the project ``folder`` when inside
    it (so the project can be moved); returns its id."""
    target = Path(path).resolve()
    stored = str(target.relative_to(folder)) if target.is_relative_to(folder) else str(target)
    with translated_errors(where), engine.begin() as conn:
        result = conn.exec_driver_sql(
            "INSERT INTO checkpoints (run_id, step, epoch, path, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (int(run_id), int(step), int(epoch), stored, time.time()),
        )
        return int(result.lastrowid)


def _float_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)
