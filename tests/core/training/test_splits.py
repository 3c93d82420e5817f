"""The validation split keeps whole patient groups together (or spatial blocks)."""

from __future__ import annotations

import numpy as np
import pytest

from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.training.splits import choose_split, split_by_group


def _patches(n_groups: int, per_group: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"patient-{g}" for g in range(n_groups)], per_group)
    labels = rng.integers(0, 2, n_groups * per_group)
    return groups, labels


@pytest.mark.parametrize("seed", range(4))
def test_groups_are_never_split_and_classes_are_covered(seed: int) -> None:
    groups, labels = _patches(10, 30, seed)
    is_val = split_by_group(groups, labels, 0.2, seed)
    for group in np.unique(groups):
        assert len(np.unique(is_val[groups == group])) == 1
    assert 0.1 <= is_val.mean() <= 0.4
    assert set(labels[is_val]) == {0, 1} and set(labels[~is_val]) == {0, 1}


def test_split_is_deterministic_and_seed_dependent() -> None:
    groups, labels = _patches(20, 10)
    a = split_by_group(groups, labels, 0.25, 3)
    assert np.array_equal(a, split_by_group(groups, labels, 0.25, 3))
    assert any(not np.array_equal(a, split_by_group(groups, labels, 0.25, s)) for s in range(4, 8))


def test_classes_covered_when_groups_hold_one_class_each() -> None:
    # like the IDC patches: most patients have a single class
    groups = np.repeat(np.arange(8), 10)
    labels = np.repeat([0, 1, 1, 1, 1, 1, 0, 1], 10)
    is_val = split_by_group(groups, labels, 0.25, 0)
    assert set(labels[is_val]) == {0, 1}


def test_single_group_falls_back_to_spatial_blocks_with_a_warning() -> None:
    side = 12
    x, y = np.meshgrid(np.arange(side) * 256, np.arange(side) * 256)
    n = side * side
    labels = np.arange(n) % 2
    result = choose_split(np.zeros(n), np.ones(n), x.ravel(), y.ravel(), labels, 0.2, 0)
    assert result.method == "spatial" and "single patient" in result.warning
    assert 0.05 < result.is_val.mean() < 0.5
    # whole blocks: a 4 x 4 grid over the patches' level-0 extent
    block_side = (x.max() - x.min()) / 4
    bx = np.minimum(x.ravel() // block_side, 3)
    by = np.minimum(y.ravel() // block_side, 3)
    block = by * 4 + bx
    assert len(np.unique(block)) == 16
    for b in np.unique(block):
        assert len(np.unique(result.is_val[block == b])) == 1


def test_bad_split_inputs() -> None:
    groups, labels = _patches(3, 4)
    with pytest.raises(ConfigError, match="validation fraction"):
        choose_split(groups, np.zeros(12), np.zeros(12), np.zeros(12), labels, 1.0, 0)
    with pytest.raises(ConfigError, match="one spot"):
        choose_split(
            np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3), np.array([0, 1, 0]), 0.3, 0
        )
