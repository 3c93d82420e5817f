"""Per-epoch aggregates of the importance history as packed numpy arrays, one row per
(run, epoch) of ``run_aggregates``.

Layout: each row holds five arrays indexed by patch id, stored as raw little-endian bytes
(no compression: zlib level 1 costs more per flush than the whole target budget of a
flush, see ``benchmarks/store.py``). Their length ``n_patches`` is the project's highest
patch id + 1 when the row was first written, grown when a higher id is recorded; a patch
never scored (or with an id past the end) has zeros everywhere:

- ``times_scored`` int32: steps in which the sampler looked at the patch;
- ``times_chosen`` int32: draws of the patch;
- ``score_sum`` float64: sum of its float32 scores (float64 so the mean score stays exact
  to float32 precision over millions of steps);
- ``last_score`` float32: the score at ``last_step`` (int32), its latest scored step.

``epoch == ALL_EPOCHS`` holds the cumulative aggregates of all epochs so far.

Why packed arrays: keeping them per (run, epoch, patch) cost two upserts per history row
(~7 µs, 3/4 of the insert time) and 100,000 row reads per heatmap; a flush now writes the
two touched rows whole (2 x 24 bytes per patch of the project) and a heatmap reads two
blobs and indexes them with the slide's patch ids.

Thread rules: functions run inside the caller's transaction; an :class:`AggregateFolder`
belongs to the one thread that writes its run (the training thread, or the thread running
a truncate/rebuild).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from sqlalchemy.engine import Connection

from cdfis_desktop.core.storage.schema import ALL_EPOCHS

COLUMNS: dict[str, np.dtype] = {
    "times_scored": np.dtype("<i4"),
    "times_chosen": np.dtype("<i4"),
    "score_sum": np.dtype("<f8"),
    "last_score": np.dtype("<f4"),
    "last_step": np.dtype("<i4"),
}
"""Stored arrays and their dtypes (little-endian), in column order."""

_UPSERT = (
    "INSERT INTO run_aggregates (run_id, epoch, n_patches, "
    + ", ".join(COLUMNS)
    + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, epoch) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in ("n_patches", *COLUMNS))
)


@dataclass
class Aggregates:
    """The five aggregate arrays of one (run, epoch), all of one length n (see module)."""

    times_scored: np.ndarray
    times_chosen: np.ndarray
    score_sum: np.ndarray
    last_score: np.ndarray
    last_step: np.ndarray

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

    def fold(
        self, patch_id: np.ndarray, step: np.ndarray, score: np.ndarray, chosen: np.ndarray
    ) -> None:
        """Add history rows (parallel int64 patch_id/step, float32 score, int times_chosen
        of length m; any order, at most one row per (step, patch)). The last score is the
        one of the highest step, which must not be below a step folded earlier."""
        if patch_id.shape[0] == 0:
            return
        self.grow(int(patch_id.max()) + 1)
        self.times_scored += np.bincount(patch_id, minlength=len(self)).astype(np.int32)
        np.add.at(self.times_chosen, patch_id, chosen.astype(np.int32))
        np.add.at(self.score_sum, patch_id, score.astype(np.float64))
        np.maximum.at(self.last_step, patch_id, step.astype(np.int32))
        latest = step == self.last_step[patch_id]  # exactly one row per patch
        self.last_score[patch_id[latest]] = score[latest]

    def zero(self, patch_ids: np.ndarray) -> None:
        """Forget the given patches (ids past the end are ignored)."""
        ids = patch_ids[patch_ids < len(self)]
        for f in fields(self):
            getattr(self, f.name)[ids] = 0


def max_patch_id(conn: Connection) -> int:
    """The project's highest patch id (0 when it has none)."""
    return int(conn.exec_driver_sql("SELECT COALESCE(MAX(id), 0) FROM patches").scalar_one())


