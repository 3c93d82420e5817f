"""The importance statistics on aggregate arrays (docs/method.md, favoured/ignored)."""

from __future__ import annotations

import numpy as np
import pytest

from cdfis_desktop.core import statistics


def test_expected_uniform_and_favour() -> None:
    assert statistics.expected_uniform(6, 40) == pytest.approx(0.15)
    assert statistics.expected_uniform(5, 0) == 5.0  # no training patches: no division by 0
    favour = statistics.favour(np.array([2.0, 0.0, np.nan]), 0.15)
    assert favour[:2] == pytest.approx([1.85, -0.15]) and np.isnan(favour[2])


def test_mean_score_is_nan_where_never_scored() -> None:
    mean = statistics.mean_score(np.array([6.0, 0.0, 3.0]), np.array([2, 0, 1]))
    assert mean[0] == 3.0 and np.isnan(mean[1]) and mean[2] == 3.0


def test_ranking_of_favoured_and_ignored_patches() -> None:
    ids = np.array([10, 11, 12, 13, 14])
    scored = np.array([2, 2, 5, 1, 0])
    chosen = np.array([3, 3, 0, 3, 0])
    favoured = ids[statistics.rank_patches(ids, scored, chosen, 3, ignored=False)]
    # chosen most; ties: fewer looks first, then id; never-scored patch 14 is not ranked
    assert favoured.tolist() == [13, 10, 11]
    ignored = ids[statistics.rank_patches(ids, scored, chosen, 5, ignored=True)]
    assert ignored.tolist() == [12, 10, 11, 13]  # chosen least, looked at most first
    assert statistics.rank_patches(ids, scored, chosen, 0, ignored=False).size == 0


@pytest.mark.parametrize("ignored", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_partitioned_ranking_equals_the_full_sort_with_ties(ignored: bool, seed: int) -> None:
    """Few distinct counts (many ties at the cut), unsorted ids, never-scored patches;
    every n from 0 past the number of candidates: the same positions, in the same order,
    as sorting all candidates by the three keys."""
    rng = np.random.default_rng(seed)
    m = 400
    ids = rng.permutation(m) + 1000
    scored = rng.integers(0, 4, m)
    chosen = rng.integers(0, 3, m)
    candidates = np.flatnonzero(scored > 0)
    keys = (ids, -scored, chosen) if ignored else (ids, scored, -chosen)
    full = candidates[np.lexsort(tuple(key[candidates] for key in keys))]
    for n in range(0, candidates.size + 3):
        ranked = statistics.rank_patches(ids, scored, chosen, n, ignored=ignored)
        assert ranked.tolist() == full[:n].tolist(), n
