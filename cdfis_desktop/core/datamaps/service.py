"""A run's data map from the store: read the stored one while fresh, else compute and store.

Thread rules: any thread (reads a snapshot, then one short write); the GUI calls it from
a worker thread. Raises the store's errors (unknown run: :class:`StoreError`).
"""

from __future__ import annotations

import numpy as np

from cdfis_desktop.core.datamaps.statistics import DataMap, DataMapAccumulator
from cdfis_desktop.core.storage import Project


def data_map(project: Project, run_id: int, *, recompute: bool = False) -> DataMap:
    """The run's data map: the stored one when it is fresh (the run recorded no step
    since), else computed from the per-epoch aggregates and stored (unless the run has no
    history yet: an empty map, not stored)."""
    project.run(run_id)  # StoreError for an unknown run
    stored = None if recompute else project.stored_data_map(run_id)
    if stored is not None and stored.fresh:
        return DataMap.from_arrays(stored.arrays, stored.n_epochs)
    result, last_step = compute_data_map(project, run_id)
    if last_step is not None:
        project.save_data_map(
            run_id, last_step=last_step, n_epochs=result.n_epochs, arrays=result.arrays()
        )
    return result


def compute_data_map(
    project: Project, run_id: int, *, max_epochs: int | None = None
) -> tuple[DataMap, int | None]:
    """(data map of the run's first ``max_epochs`` epochs (all when None), the run's last
    history step, None when it has none), computed without storing anything."""
    accumulator = DataMapAccumulator()

    def fold(_epoch: int, arrays: dict[str, np.ndarray]) -> None:
        accumulator.add_epoch(
            arrays["label_seen"],
            arrays["label_probability_sum"],
            arrays["margin_sum"],
            arrays["label_correct"],
        )

    last_step = project.fold_dynamics(run_id, fold, max_epochs=max_epochs)
    return accumulator.result(), last_step
