"""The patch grid: geometry, tissue filter, stable order, and fast patch reading."""

from __future__ import annotations

import numpy as np
import pytest

from cdfis_desktop.core.config import TilingConfig
from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.slides import InMemorySlide, open_slide
from cdfis_desktop.core.tiling.grid import (
    build_patch_grid,
    grid_from_mask,
    iter_patch_rows,
    level0_geometry,
    patch_at,
    read_patch,
)
from cdfis_desktop.core.tiling.tissue import TissueMask


def _half_tissue_mask() -> TissueMask:
    mask = np.zeros((100, 100), bool)
    mask[:, :50] = True  # left half of a 1000 x 1000 l0 px slide
    return TissueMask(mask=mask, l0_per_px=10.0, mpp=5.0)


def test_geometry_at_target_mpp() -> None:
    assert level0_geometry(TilingConfig(patch_px=256, mpp=0.5), 0.25) == (512, 512)
    assert level0_geometry(TilingConfig(patch_px=96, mpp=1.0, stride_px=48), 0.5) == (192, 96)
    assert level0_geometry(TilingConfig(patch_px=256, mpp=0.5), 0.499) == (257, 257)


def test_grid_keeps_tissue_patches_row_major() -> None:
    grid = grid_from_mask(
        (1000, 1000), 0.5, _half_tissue_mask(), TilingConfig(patch_px=100, mpp=1.0)
    )
    assert grid.l0_size == 200 and grid.patch_px == 100 and grid.mpp == 1.0
    # 5 x 5 positions; columns at x = 0, 200 fully tissue, x = 400 straddles (50 %).
    assert list(zip(grid.l0_x.tolist(), grid.l0_y.tolist(), strict=True))[:4] == [
        (0, 0),
        (200, 0),
        (400, 0),
        (0, 200),
    ]
    assert len(grid) == 15
    assert grid.l0_x.dtype == np.int64 and grid.tissue_fraction.dtype == np.float32
    np.testing.assert_allclose(grid.tissue_fraction[:3], [1.0, 1.0, 0.5])
    with pytest.raises(ValueError):
        grid.l0_x[0] = 5  # frozen arrays


def test_min_tissue_and_stride() -> None:
    strict = grid_from_mask(
        (1000, 1000), 0.5, _half_tissue_mask(), TilingConfig(patch_px=100, mpp=1.0, min_tissue=0.9)
    )
    assert set(strict.l0_x.tolist()) == {0, 200}
    overlapping = grid_from_mask(
        (1000, 1000), 0.5, _half_tissue_mask(), TilingConfig(patch_px=100, mpp=1.0, stride_px=50)
    )
    assert overlapping.l0_stride == 100 and len(overlapping) == 5 * 9  # x in 0..400, 9 rows


def test_bad_config_rejected() -> None:
    with pytest.raises(ConfigError):
        grid_from_mask((100, 100), 0.5, _half_tissue_mask(), TilingConfig(patch_px=4))


def test_grid_is_stable_across_runs(synthetic_slide) -> None:
    config = TilingConfig(patch_px=96, mpp=1.0, min_tissue=0.5)
    grids = []
    for _ in range(2):
        with open_slide(synthetic_slide.slide_path) as slide:
            grids.append(build_patch_grid(slide, config))
    a, b = grids
    assert len(a) > 10
    assert (a.l0_x == b.l0_x).all() and (a.l0_y == b.l0_y).all()
    order = np.lexsort((a.l0_x, a.l0_y))
    assert (order == np.arange(len(a))).all()


@pytest.mark.parametrize("stride_px", [None, 48])
def test_row_reads_equal_single_reads(synthetic_slide, stride_px: int | None) -> None:
    config = TilingConfig(patch_px=96, mpp=1.0, min_tissue=0.3, stride_px=stride_px)
    with open_slide(synthetic_slide.slide_path) as slide:
        grid = build_patch_grid(slide, config)
        seen = []
        for indices, patches in iter_patch_rows(slide, grid, max_row_px=400):
            assert patches.shape == (len(indices), 96, 96, 3)
            for i, patch in zip(indices.tolist(), patches, strict=True):
                diff = np.abs(patch.astype(int) - read_patch(slide, grid, i).astype(int))
                assert diff.max() <= 1, i
            seen.extend(indices.tolist())
    assert seen == list(range(len(grid)))


def test_memory_slide_grid() -> None:
    rgb = np.full((600, 800, 3), 240, np.uint8)
    rgb[:, :400] = (230, 150, 190)
    slide = InMemorySlide(rgb, mpp=0.5, level_factors=(1,))
    grid = build_patch_grid(slide, TilingConfig(patch_px=50, mpp=1.0))
    assert set(grid.l0_x.tolist()) == {0, 100, 200, 300}
    assert len(grid) == 4 * 6


def test_patch_at_picks_the_containing_patch_nearest_its_centre() -> None:
    # two overlapping 100 px patches (stride 50) and one apart
    l0_x = np.array([0, 50, 400])
    l0_y = np.array([0, 0, 400])
    size = np.array([100, 100, 100])
    assert patch_at(l0_x, l0_y, size, 10, 10) == 0
    assert patch_at(l0_x, l0_y, size, 80, 50) == 1  # in both, nearer patch 1's centre
    assert patch_at(l0_x, l0_y, size, 499.5, 450) == 2
    assert patch_at(l0_x, l0_y, size, 500, 450) is None  # right edge is outside
    assert patch_at(l0_x[:0], l0_y[:0], size[:0], 10, 10) is None
