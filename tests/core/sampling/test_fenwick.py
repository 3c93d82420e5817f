"""The Fenwick tree agrees with a plain cumulative sum after incremental updates."""

from __future__ import annotations

import numpy as np
import torch

from cdfis_desktop.core.sampling.fenwick import FenwickTree, last_occurrence


def test_updates_and_find_match_cumsum() -> None:
    rng = np.random.default_rng(0)
    weights = rng.random(1000)
    weights[rng.random(1000) < 0.2] = 0.0
    tree = FenwickTree(torch.from_numpy(weights))
    for _ in range(50):
        idx = np.unique(rng.integers(0, 1000, 17))
        values = rng.random(idx.shape[0]) * (rng.random(idx.shape[0]) < 0.8)
        tree.update(idx, values)
        weights[idx] = values
    assert np.isclose(tree.total, weights.sum())
    targets = rng.random(5000) * weights.sum()
    expected = np.searchsorted(np.cumsum(weights), targets, side="right")
    found = tree.find(targets)
    assert np.array_equal(found, expected)
    assert np.all(weights[found] > 0)


def test_sizes_that_are_not_powers_of_two() -> None:
    for n in (1, 2, 3, 7, 33):
        tree = FenwickTree(torch.ones(n, dtype=torch.float64))
        assert np.array_equal(tree.find(np.arange(n) + 0.5), np.arange(n))


def test_last_occurrence() -> None:
    unique, last = last_occurrence(torch.tensor([5, 3, 5, 9, 3]))
    assert unique.tolist() == [3, 5, 9] and last.tolist() == [4, 2, 3]
