"""Reading many patches of a slide through a few large regions ("blocks").

One ``read_region`` per patch spends most of its time outside pixel decoding (a call into
OpenSlide, tile look-ups, an RGBA conversion per patch). Here the patches of a slide are
grouped into square blocks of level pixels; each block is read with one ``read_region`` at
the level ``read_region_at_mpp`` would use, and every patch is cut out of it and resized
exactly as ``read_region_at_mpp`` resizes it, so the result is **pixel-identical** to one
``read_region_at_mpp`` per patch (tested on real OpenSlide reads).

Identity needs each patch's corner to fall on a whole pixel of the level read: OpenSlide
interpolates a region whose level-0 corner is not a multiple of the level's downsample.
Patches where that does not hold (a non-integer downsample, a corner off the level's pixel
grid) become blocks of one patch, read with ``read_region_at_mpp`` itself.

Memory: a block decodes at most ``block_px`` + one patch squared level pixels (and never
more than the read-size limit of :mod:`.guards`). Thread rules: the functions are pure;
:func:`read_patch_block` uses ``slide`` from the calling thread only (give each thread or
worker process its own reader).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cdfis_desktop.core.slides.guards import check_read_at_mpp, max_read_pixels, read_plan_at_mpp
from cdfis_desktop.core.slides.reader import SlideReader, fit_level_region, level_read_px

DEFAULT_BLOCK_PX = 2048
"""Side of a block in level px (16 MiB as OpenSlide's RGBA)."""


@dataclass(frozen=True)
class PatchBlock:
    """Patches served by one region read. ``positions int64[k]``: indices into the arrays
    given to :func:`plan_patch_blocks`; ``l0_size``: their side (level-0 px); ``level``,
    ``l0_x``/``l0_y`` (the region's level-0 corner), ``read_w``/``read_h`` (its size, level
    px); ``lv_x``/``lv_y`` int64[k]: each patch's corner inside the region (level px).
    ``single``: one patch read with ``read_region_at_mpp`` (no whole-pixel corner)."""

    positions: np.ndarray
    l0_size: int
    level: int
    l0_x: int
    l0_y: int
    read_w: int
    read_h: int
    lv_x: np.ndarray
    lv_y: np.ndarray
    single: bool = False


def plan_patch_blocks(
    slide: SlideReader,
    l0_x: np.ndarray,
    l0_y: np.ndarray,
    l0_size: np.ndarray,
    out_px: int,
    block_px: int = DEFAULT_BLOCK_PX,
) -> list[PatchBlock]:
    """Blocks covering every patch (corners ``l0_x``, ``l0_y`` and sides ``l0_size``,
    int64[n] level-0 px) read at ``out_px`` x ``out_px`` over their side, in row-major
    block order. Raises SlideTooLargeError (reading nothing) when one patch alone passes
    the read-size limit."""
    l0_x, l0_y = np.asarray(l0_x, np.int64), np.asarray(l0_y, np.int64)
    l0_size = np.broadcast_to(np.asarray(l0_size, np.int64), l0_x.shape)
    blocks: list[PatchBlock] = []
    for size in np.unique(l0_size).tolist():
        of_size = np.flatnonzero(l0_size == size)
        mpp = slide.effective_mpp * size / out_px
        check_read_at_mpp(slide, out_px, out_px, mpp)
        level, lv_w, lv_h = read_plan_at_mpp(slide, out_px, out_px, mpp)
        read_w, read_h = level_read_px(lv_w, lv_h, out_px, out_px)
        downsample = slide.level_downsamples[level]
        whole = float(downsample).is_integer()
        step = int(downsample) if whole else 1
        aligned = whole & (l0_x[of_size] % step == 0) & (l0_y[of_size] % step == 0)
        for position in of_size[~aligned].tolist():
            blocks.append(_single(position, int(l0_x[position]), int(l0_y[position]), size))
        side = _block_side(block_px, read_w, read_h)
        blocks.extend(
            _grouped(of_size[aligned], l0_x, l0_y, size, level, step, read_w, read_h, side)
        )
    return blocks


def read_patch_block(slide: SlideReader, block: PatchBlock, out_px: int) -> np.ndarray:
    """The block's patches as uint8[k, out_px, out_px, 3], in ``block.positions`` order,
    each equal to ``slide.read_region_at_mpp(x, y, out_px, out_px, effective_mpp * l0_size
    / out_px)``. Raises what ``slide.read_region`` raises (SlideOpenError for a damaged
    file)."""
    mpp = slide.effective_mpp * block.l0_size / out_px
    if block.single:
        return slide.read_region_at_mpp(block.l0_x, block.l0_y, out_px, out_px, mpp)[None]
    _, lv_w, lv_h = read_plan_at_mpp(slide, out_px, out_px, mpp)
    read_w, read_h = level_read_px(lv_w, lv_h, out_px, out_px)
    region = slide.read_region(block.l0_x, block.l0_y, block.level, block.read_w, block.read_h)
    out = np.empty((len(block.positions), out_px, out_px, 3), np.uint8)
    for i, (x, y) in enumerate(zip(block.lv_x.tolist(), block.lv_y.tolist(), strict=True)):
        patch = np.ascontiguousarray(region[y : y + read_h, x : x + read_w])
        out[i] = fit_level_region(patch, lv_w, lv_h, out_px, out_px)
    return out


def _block_side(block_px: int, read_w: int, read_h: int) -> int:
    """Block side (level px) so a block region (side + one patch) stays within the limit."""
    fitting = math.isqrt(max_read_pixels()) - max(read_w, read_h)
    return max(1, min(block_px, fitting))


def _single(position: int, l0_x: int, l0_y: int, size: int) -> PatchBlock:
    one = np.array([position], np.int64)
    zero = np.zeros(1, np.int64)
    return PatchBlock(one, size, 0, l0_x, l0_y, 0, 0, zero, zero, single=True)


def _grouped(
    positions: np.ndarray,
    l0_x: np.ndarray,
    l0_y: np.ndarray,
    size: int,
    level: int,
    step: int,
    read_w: int,
    read_h: int,
    side: int,
) -> list[PatchBlock]:
    """Blocks of the aligned ``positions``: patches grouped by the ``side``-px square of
    the level's pixel grid their corner falls in."""
    if positions.size == 0:
        return []
    lv_x, lv_y = l0_x[positions] // step, l0_y[positions] // step
    key_x, key_y = lv_x // side, lv_y // side
    order = np.lexsort((key_x, key_y))
    keys = np.stack([key_y[order], key_x[order]], axis=1)
    starts = np.flatnonzero(np.any(np.diff(keys, axis=0, prepend=-1), axis=1))
    blocks = []
    for chunk in np.split(order, starts[1:]):
        x0, y0 = int(lv_x[chunk].min()), int(lv_y[chunk].min())
        blocks.append(
            PatchBlock(
                positions=positions[chunk],
                l0_size=size,
                level=level,
                l0_x=x0 * step,
                l0_y=y0 * step,
                read_w=int(lv_x[chunk].max()) - x0 + read_w,
                read_h=int(lv_y[chunk].max()) - y0 + read_h,
                lv_x=lv_x[chunk] - x0,
                lv_y=lv_y[chunk] - y0,
            )
        )
    return blocks
