"""The patch grid: square patches at a target resolution, kept where there is tissue.

Patches are ``patch_px`` px at ``mpp`` µm/px, i.e. ``l0_size`` level-0 px, placed every
``stride`` from the slide's top-left corner, fully inside the slide. Order is row-major
(y, then x), so a patch's index is stable across runs for the same slide and config.
Coordinates are level-0 top-left corners.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from cdfis_desktop.core.config import TilingConfig
from cdfis_desktop.core.slides.reader import SlideReader
from cdfis_desktop.core.tiling.tissue import TissueMask, detect_tissue


@dataclass(frozen=True)
class PatchGrid:
    """Kept patches: ``l0_x``, ``l0_y`` int64[n] (level-0 top-left corners), ``tissue_fraction``
    float32[n]; ``l0_size`` the side in level-0 px, ``patch_px`` the side at ``mpp`` µm/px,
    ``l0_stride`` the step in level-0 px, ``slide_mpp`` the slide's level-0 µm/px used.
    The arrays are read-only."""

    l0_x: np.ndarray
    l0_y: np.ndarray
    tissue_fraction: np.ndarray
    l0_size: int
    patch_px: int
    mpp: float
    l0_stride: int
    slide_mpp: float

    def __post_init__(self) -> None:
        for array in (self.l0_x, self.l0_y, self.tissue_fraction):
            array.setflags(write=False)

    def __len__(self) -> int:
        return int(self.l0_x.shape[0])


def level0_geometry(config: TilingConfig, slide_mpp: float) -> tuple[int, int]:
    """(l0_size, l0_stride): patch side and step in level-0 px for a slide at ``slide_mpp``."""
    scale = config.mpp / slide_mpp
    l0_size = max(1, round(config.patch_px * scale))
    stride_px = config.stride_px if config.stride_px is not None else config.patch_px
    return l0_size, max(1, round(stride_px * scale))


def grid_from_mask(
    dimensions: tuple[int, int], slide_mpp: float, tissue: TissueMask, config: TilingConfig
) -> PatchGrid:
    """The grid over a ``dimensions`` = (w, h) level-0 slide at ``slide_mpp`` µm/px, keeping
    patches whose tissue share in ``tissue`` is at least ``config.min_tissue``."""
    config.validate()
    l0_size, l0_stride = level0_geometry(config, slide_mpp)
    width, height = dimensions
    xs = np.arange(0, width - l0_size + 1, l0_stride, dtype=np.int64)
    ys = np.arange(0, height - l0_size + 1, l0_stride, dtype=np.int64)
    l0_y, l0_x = (a.ravel() for a in np.meshgrid(ys, xs, indexing="ij"))
    fraction = tissue.fraction_in_boxes(l0_x, l0_y, l0_size)
    keep = fraction >= config.min_tissue
    return PatchGrid(
        l0_x=l0_x[keep].copy(),
        l0_y=l0_y[keep].copy(),
        tissue_fraction=fraction[keep].copy(),
        l0_size=l0_size,
        patch_px=config.patch_px,
        mpp=config.mpp,
        l0_stride=l0_stride,
        slide_mpp=slide_mpp,
    )


def build_patch_grid(
    slide: SlideReader, config: TilingConfig, tissue: TissueMask | None = None
) -> PatchGrid:
    """Detect tissue (unless given; with ``config.stain``) and build the grid of ``slide``
    for ``config``."""
    tissue = tissue if tissue is not None else detect_tissue(slide, stain=config.stain)
    return grid_from_mask(slide.dimensions, slide.effective_mpp, tissue, config)


def read_patch(slide: SlideReader, grid: PatchGrid, index: int) -> np.ndarray:
    """Patch ``index`` as uint8[patch_px, patch_px, 3] at the grid's mpp (one read)."""
    return slide.read_region_at_mpp(
        int(grid.l0_x[index]), int(grid.l0_y[index]), grid.patch_px, grid.patch_px, grid.mpp
    )


def iter_patch_rows(
    slide: SlideReader, grid: PatchGrid, max_row_px: int = 8192
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (indices int64[k], patches uint8[k, patch_px, patch_px, 3]) for all patches,
    reading each grid row as a few wide strips at the grid's mpp and cutting them up.

    Much faster than one read per patch (fewer, larger reads at the right level). Exact
    when ``l0_stride`` is a multiple of the level-0 px per output px; otherwise patches may
    be shifted by less than one output pixel. Call from the thread owning ``slide``.
    """
    if len(grid) == 0:
        return
    l0_per_px = grid.l0_size / grid.patch_px
    stride_px = max(1, round(grid.l0_stride / l0_per_px))
    max_patches = max(1, max_row_px // stride_px)
    starts = np.flatnonzero(np.diff(grid.l0_y, prepend=grid.l0_y[0] - 1))
    ends = np.append(starts[1:], len(grid))
    for start, end in zip(starts, ends, strict=True):
        index = np.arange(start, end, dtype=np.int64)
        # Split the row where patches are not adjacent or a strip would get too wide.
        col = np.round((grid.l0_x[index] - grid.l0_x[start]) / grid.l0_stride).astype(np.int64)
        breaks = np.flatnonzero((np.diff(col) != 1) | (np.arange(1, len(col)) % max_patches == 0))
        for run in np.split(index, breaks + 1):
            n = len(run)
            strip_w = (n - 1) * stride_px + grid.patch_px
            strip = slide.read_region_at_mpp(
                int(grid.l0_x[run[0]]), int(grid.l0_y[run[0]]), strip_w, grid.patch_px, grid.mpp
            )
            patches = np.stack(
                [strip[:, i * stride_px : i * stride_px + grid.patch_px] for i in range(n)]
            )
            yield run, patches


def patch_at(
    l0_x: np.ndarray, l0_y: np.ndarray, l0_size: np.ndarray, x: float, y: float
) -> int | None:
    """Index of the patch (top-left corners ``l0_x``, ``l0_y`` and sides ``l0_size``,
    arrays of level-0 px) that contains the level-0 point ``(x, y)``: the one whose centre
    is nearest when patches overlap; None when no patch contains it."""
    inside = (l0_x <= x) & (x < l0_x + l0_size) & (l0_y <= y) & (y < l0_y + l0_size)
    candidates = np.flatnonzero(inside)
    if candidates.size == 0:
        return None
    size = np.broadcast_to(l0_size, l0_x.shape)[candidates]
    centre_x = l0_x[candidates] + size / 2
    centre_y = l0_y[candidates] + size / 2
    return int(candidates[np.argmin((centre_x - x) ** 2 + (centre_y - y) ** 2)])
