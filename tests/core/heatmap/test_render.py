"""Pixel-level checks of the heatmap layers (real numpy rendering, no mocks)."""

from __future__ import annotations

import numpy as np
import pytest

from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.heatmap import (
    ValueRange,
    class_colors,
    colormap_lut,
    composite,
    render_categorical,
    render_patch_heatmap,
)


def _grid(n_cols: int, n_rows: int, step: int, origin: tuple[int, int] = (0, 0)):
    cols, rows = np.meshgrid(np.arange(n_cols), np.arange(n_rows))
    return origin[0] + cols.ravel() * step, origin[1] + rows.ravel() * step


def _rgba(colormap: str, index: int, opacity: float) -> np.ndarray:
    colour = colormap_lut(colormap)[index].copy()
    colour[3] = round(255 * opacity)
    return colour


def test_max_value_patch_gets_top_colour_at_its_pixels() -> None:
    l0_x, l0_y = _grid(4, 3, 100)
    values = np.linspace(0.0, 1.0, 12)
    values[6] = 5.0  # patch (col 2, row 1): l0 x 200..300, y 100..200
    image = render_patch_heatmap(
        l0_x,
        l0_y,
        100,
        values,
        slide_l0_w=400,
        slide_l0_h=300,
        downsample=10,
        value_range=(0.0, 1.0),
        opacity=0.5,
    )
    assert image.shape == (30, 40, 4) and image.dtype == np.uint8
    top = _rgba("viridis", 255, 0.5)
    assert np.array_equal(image[10, 20], top) and np.array_equal(image[19, 29], top)
    assert not np.array_equal(image[9, 20], top) and not np.array_equal(image[10, 30], top)
    assert np.array_equal(image[0, 0], _rgba("viridis", 0, 0.5))


def test_nan_value_is_transparent_and_uncovered_area_too() -> None:
    l0_x, l0_y = _grid(2, 1, 50)
    image = render_patch_heatmap(
        l0_x, l0_y, 50, np.array([np.nan, 1.0]), slide_l0_w=200, slide_l0_h=60, downsample=5
    )
    assert np.all(image[:10, :10] == 0)  # the NaN patch
    assert np.all(image[:10, 10:20, 3] == 128)  # the valued patch, opacity 0.5
    assert np.all(image[:, 20:] == 0) and np.all(image[10:] == 0)  # no patch there


def test_percentile_range_ignores_one_outlier() -> None:
    rng = np.random.default_rng(0)
    l0_x, l0_y = _grid(20, 20, 10)
    values = rng.random(400)
    values[0] = 1e6
    image = render_patch_heatmap(
        l0_x, l0_y, 10, values, slide_l0_w=200, slide_l0_h=200, downsample=10
    )
    colours = np.unique(image.reshape(-1, 4), axis=0)
    assert len(colours) > 100  # a min-max range would paint 399 patches the bottom colour
    assert np.array_equal(image[0, 0], _rgba("viridis", 255, 0.5))


def test_diverging_map_is_centred_on_zero() -> None:
    l0_x, l0_y = _grid(3, 1, 10)
    values = np.array([-1.0, 0.0, 9.0])
    image = render_patch_heatmap(
        l0_x,
        l0_y,
        10,
        values,
        slide_l0_w=30,
        slide_l0_h=10,
        downsample=10,
        colormap="RdBu_r",
        opacity=1.0,
    )
    assert np.array_equal(image[0, 1], _rgba("RdBu_r", 128, 1.0))  # 0 -> the centre colour
    assert np.array_equal(image[0, 2], _rgba("RdBu_r", 255, 1.0))
    centre = image[0, 1, :3].astype(int)
    assert centre.min() > 200  # RdBu_r's centre is near white


def test_overlapping_patches_are_averaged() -> None:
    # size 20, stride 10: the middle cell is covered by both patches
    image = render_patch_heatmap(
        np.array([0, 10]),
        np.array([0, 0]),
        20,
        np.array([0.0, 1.0]),
        slide_l0_w=30,
        slide_l0_h=20,
        downsample=10,
        value_range=(0.0, 1.0),
        opacity=1.0,
    )
    assert np.array_equal(image[0, 0], _rgba("viridis", 0, 1.0))
    assert np.array_equal(image[0, 1], _rgba("viridis", 128, 1.0))
    assert np.array_equal(image[0, 2], _rgba("viridis", 255, 1.0))


