"""Per-patch values of two epochs or two runs, aligned by patch id, and their difference.

Both sides describe patches of the same slide by their store ids; a patch present on only
one side has no difference (NaN). Feed the result to ``render_patch_heatmap`` with a
diverging colormap (``DIFFERENCE_COLORMAP``) so 0 sits at the neutral centre colour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from cdfis_desktop.core.errors import ConfigError


class PerPatchValues(Protocol):
    """What the store's heatmap query returns (any object with these ``[n]`` arrays)."""

    @property
    def patch_id(self) -> np.ndarray: ...
    @property
    def l0_x(self) -> np.ndarray: ...
    @property
    def l0_y(self) -> np.ndarray: ...
    @property
    def l0_size(self) -> np.ndarray: ...
    @property
    def value(self) -> np.ndarray: ...


@dataclass(frozen=True)
class PatchValues:
    """One value per patch: ``patch_id`` int64[n] (sorted, unique), level-0 ``l0_x``,
    ``l0_y``, ``l0_size`` int64[n], ``value`` float64[n] (NaN = no value)."""

    patch_id: np.ndarray
    l0_x: np.ndarray
    l0_y: np.ndarray
    l0_size: np.ndarray
    value: np.ndarray

    def __len__(self) -> int:
        return int(self.patch_id.shape[0])


def difference(values_a: PerPatchValues, values_b: PerPatchValues) -> PatchValues:
    """``a - b`` per patch id over the union of both id sets (NaN where either side lacks
    the patch or has NaN). Coordinates come from ``a`` where it has the patch, else ``b``.

    Raises :class:`ConfigError` when one side repeats a patch id or its arrays differ in
    length.
    """
    ids_a, a = _by_id(values_a, "first")
    ids_b, b = _by_id(values_b, "second")
    ids = np.union1d(ids_a, ids_b)
    in_a, has_a = _lookup(ids_a, ids)
    in_b, has_b = _lookup(ids_b, ids)
    value = np.full(ids.shape, np.nan)
    both = has_a & has_b
    value[both] = a["value"][in_a[both]] - b["value"][in_b[both]]
    coords = {}
    for name in ("l0_x", "l0_y", "l0_size"):
        column = np.zeros(ids.shape, dtype=np.int64)
        column[has_b] = b[name][in_b[has_b]]
        column[has_a] = a[name][in_a[has_a]]
        coords[name] = column
    return PatchValues(ids, coords["l0_x"], coords["l0_y"], coords["l0_size"], value)


def _by_id(values: PerPatchValues, which: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    ids = np.asarray(values.patch_id, dtype=np.int64)
    columns = {
        "value": np.asarray(values.value, dtype=np.float64),
        "l0_x": np.asarray(values.l0_x, dtype=np.int64),
        "l0_y": np.asarray(values.l0_y, dtype=np.int64),
        "l0_size": np.broadcast_to(np.asarray(values.l0_size, dtype=np.int64), ids.shape),
    }
    if any(column.shape != ids.shape for column in columns.values()):
        raise ConfigError(f"the {which} set of patch values has arrays of different lengths")
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    if ids.size > 1 and np.any(ids[1:] == ids[:-1]):
        raise ConfigError(f"the {which} set of patch values repeats a patch id")
    return ids, {name: column[order] for name, column in columns.items()}


def _lookup(sorted_ids: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each ``query`` id in ``sorted_ids`` and whether it is there at all."""
    if sorted_ids.size == 0:
        return np.zeros(query.shape, dtype=np.intp), np.zeros(query.shape, dtype=bool)
    position = np.minimum(np.searchsorted(sorted_ids, query), sorted_ids.size - 1)
    return position, sorted_ids[position] == query
