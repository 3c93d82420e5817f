"""The label-noise experiment of issue 17: flip some training labels on purpose, train, and
measure how well a ranking of the run's data map finds them.

Precision in the top k with k = the number flipped: the share of flipped patches among
the k patches a ranking puts first (every ranking the review queue offers,
:data:`cdfis_desktop.core.datamaps.RANKINGS`: by AUM, by mean label probability, and the
baseline by final loss alone). Random ranking scores the
noise rate on average. Computed after each epoch from the first E epochs' dynamics, so one
run says how many epochs the ranking needs.

Thread rules: pure functions plus store reads; any thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cdfis_desktop.core.datamaps import (
    RANKINGS,
    compute_data_map,
    label_error_ranking,
    precision_at_k,
)
from cdfis_desktop.core.storage import Project


def flip_labels(
    labels: np.ndarray, positions: np.ndarray, fraction: float, num_classes: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(a copy of ``labels`` int[N] with ``round(fraction * len(positions))`` of the entries
    at ``positions`` changed to another class drawn uniformly, the changed positions
    sorted). Seeded: the same arguments flip the same entries."""
    rng = np.random.default_rng(seed)
    count = int(round(fraction * len(positions)))
    flipped = np.sort(rng.choice(np.asarray(positions, dtype=np.int64), count, replace=False))
    noisy = np.asarray(labels, dtype=np.int64).copy()
    noisy[flipped] = (noisy[flipped] + rng.integers(1, num_classes, count)) % num_classes
    return noisy, flipped


@dataclass(frozen=True)
class Recovery:
    """Precision in the top ``k`` after the first ``epochs`` epochs, per ranking name
    (``precision``: :data:`~cdfis_desktop.core.datamaps.RANKINGS` name -> share in [0, 1])."""

    epochs: int
    k: int
    precision: dict[str, float]


def recovery_by_epoch(
    project: Project, run_id: int, candidates: np.ndarray, flipped: np.ndarray
) -> list[Recovery]:
    """One :class:`Recovery` per epoch count 1..E of the run: every ranking of
    ``candidates`` (the training patch ids) scored against ``flipped`` (the flipped patch
    ids)."""
    rows = []
    k = len(flipped)
    for count in range(1, len(project.epochs(run_id)) + 1):
        data_map, _ = compute_data_map(project, run_id, max_epochs=count)
        precision = {
            name: precision_at_k(
                candidates[label_error_ranking(data_map, candidates, name)], flipped, k
            )
            for name in RANKINGS
        }
        rows.append(Recovery(epochs=count, k=k, precision=precision))
    return rows