def load(
    conn: Connection, run_id: int, epoch: int, columns: tuple[str, ...] = tuple(COLUMNS)
) -> dict[str, np.ndarray] | None:
    """The named arrays of (run, epoch) as read-only numpy arrays, or None if absent."""
    row = conn.exec_driver_sql(
        f"SELECT {', '.join(columns)} FROM run_aggregates WHERE run_id = ? AND epoch = ?",
        (run_id, epoch),
    ).one_or_none()
    if row is None:
        return None
    return {name: np.frombuffer(row[k], COLUMNS[name]) for k, name in enumerate(columns)}


def load_aggregates(conn: Connection, run_id: int, epoch: int) -> Aggregates | None:
    """All arrays of (run, epoch), writable, or None if absent."""
    arrays = load(conn, run_id, epoch)
    if arrays is None:
        return None
    return Aggregates(**{name: a.copy() for name, a in arrays.items()})


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
    rows = conn.exec_driver_sql(
        f"SELECT run_id, epoch, {', '.join(COLUMNS)} FROM run_aggregates"
    ).all()
    for run_id, epoch, *blobs in rows:
        aggregates = Aggregates(
            **{
                name: np.frombuffer(blob, dtype).copy()
                for (name, dtype), blob in zip(COLUMNS.items(), blobs, strict=True)
            }
        )
        aggregates.zero(patch_ids)
        save(conn, run_id, epoch, aggregates)


class AggregateFolder:
    """Keeps the aggregates of one run's current epoch and the cumulative ones in memory,
    folds batches of history rows into them and writes the touched rows.

    Rows of an epoch not in memory are loaded from the database (zeros when absent) inside
    the caller's transaction. After a write only the latest epoch and the cumulative
    arrays stay in memory. Call :meth:`forget` when a transaction that folded fails (the
    arrays are then reloaded from what was committed). The arrays are also reloaded when
    ``meta.patches_version`` changed (e.g. :meth:`Project.delete_slide` zeroed patches).
    """

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self._arrays: dict[int, Aggregates] = {}
        self._dirty: set[int] = set()
        self._patches_version: str | None = None

    def forget(self) -> None:
        """Drop everything held in memory."""
        self._arrays.clear()
        self._dirty.clear()

    def fold(
        self,
        conn: Connection,
        step: np.ndarray,
        epoch: np.ndarray,
        patch_id: np.ndarray,
        score: np.ndarray,
        chosen: np.ndarray,
    ) -> None:
        """Fold rows (parallel arrays: int64 step/epoch/patch_id, float32 score, int
        times_chosen) into their epochs' and the cumulative aggregates."""
        version = conn.exec_driver_sql(
            "SELECT value FROM meta WHERE key = 'patches_version'"
        ).scalar()
        if version != self._patches_version:
            self.forget()
            self._patches_version = version
        for value in np.unique(epoch).tolist():
            mine = epoch == value
            self._get(conn, int(value)).fold(patch_id[mine], step[mine], score[mine], chosen[mine])
            self._dirty.add(int(value))
        self._get(conn, ALL_EPOCHS).fold(patch_id, step, score, chosen)
        self._dirty.add(ALL_EPOCHS)

    def write(self, conn: Connection) -> None:
        """Save the rows touched since the last write; keep only the latest epoch and the
        cumulative arrays in memory."""
        for epoch in sorted(self._dirty):
            save(conn, self.run_id, epoch, self._arrays[epoch])
        self._dirty.clear()
        latest = max(self._arrays)
        self._arrays = {e: a for e, a in self._arrays.items() if e in (latest, ALL_EPOCHS)}

    def _get(self, conn: Connection, epoch: int) -> Aggregates:
        if epoch not in self._arrays:
            loaded = load_aggregates(conn, self.run_id, epoch)
            self._arrays[epoch] = (
                loaded if loaded is not None else Aggregates.zeros(max_patch_id(conn) + 1)
            )
        return self._arrays[epoch]
