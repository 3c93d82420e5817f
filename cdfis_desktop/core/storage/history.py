"""Batched writer of the importance history and its per-epoch aggregates.

Thread rules: a :class:`HistoryWriter` belongs to the training thread, which is the only
writer of history rows. It buffers numpy arrays and writes every ``flush_every_steps``
steps in ONE transaction: the history rows (:data:`ROWS_PER_INSERT` per statement) and
the batch's ``history_steps`` rows, the per-epoch aggregates, and the run's ``last_step``.
The aggregates are numpy arrays indexed by patch id (see :mod:`.aggregates`), kept in
memory and loaded from the database at the writer's first flush (a resumed run goes on
from what was committed); each batch is folded in with numpy and the touched rows (the
current epoch's; at an epoch change also the earlier epochs' sum) are written whole.
Steps must be recorded in increasing order (a step is folded into the aggregates once).
A crash, or a power cut (a flush commits with ``synchronous=FULL``, see
:func:`.database.durable_transaction`), loses at most the unflushed steps (whole batches
only); readers (GUI thread) never see history without its aggregates.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import Engine, update
from sqlalchemy.engine import Connection

from cdfis_desktop.core.storage.aggregates import AggregateFolder, HistoryRows
from cdfis_desktop.core.storage.database import durable_transaction, translated_errors
from cdfis_desktop.core.storage.schema import NAN_BITS, Run, decode_f32, encode_f32

_Step = tuple[
    int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray
]
"""A buffered step: (step, epoch, ids int64, score f32, probability f32, chosen i64,
weight f64, label probability f32, margin f32), ids unique."""

_HISTORY_COLUMNS = 8
"""Bound values per history row (patch_id, step_offset, score_bits, probability_bits,
times_chosen, weight, label_probability_bits, margin_bits); run id and block are the same
for every row of a flush and are written into the statement as integer literals (~7 % of
the insert time saved)."""
ROWS_PER_INSERT = 120
"""History rows per INSERT statement (multi-row VALUES: 960 bound values, under the 999
of older SQLite builds). One row per statement spent half of its time per row in
statement overhead: x1.7-2 the rows/s of the insert itself (``benchmarks/store.py``)."""

_INSERT_STEPS = "INSERT INTO history_steps (run_id, step, epoch, block) VALUES (?, ?, ?, ?)"
REBUILD_CHUNK_STEPS = 1000
"""Steps read per chunk when aggregates are rebuilt (bounds memory: ~40 MB at 1024 rows
per step)."""


def rebuild_aggregates(conn: Connection, run_id: int) -> None:
    """Replace the run's aggregates by a fold of its whole history, in chunks of whole
    blocks of about :data:`REBUILD_CHUNK_STEPS` steps (inside the caller's transaction).
    Raises ValueError if the stored epochs decrease with the step (cdfis-desktop never
    records that; :meth:`HistoryWriter.record` refuses it)."""
    conn.exec_driver_sql("DELETE FROM run_aggregates WHERE run_id = ?", (run_id,))
    folder = AggregateFolder(run_id)
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
                "SELECT s.step, s.epoch, h.patch_id, h.score_bits, h.times_chosen, "
                f"COALESCE(h.label_probability_bits, {NAN_BITS}), "
                f"COALESCE(h.margin_bits, {NAN_BITS}) "
                "FROM history h JOIN history_steps s ON s.run_id = h.run_id "
                "AND s.step = h.block + h.step_offset "
                f"WHERE h.run_id = ? AND h.block IN ({', '.join(map(str, chunk))})",
                (run_id,),
            ).all()
            table = np.array(rows, dtype=np.int64).reshape(len(rows), 7)
            folder.fold(
                conn,
                table[:, 1],
                HistoryRows(
                    patch_id=table[:, 2],
                    step=table[:, 0],
                    score=decode_f32(table[:, 3]),
                    times_chosen=table[:, 4],
                    label_probability=decode_f32(table[:, 5]),
                    margin=decode_f32(table[:, 6]),
                ),
            )
            folder.write(conn)
            chunk, total = [], 0


def _bits_or_null(values: np.ndarray) -> list[int | None]:
    """float32[m] -> :func:`encode_f32` bit patterns, None (SQL NULL) where NaN."""
    missing = np.isnan(values)
    if missing.all():  # most rows of a presample step: candidates not trained
        return [None] * int(values.shape[0])
    bits = np.asarray(values, dtype=np.float32).view(np.int32).astype(object)
    bits[missing] = None
    return bits.tolist()


def _insert_history(
    conn: Connection, run_id: int, block: int, values: list[int | float | None]
) -> None:
    """Insert history rows of one block: ``values`` holds :data:`_HISTORY_COLUMNS` values
    per row, row after row, in primary-key order; :data:`ROWS_PER_INSERT` rows per
    statement."""
    row = f"({run_id:d}, {block:d}, {', '.join(['?'] * _HISTORY_COLUMNS)})"
    statement = (
        "INSERT INTO history (run_id, block, patch_id, step_offset, score_bits, "
        "probability_bits, times_chosen, weight, label_probability_bits, margin_bits) VALUES "
    )
    per_statement = _HISTORY_COLUMNS * ROWS_PER_INSERT
    whole = len(values) - len(values) % per_statement
    if whole:
        conn.exec_driver_sql(
            statement + ", ".join([row] * ROWS_PER_INSERT),
            [tuple(values[i : i + per_statement]) for i in range(0, whole, per_statement)],
        )
    if whole < len(values):
        rest = (len(values) - whole) // _HISTORY_COLUMNS
        conn.exec_driver_sql(statement + ", ".join([row] * rest), tuple(values[whole:]))


class HistoryWriter:
    """Records the sampler's per-candidate values for each step of one run.

    Create it with :meth:`Project.history_writer`. Use as a context manager or call
    :meth:`close` (which flushes). Raises :class:`StorageFullError` / :class:`StoreError`
    from :meth:`flush` (and from :meth:`record` when it flushes); the failed batch stays
    buffered, everything committed before is kept.
    """

    def __init__(
        self,
        engine: Engine,
        where: str,
        run_id: int,
        flush_every_steps: int,
        last_recorded: tuple[int, int] | None = None,
    ) -> None:
        """``last_recorded``: (step, epoch) of the run's latest stored step, if any: later
        records must come after it."""
        if flush_every_steps < 1:
            raise ValueError(f"flush_every_steps must be >= 1 (got {flush_every_steps})")
        self.run_id = run_id
        self.flush_every_steps = flush_every_steps
        self._engine = engine
        self._where = where
        self._buffer: list[_Step] = []
        self._aggregates = AggregateFolder(run_id)
        self._closed = False
        self._last_recorded = last_recorded

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
        *,
        label_probability: np.ndarray | None = None,
        margin: np.ndarray | None = None,
    ) -> None:
        """Buffer one step: parallel arrays of length n, one entry per candidate scored.

        patch_ids int64[n] (store patch ids, not dataset indices), score float32[n],
        probability float32[n] (the sampler's p_i), times_chosen int[n] (0 if not chosen),
        weight float32[n] (0 where not chosen); label_probability/margin float32[n]: the
        training dynamics of the trained entries, NaN elsewhere (None: all NaN, see
        :class:`~.schema.History`). A patch listed twice in one step is merged (counts
        and weights summed, first score and dynamics kept). Flushes every
        ``flush_every_steps`` steps. Raises ValueError on mismatched lengths, a step not
        after the previous one or an epoch below the previous one."""
        if self._closed:
            raise ValueError("this history writer is closed")
        last = self._last_recorded
        if last is not None and (step <= last[0] or epoch < last[1]):
            raise ValueError(
                f"step {step} (epoch {epoch}) recorded after step {last[0]} (epoch {last[1]}); "
                "steps must increase and epochs not decrease"
            )
        ids = np.asarray(patch_ids, dtype=np.int64).ravel()
        missing = np.full(ids.shape[0], np.nan, np.float32)
        dynamics = [missing if a is None else a for a in (label_probability, margin)]
        arrays = [
            np.asarray(a).ravel() for a in (score, probability, times_chosen, weight, *dynamics)
        ]
        if any(a.shape[0] != ids.shape[0] for a in arrays):
            raise ValueError(
                "patch_ids, score, probability, times_chosen, weight, label_probability and "
                f"margin must have the same length (got {[ids.shape[0], *(a.shape[0] for a in arrays)]})"
            )
        score_a = arrays[0].astype(np.float32)
        prob_a = arrays[1].astype(np.float32)
        chosen_a: np.ndarray = arrays[2].astype(np.int64)
        weight_a: np.ndarray = arrays[3].astype(np.float64)
        label_a = arrays[4].astype(np.float32)
        margin_a = arrays[5].astype(np.float32)
        in_order = np.sort(ids)
        if (in_order[1:] == in_order[:-1]).any():  # cheaper check than np.unique per step
            unique, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
            chosen_a = np.bincount(inverse, weights=chosen_a).astype(np.int64)
            weight_a = np.bincount(inverse, weights=weight_a)
            score_a, prob_a, ids = score_a[first], prob_a[first], unique
            label_a, margin_a = label_a[first], margin_a[first]
        self._buffer.append(
            (int(step), int(epoch), ids, score_a, prob_a, chosen_a, weight_a, label_a, margin_a)
        )
        self._last_recorded = (int(step), int(epoch))
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
        ids, score, prob, chosen, weight, label_prob, margin = (
            np.concatenate([b[k] for b in self._buffer]) for k in range(2, 9)
        )
        # in primary-key order, so every row is appended at the end of the B-tree
        offsets = steps - block
        order = np.lexsort((offsets, ids))
        values: list[int | float | None] = [0] * (_HISTORY_COLUMNS * order.shape[0])  # row-major
        values[0::_HISTORY_COLUMNS] = ids[order].tolist()
        values[1::_HISTORY_COLUMNS] = offsets[order].tolist()
        values[2::_HISTORY_COLUMNS] = encode_f32(score[order])
        values[3::_HISTORY_COLUMNS] = encode_f32(prob[order])
        values[4::_HISTORY_COLUMNS] = chosen[order].tolist()
        values[5::_HISTORY_COLUMNS] = weight[order].tolist()
        values[6::_HISTORY_COLUMNS] = _bits_or_null(label_prob[order])
        values[7::_HISTORY_COLUMNS] = _bits_or_null(margin[order])
        step_rows = [(self.run_id, b[0], b[1], block) for b in self._buffer]
        try:
            with translated_errors(self._where), durable_transaction(self._engine) as conn:
                _insert_history(conn, self.run_id, block, values)
                conn.exec_driver_sql(_INSERT_STEPS, step_rows)
                self._aggregates.fold(
                    conn, epochs, HistoryRows(ids, steps, score, chosen, label_prob, margin)
                )
                self._aggregates.write(conn)
                conn.execute(
                    update(Run).where(Run.id == self.run_id).values(last_step=max(step_list))
                )
        except BaseException:
            self._aggregates.forget()  # folded but not committed: reload on the next flush
            raise
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
