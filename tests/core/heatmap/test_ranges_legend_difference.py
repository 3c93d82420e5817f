"""Value ranges, legends and patch-id aligned differences."""

from __future__ import annotations

import numpy as np
import pytest

from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.heatmap import (
    PatchValues,
    ValueRange,
    auto_range,
    available_colormaps,
    colormap_lut,
    difference,
    legend_ticks,
    render_legend,
    resolve_range,
    symmetric_range,
)


def test_available_colormaps_have_256_entry_tables() -> None:
    names = available_colormaps()
    assert {"viridis", "inferno", "jet", "RdBu_r"} <= set(names)
    for name in names:
        lut = colormap_lut(name)
        assert lut.shape == (256, 4) and lut.dtype == np.uint8 and not lut.flags.writeable


def test_auto_range_uses_percentiles_and_handles_no_values() -> None:
    values = np.append(np.arange(100, dtype=float), [1e9, np.nan, np.inf])
    value_range = auto_range(values)
    assert 1.0 < value_range.low < 3.0 and 96.0 < value_range.high < 100.0
    assert auto_range(np.array([np.nan])) == ValueRange(0.0, 1.0)


def test_symmetric_range_and_resolution_by_colormap() -> None:
    values = np.array([-3.0, 1.0, 2.0, np.nan])
    assert symmetric_range(values, percentile=100) == ValueRange(-3.0, 3.0)
    assert symmetric_range(np.zeros(3)) == ValueRange(-1.0, 1.0)
    assert (
        resolve_range(values, None, "coolwarm").low == -resolve_range(values, None, "coolwarm").high
    )
    assert resolve_range(values, (0, 5), "coolwarm") == ValueRange(0.0, 5.0)


def test_value_range_rejects_non_finite_bounds() -> None:
    with pytest.raises(ConfigError, match="finite"):
        ValueRange(0.0, float("inf"))


def test_legend_ticks_lie_in_range_and_are_ordered() -> None:
    ticks = legend_ticks(ValueRange(0.13, 0.87))
    assert len(ticks) >= 2
    assert all(0.0 <= t.position <= 1.0 for t in ticks)
    assert [t.value for t in ticks] == sorted(t.value for t in ticks)
    assert all(t.text for t in ticks)
    assert len(legend_ticks(ValueRange(1.0, 1.0))) == 1


def test_render_legend_shows_the_colormap() -> None:
    image = render_legend("inferno", ValueRange(0.0, 2.0), "mean loss", 300, 80)
    assert image.shape == (80, 300, 4) and image.dtype == np.uint8
    assert np.all(image[:, :, 3] == 255)
    lut = colormap_lut("inferno")[:, :3].astype(int)
    pixels = image[:, :, :3].reshape(-1, 1, 3).astype(int)
    near = np.abs(pixels - lut[None, [20, 128, 235]]).sum(axis=2).min(axis=0)
    assert np.all(near <= 6)  # low, middle and high colours all appear in the bar
    vertical = render_legend("viridis", ValueRange(0.0, 2.0), "x", 80, 300)
    assert vertical.shape == (300, 80, 4)


def test_render_legend_rejects_tiny_size() -> None:
    with pytest.raises(ConfigError, match="at least"):
        render_legend("viridis", ValueRange(0.0, 1.0), "x", 10, 10)


def _values(ids: list[int], value: list[float]) -> PatchValues:
    ids_arr = np.array(ids)
    return PatchValues(ids_arr, ids_arr * 10, ids_arr * 0, np.full(len(ids), 10), np.array(value))


def test_difference_aligns_by_patch_id() -> None:
    a = _values([3, 1, 2], [3.0, 1.0, np.nan])
    b = _values([2, 3, 4], [0.5, 1.0, 7.0])
    diff = difference(a, b)
    assert diff.patch_id.tolist() == [1, 2, 3, 4]
    assert np.isnan(diff.value[0]) and np.isnan(diff.value[1]) and np.isnan(diff.value[3])
    assert diff.value[2] == 2.0
    assert diff.l0_x.tolist() == [10, 20, 30, 40]


def test_difference_rejects_repeated_ids() -> None:
    with pytest.raises(ConfigError, match="repeats"):
        difference(_values([1, 1], [0.0, 1.0]), _values([1], [0.0]))
