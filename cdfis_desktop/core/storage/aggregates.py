"""Per-epoch aggregates of the importance history as packed numpy arrays, one row per
(run, epoch) of ``run_aggregates``.

Layout: each row holds five arrays indexed by patch id, stored as raw little-endian bytes
(no compression: zlib level 1 would cost about 2 µs per history row, most of the insert
budget of 3.3 µs at 300,000 rows/s, for a 2x smaller row; ``benchmarks/store.py``). Their
length ``n_patches`` is the project's highest patch id + 1 when the row was first written,
grown when a higher id is recorded; a patch never scored (or with an id past the end) has
zeros everywhere:

- ``times_scored`` int32: steps in which the sampler looked at the patch;
- ``times_chosen`` int32: draws of the patch;
- ``score_sum`` float64: sum of its float32 scores (float64 so the mean score stays exact
  to float32 precision over millions of steps);
- ``last_score`` float32: the score at ``last_step`` (int32), its latest scored step;
- ``label_seen`` int32: steps that trained on the patch and recorded its label
  probability (training dynamics, see :class:`~.schema.History`);
- ``label_correct`` int32: of those, steps where its margin was positive (the model
  ranked its label first);
- ``label_probability_sum``/``margin_sum`` float32: sums of its label probability and
  margin over those steps (float32: an epoch sums a handful of values in [0, 1] or of
  order 10, so 16 more bytes per patch than float64 would cost buy nothing).

Stored rows: one per epoch (``epoch >= 0``) with history, and one with ``epoch ==
EARLIER_EPOCHS`` holding the cumulative aggregates of every epoch of the run except its
latest one. The cumulative aggregates of all epochs so far (``ALL_EPOCHS``, what
:func:`load` gives for it) are that row plus the latest epoch's. So a history flush
within an epoch rewrites one row (the current epoch's), and the ``EARLIER_EPOCHS`` row is
rewritten once per epoch, when the next one begins: half the bytes per flush of storing
the cumulative row too (``benchmarks/store.py``).

Why packed arrays: keeping them per (run, epoch, patch) cost two upserts per history row
(~7 µs, 3/4 of the insert time) and 100,000 row reads per heatmap; a flush now writes the
touched row whole (24 bytes per patch of the project) and a heatmap reads the one or two
columns it needs of one row (of two for the cumulative view) and indexes them with the
slide's patch ids.

Thread rules: functions run inside the caller's transaction; an :class:`AggregateFolder`
belongs to the one thread that writes its run (the training thread, or the thread running
a truncate/rebuild).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from sqlalchemy.engine import Connection

from cdfis_desktop.core.storage.schema import ALL_EPOCHS

EARLIER_EPOCHS = -2
"""``run_aggregates.epoch`` of the stored row holding the cumulative aggregates of every
epoch of the run except its latest one (see the module docstring)."""

COLUMNS: dict[str, np.dtype] = {
    "times_scored": np.dtype("<i4"),
    "times_chosen": np.dtype("<i4"),
    "score_sum": np.dtype("<f8"),
    "last_score": np.dtype("<f4"),
    "last_step": np.dtype("<i4"),
    "label_seen": np.dtype("<i4"),
    "label_correct": np.dtype("<i4"),
    "label_probability_sum": np.dtype("<f4"),
    "margin_sum": np.dtype("<f4"),
}
"""Stored arrays and their dtypes (little-endian), in column order."""

_UPSERT = (
    "INSERT INTO run_aggregates (run_id, epoch, n_patches, "
    + ", ".join(COLUMNS)
    + f") VALUES ({', '.join(['?'] * (3 + len(COLUMNS)))}) ON CONFLICT(run_id, epoch) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in ("n_patches", *COLUMNS))
)


@dataclass(frozen=True)
class HistoryRows:
    """History rows to fold, as parallel arrays of length m: ``patch_id``/``step`` int64,
    ``score`` float32, ``times_chosen`` int, ``label_probability``/``margin`` float32 (NaN
    where the patch was not trained in that step)."""

    patch_id: np.ndarray
    step: np.ndarray
    score: np.ndarray
    times_chosen: np.ndarray
    label_probability: np.ndarray
    margin: np.ndarray

    def where(self, mask: np.ndarray) -> HistoryRows:
        """The rows where ``mask`` (bool[m]) is True."""
        return HistoryRows(*(getattr(self, f.name)[mask] for f in fields(self)))


@dataclass
class Aggregates:
    """The aggregate arrays of one (run, epoch), all of one length n (see module)."""

    times_scored: np.ndarray
    times_chosen: np.ndarray
    score_sum: np.ndarray
    last_score: np.ndarray
    last_step: np.ndarray
    label_seen: np.ndarray
    label_correct: np.ndarray
    label_probability_sum: np.ndarray
    margin_sum: np.ndarray

    @classmethod
    def zeros(cls, n: int) -> Aggregates:
        """All-zero arrays of length ``n``."""
        return cls(**{name: np.zeros(n, dtype) for name, dtype in COLUMNS.items()})

    def __len__(self) -> int:
        return int(self.times_scored.shape[0])

    def grow(self, n: int) -> None:
        """Zero-pad every array to length ``n`` (no-op when already that long)."""
        if n <= len(self):
            return
        for f in fields(self):
            old = getattr(self, f.name)
            new = np.zeros(n, old.dtype)
            new[: old.shape[0]] = old
            setattr(self, f.name, new)

    def fold(self, rows: HistoryRows) -> None:
        """Add history rows (any order, at most one row per (step, patch)). The last score
        is the one of the highest step, which must not be below a step folded earlier."""
        patch_id, step, score = rows.patch_id, rows.step, rows.score
        if patch_id.shape[0] == 0:
            return
        n = int(patch_id.max()) + 1
        self.grow(n)
        n = len(self)
        self.times_scored += np.bincount(patch_id, minlength=n).astype(np.int32)
        np.add.at(self.times_chosen, patch_id, rows.times_chosen.astype(np.int32))
        np.add.at(self.score_sum, patch_id, score.astype(np.float64))
        np.maximum.at(self.last_step, patch_id, step.astype(np.int32))
        latest = step == self.last_step[patch_id]  # exactly one row per patch
        self.last_score[patch_id[latest]] = score[latest]
        seen = ~np.isnan(rows.label_probability)
        if not seen.any():
            return
        trained = patch_id[seen]
        margin = rows.margin[seen].astype(np.float64)
        self.label_seen += np.bincount(trained, minlength=n).astype(np.int32)
        self.label_correct += np.bincount(trained[margin > 0], minlength=n).astype(np.int32)
        probability = rows.label_probability[seen].astype(np.float64)
        self.label_probability_sum += np.bincount(trained, probability, n).astype(np.float32)
        self.margin_sum += np.bincount(trained, margin, n).astype(np.float32)

    def add(self, later: Aggregates) -> None:
        """Accumulate ``later``, the aggregates of steps after every step folded here (see
        :func:`combine`)."""
        for name in COLUMNS:
            setattr(
                self,
                name,
                combine(name, getattr(self, name), getattr(later, name), later.times_scored),
            )

    def zero(self, patch_ids: np.ndarray) -> None:
        """Forget the given patches (ids past the end are ignored)."""
        ids = patch_ids[patch_ids < len(self)]
        for f in fields(self):
            getattr(self, f.name)[ids] = 0


def max_patch_id(conn: Connection) -> int:
    """The project's highest patch id (0 when it has none)."""
    return int(conn.exec_driver_sql("SELECT COALESCE(MAX(id), 0) FROM patches").scalar_one())


