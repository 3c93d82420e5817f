"""The validation split: by slide group (patient), never by patch.

Patches of one patient are strongly correlated; putting some in training and some in
validation leaks and inflates validation accuracy. So the split is over **groups**
(``SlideRecord.group``, the patient/case id; a slide without a group is its own group):

- :func:`split_by_group`: whole groups go to validation, in a seeded random order, until
  about ``val_fraction`` of the patches is reached. Among the first 64 seeded orders the
  first one whose validation set holds every class present (and leaves every class in
  training) is used, so AUC and balanced accuracy stay defined when possible.
- :func:`spatial_split` is the fallback when the project holds a single group: each slide
  is cut into a grid of square level-0 blocks (about 16 per slide) and whole blocks go to
  validation. Neighbouring patches still share tissue across block edges, so this split
  is optimistic; :class:`SplitResult` carries a warning saying so.

Both are deterministic for a given seed and input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cdfis_desktop.core.errors import ConfigError

_ORDERS_TRIED = 64
_BLOCKS_PER_SIDE = 4


@dataclass(frozen=True)
class SplitResult:
    """``is_val bool[n]`` over the patches given; ``warning`` is "" or a sentence for the user."""

    is_val: np.ndarray
    method: str
    warning: str = ""


def split_by_group(
    groups: np.ndarray, labels: np.ndarray, val_fraction: float, seed: int
) -> np.ndarray:
    """``is_val bool[n]``: whole groups (``groups[n]``, any hashable dtype) to validation."""
    unique, inverse = np.unique(groups, return_inverse=True)
    return _split_units(inverse, len(unique), labels, val_fraction, seed)


def spatial_split(
    slide_ids: np.ndarray,
    l0_x: np.ndarray,
    l0_y: np.ndarray,
    labels: np.ndarray,
    val_fraction: float,
    seed: int,
) -> np.ndarray:
    """``is_val bool[n]``: whole square level-0 blocks of each slide to validation."""
    units = np.zeros(len(slide_ids), dtype=np.int64)
    next_unit = 0
    for slide in np.unique(slide_ids):
        mine = slide_ids == slide
        x, y = l0_x[mine], l0_y[mine]
        side = max(int(x.max() - x.min()), int(y.max() - y.min()), 1) / _BLOCKS_PER_SIDE
        bx = np.minimum(((x - x.min()) / side).astype(np.int64), _BLOCKS_PER_SIDE - 1)
        by = np.minimum(((y - y.min()) / side).astype(np.int64), _BLOCKS_PER_SIDE - 1)
        units[mine] = next_unit + by * _BLOCKS_PER_SIDE + bx
        next_unit += _BLOCKS_PER_SIDE * _BLOCKS_PER_SIDE
    unique, inverse = np.unique(units, return_inverse=True)
    if len(unique) < 2:
        raise ConfigError(
            "all patches lie in one spot of one slide, so no validation set can be split off; "
            "import more tissue or slides"
        )
    return _split_units(inverse, len(unique), labels, val_fraction, seed)


def choose_split(
    groups: np.ndarray,
    slide_ids: np.ndarray,
    l0_x: np.ndarray,
    l0_y: np.ndarray,
    labels: np.ndarray,
    val_fraction: float,
    seed: int,
) -> SplitResult:
    """Split by group when there are at least two groups, else spatially (with a warning).

    All arrays have length n (one entry per labelled patch). Raises :class:`ConfigError`
    when ``val_fraction`` is not in (0, 1) or there are fewer than 2 patches.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"validation fraction must be between 0 and 1 (got {val_fraction})")
    if len(labels) < 2:
        raise ConfigError("at least 2 labelled patches are needed to train and validate")
    if len(np.unique(groups)) >= 2:
        return SplitResult(split_by_group(groups, labels, val_fraction, seed), "group")
    is_val = spatial_split(slide_ids, l0_x, l0_y, labels, val_fraction, seed)
    return SplitResult(
        is_val,
        "spatial",
        "the project has a single patient/slide group, so validation uses spatial blocks of "
        "the same tissue; expect optimistic validation scores (add slides of other patients "
        "for an honest split)",
    )


def _split_units(
    unit_of: np.ndarray, n_units: int, labels: np.ndarray, val_fraction: float, seed: int
) -> np.ndarray:
    """Assign whole units to validation, trying seeded orders until classes are covered."""
    labels = np.asarray(labels)
    sizes = np.bincount(unit_of, minlength=n_units)
    target = val_fraction * len(unit_of)
    classes = np.unique(labels)
    rng = np.random.default_rng(seed)
    candidates = (
        _prefix_split(unit_of, sizes, rng.permutation(n_units), target)
        for _ in range(_ORDERS_TRIED)
    )
    first = next(candidates)
    if _covers(labels, first, classes):
        return first
    return next((c for c in candidates if _covers(labels, c, classes)), first)


def _prefix_split(
    unit_of: np.ndarray, sizes: np.ndarray, order: np.ndarray, target: float
) -> np.ndarray:
    """Validation = the shortest prefix of ``order`` reaching ``target`` patches, but never
    all units (at least one stays in training)."""
    cumulative = np.cumsum(sizes[order])
    n_val = min(max(int(np.searchsorted(cumulative, target)) + 1, 1), len(order) - 1)
    return np.isin(unit_of, order[:n_val])


def _covers(labels: np.ndarray, is_val: np.ndarray, classes: np.ndarray) -> bool:
    return bool(
        np.array_equal(np.unique(labels[is_val]), classes)
        and np.array_equal(np.unique(labels[~is_val]), classes)
    )