def test_lattice_and_pixel_paths_agree_for_an_offset_grid() -> None:
    rng = np.random.default_rng(1)
    l0_x, l0_y = _grid(7, 5, 64, origin=(13, 29))
    values = rng.random(35)
    kwargs = dict(slide_l0_w=500, slide_l0_h=400, value_range=(0.0, 1.0), opacity=1.0)
    on_lattice = render_patch_heatmap(l0_x, l0_y, 64, values, downsample=8, **kwargs)
    # a distinct odd coordinate on one extra far-away NaN patch forces the pixel path
    on_pixels = render_patch_heatmap(
        np.append(l0_x, 491),
        np.append(l0_y, 397),
        np.append(np.full(35, 64), 1),
        np.append(values, np.nan),
        downsample=8,
        **kwargs,
    )
    assert np.array_equal(on_lattice, on_pixels)


def test_patch_smaller_than_a_pixel_paints_its_centre_pixel() -> None:
    image = render_patch_heatmap(
        np.array([33]),
        np.array([70]),
        4,
        np.array([1.0]),
        slide_l0_w=100,
        slide_l0_h=100,
        downsample=10,
    )
    assert image[7, 3, 3] > 0
    assert np.count_nonzero(image[:, :, 3]) == 1


def test_categorical_colours_unlabelled_and_majority() -> None:
    colors = class_colors(2)
    image = render_categorical(
        np.array([0, 10, 20, 20]),
        np.array([0, 0, 0, 0]),
        10,
        np.array([0, 1, -1, 1]),
        slide_l0_w=40,
        slide_l0_h=10,
        downsample=10,
        opacity=1.0,
    )
    assert np.array_equal(image[0, 0, :3], colors[0]) and image[0, 0, 3] == 255
    assert np.array_equal(image[0, 1, :3], colors[1])
    assert np.array_equal(image[0, 2, :3], colors[1])  # -1 and 1 overlap: the label wins
    assert np.all(image[0, 3] == 0)


def test_composite_blends_and_resamples() -> None:
    thumbnail = np.full((4, 6, 3), 200, dtype=np.uint8)
    layer = np.zeros((2, 3, 4), dtype=np.uint8)
    layer[0, 0] = (0, 0, 0, 255)
    layer[1, 2] = (100, 0, 0, 128)
    out = composite(thumbnail, layer)
    assert out.shape == (4, 6, 3)
    assert np.all(out[:2, :2] == 0)
    assert tuple(out[3, 5]) == (150, 100, 100)  # 200*(1-128/255) + 100*128/255
    assert np.all(out[0, 2:] == 200)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(values=np.zeros(3)), "one entry per patch"),
        (dict(colormap="rainbow"), "unknown colormap"),
        (dict(opacity=1.5), "opacity"),
        (dict(value_range=(2.0, 1.0)), "swap"),
        (dict(downsample=0), "downsample"),
        (dict(l0_size=0), "at least 1"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_error(kwargs: dict, message: str) -> None:
    args = dict(
        l0_x=np.array([0, 10]),
        l0_y=np.array([0, 0]),
        l0_size=10,
        values=np.zeros(2),
        slide_l0_w=20,
        slide_l0_h=10,
        downsample=1.0,
    )
    args.update(kwargs)
    with pytest.raises(ConfigError, match=message):
        render_patch_heatmap(
            args.pop("l0_x"), args.pop("l0_y"), args.pop("l0_size"), args.pop("values"), **args
        )


def test_categorical_rejects_labels_without_colours() -> None:
    with pytest.raises(ConfigError, match="class colours"):
        render_categorical(
            np.array([0]),
            np.array([0]),
            10,
            np.array([3]),
            slide_l0_w=10,
            slide_l0_h=10,
            downsample=1,
            colors=class_colors(2),
        )


def test_value_range_constant_maps_to_middle() -> None:
    assert ValueRange(2.0, 2.0).lut_index(np.array([2.0, np.nan])).tolist() == [128, 256]