def combine(
    name: str, earlier: np.ndarray, later: np.ndarray, later_scored: np.ndarray
) -> np.ndarray:
    """Column ``name`` of aggregates followed by those of later steps, as a new array as
    long as the longer input: counts and sums add; ``last_score``/``last_step`` are the
    later ones where ``later_scored`` (the later ``times_scored``) is positive."""
    out = np.zeros(max(earlier.shape[0], later.shape[0]), COLUMNS[name])
    out[: earlier.shape[0]] = earlier
    if name in ("last_score", "last_step"):
        seen = np.flatnonzero(later_scored > 0)
        out[seen] = later[seen]
    else:
        out[: later.shape[0]] += later
    return out


def load(
    conn: Connection, run_id: int, epoch: int, columns: tuple[str, ...] = tuple(COLUMNS)
) -> dict[str, np.ndarray] | None:
    """The named arrays of (run, epoch) as read-only numpy arrays, or None if absent.
    ``epoch == ALL_EPOCHS`` gives the cumulative aggregates of all epochs so far: the
    ``EARLIER_EPOCHS`` row combined with the latest epoch's, read in one statement (one
    snapshot: an epoch change rewrites both rows in one transaction)."""
    if epoch != ALL_EPOCHS:
        row = conn.exec_driver_sql(
            f"SELECT {', '.join(columns)} FROM run_aggregates WHERE run_id = ? AND epoch = ?",
            (run_id, epoch),
        ).one_or_none()
        if row is None:
            return None
        return {name: np.frombuffer(row[k], COLUMNS[name]) for k, name in enumerate(columns)}
    wanted = tuple(dict.fromkeys(("times_scored", *columns)))  # times_scored merges last_*
    rows = conn.exec_driver_sql(
        f"SELECT epoch, {', '.join(wanted)} FROM run_aggregates WHERE run_id = ? AND "
        "(epoch = ? OR epoch = (SELECT MAX(epoch) FROM run_aggregates WHERE run_id = ? "
        "AND epoch >= 0)) ORDER BY epoch",
        (run_id, EARLIER_EPOCHS, run_id),
    ).all()
    if not rows or rows[-1][0] < 0:
        return None
    earlier, latest = (
        {
            name: np.frombuffer(blob, COLUMNS[name])
            for name, blob in zip(wanted, row[1:], strict=True)
        }
        for row in (rows[0], rows[-1])
    )
    if len(rows) == 1:
        return {name: latest[name] for name in columns}
    cumulative = {
        name: combine(name, earlier[name], latest[name], latest["times_scored"]) for name in columns
    }
    for values in cumulative.values():
        values.flags.writeable = False
    return cumulative


