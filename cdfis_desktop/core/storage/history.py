"""Batched writer of the importance history and its per-epoch aggregates.

Thread rules: a :class:`HistoryWriter` belongs to the training thread, which is the only
writer of history rows. It buffers numpy arrays and writes every ``flush_every_steps``
steps in ONE transaction: the history rows (driver-level ``executemany``), the upsert of
the per-epoch and cumulative aggregates (``INSERT ... SELECT ... GROUP BY`` over the new
rows, ``ON CONFLICT DO UPDATE``), and the run's ``last_step``. Steps must be recorded in
increasing order (a step is folded into the aggregates once). A crash loses at most the unflushed steps; readers (GUI thread) never see
history without its aggregates.
"""

from __future__ import annotations

from itertools import repeat

import numpy as np
from sqlalchemy import Engine, text, update
from sqlalchemy.engine import Connection

from cdfis_desktop.core.storage.database import translated_errors
from cdfis_desktop.core.storage.schema import ALL_EPOCHS, Run

_Step = tuple[int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""A buffered step: (step, epoch, ids int64, score f64, probability f64, chosen i64, weight f64)."""

_INSERT_HISTORY = (
    "INSERT INTO history (run_id, step, patch_id, epoch, score, probability, times_chosen, "
    "weight) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_AGGREGATE_COLUMNS = (
    "COUNT(*), SUM(times_chosen), SUM(score), score, MAX(step) FROM history "
    "WHERE run_id = :run_id AND step BETWEEN :first AND :last "
)
# SQLite: a bare column (score) beside MAX(step) comes from the row holding the maximum,
# so ``score`` is the last score of the group.
_UPSERT_TAIL = (
    " ON CONFLICT(run_id, epoch, patch_id) DO UPDATE SET "
    "times_scored = times_scored + excluded.times_scored, "
    "times_chosen = times_chosen + excluded.times_chosen, "
    "score_sum = score_sum + excluded.score_sum, "
    "last_score = CASE WHEN excluded.last_step >= last_step "
    "THEN excluded.last_score ELSE last_score END, "
    "last_step = MAX(last_step, excluded.last_step)"
)
_INSERT_STATS = (
    "INSERT INTO epoch_stats (run_id, epoch, patch_id, times_scored, times_chosen, score_sum, "
    "last_score, last_step) "
)
_UPSERT_EPOCH_STATS = (
    _INSERT_STATS
    + "SELECT run_id, epoch, patch_id, "
    + _AGGREGATE_COLUMNS
    + "GROUP BY epoch, patch_id"
    + _UPSERT_TAIL
)
_UPSERT_CUMULATIVE_STATS = (
    _INSERT_STATS
    + f"SELECT run_id, {ALL_EPOCHS}, patch_id, "
    + _AGGREGATE_COLUMNS
    + "GROUP BY patch_id"
    + _UPSERT_TAIL
)


def update_aggregates(conn: Connection, run_id: int, first_step: int, last_step: int) -> None:
    """Fold the history rows of steps ``first_step..last_step`` into the per-epoch and
    cumulative aggregates (inside the caller's transaction). Each step must be folded once."""
    params = {"run_id": run_id, "first": int(first_step), "last": int(last_step)}
    conn.execute(text(_UPSERT_EPOCH_STATS), params)
    conn.execute(text(_UPSERT_CUMULATIVE_STATS), params)


class HistoryWriter:
    """Records the sampler's per-candidate values for each step of one run.

    Create it with :meth:`Project.history_writer`. Use as a context manager or call
    :meth:`close` (which flushes). Raises :class:`StorageFullError` / :class:`StoreError`
    from :meth:`flush` (and from :meth:`record` when it flushes); the failed batch stays
    buffered, everything committed before is kept.
    """

    def __init__(self, engine: Engine, where: str, run_id: int, flush_every_steps: int) -> None:
        if flush_every_steps < 1:
            raise ValueError(f"flush_every_steps must be >= 1 (got {flush_every_steps})")
        self.run_id = run_id
        self.flush_every_steps = flush_every_steps
        self._engine = engine
        self._where = where
        self._buffer: list[_Step] = []
        self._closed = False

    @property
    def pending_steps(self) -> int:
        """Steps recorded but not yet written."""
        return len(self._buffer)

    def record(
        self,
        step: int,
        epoch: int,
        patch_ids: np.ndarray,
        score: np.ndarray,
        probability: np.ndarray,
        times_chosen: np.ndarray,
        weight: np.ndarray,
    ) -> None:
        """Buffer one step: parallel arrays of length n, one entry per candidate scored.

        patch_ids int64[n] (store patch ids, not dataset indices), score float32[n],
        probability float32[n] (the sampler's p_i), times_chosen int[n] (0 if not chosen),
        weight float32[n] (0 where not chosen). A patch listed twice in one step is merged
        (counts and weights summed, first score kept). Flushes every
        ``flush_every_steps`` steps. Raises ValueError on mismatched lengths."""
        if self._closed:
            raise ValueError("this history writer is closed")
        ids = np.asarray(patch_ids, dtype=np.int64).ravel()
        arrays = [np.asarray(a).ravel() for a in (score, probability, times_chosen, weight)]
        if any(a.shape[0] != ids.shape[0] for a in arrays):
            raise ValueError(
                "patch_ids, score, probability, times_chosen and weight must have the same "
                f"length (got {[ids.shape[0], *(a.shape[0] for a in arrays)]})"
            )
        score_a = arrays[0].astype(np.float64)
        prob_a = arrays[1].astype(np.float64)
        chosen_a = arrays[2].astype(np.int64)
        weight_a = arrays[3].astype(np.float64)
        unique, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
        if unique.shape[0] != ids.shape[0]:
            chosen_a = np.bincount(inverse, weights=chosen_a).astype(np.int64)
            weight_a = np.bincount(inverse, weights=weight_a)
            score_a, prob_a, ids = score_a[first], prob_a[first], unique
        self._buffer.append((int(step), int(epoch), ids, score_a, prob_a, chosen_a, weight_a))
        if len(self._buffer) >= self.flush_every_steps:
            self.flush()

    def flush(self) -> None:
        """Write the buffered steps and update aggregates, in one transaction."""
        if not self._buffer:
            return
        steps = np.concatenate([np.full(b[2].shape[0], b[0], np.int64) for b in self._buffer])
        epochs = np.concatenate([np.full(b[2].shape[0], b[1], np.int64) for b in self._buffer])
        ids, score, prob, chosen, weight = (
            np.concatenate([b[k] for b in self._buffer]) for k in range(2, 7)
        )
        history_rows = list(
            zip(
                repeat(self.run_id),
                steps.tolist(),
                ids.tolist(),
                epochs.tolist(),
                score.tolist(),
                prob.tolist(),
                chosen.tolist(),
                weight.tolist(),
                strict=False,
            )
        )
        with translated_errors(self._where), self._engine.begin() as conn:
            conn.exec_driver_sql(_INSERT_HISTORY, history_rows)
            update_aggregates(conn, self.run_id, int(steps.min()), int(steps.max()))
            conn.execute(
                update(Run).where(Run.id == self.run_id).values(last_step=int(steps.max()))
            )
        self._buffer.clear()

    def close(self) -> None:
        """Flush what is buffered and refuse further records."""
        if self._closed:
            return
        self.flush()
        self._closed = True

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
