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
