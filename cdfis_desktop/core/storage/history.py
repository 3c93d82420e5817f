"""Batched writer of the importance history and its per-epoch aggregates.

Thread rules: a :class:`HistoryWriter` belongs to the training thread, which is the only
writer of history rows. It buffers numpy arrays and writes every ``flush_every_steps``
steps in ONE transaction: the history rows and the batch's ``history_steps`` rows
(driver-level ``executemany``), the per-epoch and cumulative aggregates of the touched
patches (summed in numpy, :func:`fold_aggregates`, then upserted with ``ON CONFLICT DO
UPDATE``), and the run's ``last_step``. Steps must be recorded in increasing order (a step
is folded into the aggregates once). A crash loses at most the unflushed steps (whole
batches only); readers (GUI thread) never see history without its aggregates.
"""

from __future__ import annotations

from itertools import repeat

import numpy as np
from sqlalchemy import Engine, update
from sqlalchemy.engine import Connection

from cdfis_desktop.core.storage.database import translated_errors
from cdfis_desktop.core.storage.schema import ALL_EPOCHS, Run, decode_f32, encode_f32

_Step = tuple[int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""A buffered step: (step, epoch, ids int64, score f32, probability f32, chosen i64,
weight f64), ids unique."""

_INSERT_HISTORY = (
    "INSERT INTO history (run_id, block, patch_id, step_offset, score_bits, probability_bits, "
    "times_chosen, weight) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_STEPS = "INSERT INTO history_steps (run_id, step, epoch, block) VALUES (?, ?, ?, ?)"
_UPSERT_STATS = (
    "INSERT INTO epoch_stats (run_id, epoch, patch_id, times_scored, times_chosen, score_sum, "
    "last_score, last_step) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(run_id, epoch, patch_id) DO UPDATE SET "
    "times_scored = times_scored + excluded.times_scored, "
    "times_chosen = times_chosen + excluded.times_chosen, "
    "score_sum = score_sum + excluded.score_sum, "
    "last_score = CASE WHEN excluded.last_step >= last_step "
    "THEN excluded.last_score ELSE last_score END, "
    "last_step = MAX(last_step, excluded.last_step)"
)
REBUILD_CHUNK_STEPS = 1000
"""Steps read per chunk when aggregates are rebuilt (bounds memory: ~40 MB at 1024 rows
per step)."""


def fold_aggregates(
    conn: Connection,
    run_id: int,
    step: np.ndarray,
    epoch: np.ndarray,
    patch_id: np.ndarray,
    score: np.ndarray,
    times_chosen: np.ndarray,
) -> None:
    """Add history rows (parallel arrays of length n: int64 step/epoch/patch_id, float32
    score, int64 times_chosen; any order) to the per-epoch and cumulative aggregates, inside
    the caller's transaction: counts and score sums are summed per (epoch, patch) and per
    patch with numpy, the last score is the one of the highest step; one upsert per
    touched aggregate row. Each row must be folded once."""
    if step.shape[0] == 0:
        return
    order = np.argsort(step, kind="stable")
    step, epoch, patch_id = step[order], epoch[order], patch_id[order]
    score, times_chosen = score[order].astype(np.float64), times_chosen[order]
    epoch_ids, epoch_index = np.unique(epoch, return_inverse=True)
    keys = epoch_index.astype(np.int64) * (int(patch_id.max()) + 1) + patch_id
    rows: list[tuple] = []
    for key, epoch_of in ((keys, epoch_ids[epoch_index]), (patch_id, None)):
        unique, inverse = np.unique(key, return_inverse=True)
        last = np.zeros(unique.shape[0], dtype=np.int64)
        last[inverse] = np.arange(key.shape[0])  # later rows (higher steps) overwrite
        n = unique.shape[0]
        rows.extend(
            zip(
                repeat(run_id, n),
                (epoch_of[last] if epoch_of is not None else np.full(n, ALL_EPOCHS)).tolist(),
                patch_id[last].tolist(),
                np.bincount(inverse, minlength=n).tolist(),
                np.bincount(inverse, weights=times_chosen, minlength=n).astype(np.int64).tolist(),
                np.bincount(inverse, weights=score, minlength=n).tolist(),
                score[last].tolist(),
                step[last].tolist(),
                strict=False,
            )
        )
    conn.exec_driver_sql(_UPSERT_STATS, rows)


def rebuild_aggregates(conn: Connection, run_id: int) -> None:
    """Replace the run's aggregates by a fold of its whole history, in chunks of whole
    blocks of about :data:`REBUILD_CHUNK_STEPS` steps (inside the caller's transaction)."""
    conn.exec_driver_sql("DELETE FROM epoch_stats WHERE run_id = ?", (run_id,))
    blocks = conn.exec_driver_sql(
        "SELECT block, COUNT(*) FROM history_steps WHERE run_id = ? GROUP BY block ORDER BY block",
        (run_id,),
    ).all()
    chunk: list[int] = []
    total = 0
    for index, (block, n_steps) in enumerate(blocks):
        chunk.append(int(block))
        total += int(n_steps)
        if index + 1 == len(blocks) or total >= REBUILD_CHUNK_STEPS:
            rows = conn.exec_driver_sql(
                "SELECT h.step, s.epoch, h.patch_id, h.score_bits, h.times_chosen "
                "FROM history h JOIN history_steps s ON s.run_id = h.run_id AND s.step = h.step "
                f"WHERE h.run_id = ? AND h.block IN ({', '.join(map(str, chunk))})",
                (run_id,),
            ).all()
            table = np.array(rows, dtype=np.int64).reshape(len(rows), 5)
            fold_aggregates(
                conn,
                run_id,
                table[:, 0],
                table[:, 1],
                table[:, 2],
                decode_f32(table[:, 3]),
                table[:, 4],
            )
            chunk, total = [], 0


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
        score_a = arrays[0].astype(np.float32)
        prob_a = arrays[1].astype(np.float32)
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
        lengths = [b[2].shape[0] for b in self._buffer]
        step_list = [b[0] for b in self._buffer]
        block = step_list[0]
        steps = np.repeat(np.asarray(step_list, dtype=np.int64), lengths)
        epochs = np.repeat(np.asarray([b[1] for b in self._buffer], dtype=np.int64), lengths)
        ids, score, prob, chosen, weight = (
            np.concatenate([b[k] for b in self._buffer]) for k in range(2, 7)
        )
        n = ids.shape[0]
        history_rows = list(
            zip(
                repeat(self.run_id, n),
                repeat(block, n),
                ids.tolist(),
                (steps - block).tolist(),
                encode_f32(score),
                encode_f32(prob),
                chosen.tolist(),
                weight.tolist(),
                strict=False,
            )
        )
        step_rows = [(self.run_id, b[0], b[1], block) for b in self._buffer]
        with translated_errors(self._where), self._engine.begin() as conn:
            conn.exec_driver_sql(_INSERT_HISTORY, history_rows)
            conn.exec_driver_sql(_INSERT_STEPS, step_rows)
            fold_aggregates(conn, self.run_id, steps, epochs, ids, score, chosen)
            conn.execute(update(Run).where(Run.id == self.run_id).values(last_step=max(step_list)))
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