def latest_epoch(conn: Connection, run_id: int) -> int | None:
    """The run's highest epoch with aggregates (None when it has none)."""
    value = conn.exec_driver_sql(
        "SELECT MAX(epoch) FROM run_aggregates WHERE run_id = ? AND epoch >= 0", (run_id,)
    ).scalar()
    return None if value is None else int(value)


def load_aggregates(conn: Connection, run_id: int, epoch: int) -> Aggregates | None:
    """All arrays of (run, epoch) as :func:`load` gives them, writable, or None."""
    arrays = load(conn, run_id, epoch)
    return None if arrays is None else Aggregates(**{n: a.copy() for n, a in arrays.items()})


def save(conn: Connection, run_id: int, epoch: int, aggregates: Aggregates) -> None:
    """Insert or replace the row of (run, epoch)."""
    conn.exec_driver_sql(
        _UPSERT,
        (
            run_id,
            epoch,
            len(aggregates),
            *(
                getattr(aggregates, name).astype(dtype, copy=False).tobytes()
                for name, dtype in COLUMNS.items()
            ),
        ),
    )


def zero_patches(conn: Connection, patch_ids: np.ndarray) -> None:
    """Forget ``patch_ids`` (int64) in every aggregate row of every run."""
    for run_id, epoch in conn.exec_driver_sql("SELECT run_id, epoch FROM run_aggregates").all():
        aggregates = load_aggregates(conn, run_id, epoch)
        assert aggregates is not None  # the row was just listed, in this transaction
        aggregates.zero(patch_ids)
        save(conn, run_id, epoch, aggregates)


class AggregateFolder:
    """Keeps the aggregates of one run's latest epoch and of its earlier epochs in memory,
    folds batches of history rows into them and writes the touched rows.

    Epochs must come in nondecreasing order (a fold's rows may span several). The arrays
    are loaded from the database at the first fold (zeros when absent) inside the
    caller's transaction. Call :meth:`forget` when a transaction that folded fails (the
    arrays are then reloaded from what was committed). They are also reloaded when
    ``meta.patches_version`` changed (e.g. :meth:`Project.delete_slide` zeroed patches).
    """

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self._latest_epoch: int | None = None
        self._latest: Aggregates | None = None
        self._earlier: Aggregates | None = None  # None until loaded
        self._unsaved: dict[int, Aggregates] = {}
        self._patches_version: str | None = None

    def forget(self) -> None:
        """Drop everything held in memory."""
        self._latest = self._earlier = None
        self._unsaved.clear()

    def fold(self, conn: Connection, epoch: np.ndarray, rows: HistoryRows) -> None:
        """Fold ``rows`` into their epochs' aggregates (``epoch`` int64[m]: each row's).
        Raises ValueError for an epoch below the run's latest one."""
        version = conn.exec_driver_sql(
            "SELECT value FROM meta WHERE key = 'patches_version'"
        ).scalar()
        if version != self._patches_version:
            self.forget()
            self._patches_version = version
        if self._earlier is None:
            self._load(conn)
        for value in np.unique(epoch).tolist():
            if self._latest_epoch is not None and value < self._latest_epoch:
                raise ValueError(
                    f"run {self.run_id}: history of epoch {value} recorded after epoch "
                    f"{self._latest_epoch}; epochs must not decrease"
                )
            if value != self._latest_epoch:
                self._begin_epoch(conn, value)
            mine = epoch == value
            latest = self._latest
            assert latest is not None
            latest.fold(rows.where(mine))
            self._unsaved[value] = latest

    def write(self, conn: Connection) -> None:
        """Save the rows touched since the last write."""
        for epoch, arrays in sorted(self._unsaved.items()):
            save(conn, self.run_id, epoch, arrays)
        self._unsaved.clear()

    def _load(self, conn: Connection) -> None:
        self._latest_epoch = latest_epoch(conn, self.run_id)
        if self._latest_epoch is not None:
            self._latest = load_aggregates(conn, self.run_id, self._latest_epoch)
        self._earlier = load_aggregates(conn, self.run_id, EARLIER_EPOCHS)
        if self._earlier is None:
            self._earlier = Aggregates.zeros(max_patch_id(conn) + 1)

    def _begin_epoch(self, conn: Connection, epoch: int) -> None:
        """The latest epoch so far joins the earlier ones; ``epoch`` starts from zeros."""
        assert self._earlier is not None
        if self._latest is not None:
            self._earlier.add(self._latest)
            self._unsaved[EARLIER_EPOCHS] = self._earlier
        self._latest_epoch = epoch
        self._latest = Aggregates.zeros(max_patch_id(conn) + 1)
