"""Tissue detection on a low-resolution image of the slide (scikit-image + scipy).

Rule, per pixel of an RGB image:
1. Pen ink is excluded by colour: green/blue/teal ink has G clearly above R (never so in
   H&E or haematoxylin counterstain), red ink has R far above G with B close to G (eosin
   pink keeps B well above G). The ink mask is opened (specks off) and dilated a little
   to take the ink's soft border with it.
2. Tissue = saturation above an Otsu threshold of the non-ink pixels, clamped to
   [``min_saturation``, ``max_saturation``]: the lower clamp keeps an all-white image from
   getting a meaningless threshold in its noise, the upper one keeps an all-tissue image
   from being split in two; and mean optical density above ``min_od`` (white, grey glass).
3. Clean-up: an opening, objects smaller than ``min_object_px`` removed, holes smaller than
   ``max_hole_px`` filled; ink pixels stay out.

Checked on the 34 real tiles of ``tiles_tissue/`` (tests/core/tiling/test_tissue_real.py).
Known limit: out-of-focus dark purple ink is the colour of haematoxylin and is kept.
All functions are pure (any thread).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage import color, filters

from cdfis_desktop.core.slides.guards import check_read_at_mpp
from cdfis_desktop.core.slides.reader import SlideReader

DEFAULT_MASK_MPP = 8.0
"""µm/px of the image tissue is detected on (16x coarser than a 0.5 µm/px scan)."""


@dataclass(frozen=True)
class TissueParams:
    """Thresholds of :func:`tissue_mask` (saturation in 0..1, optical density log10 units)."""

    min_saturation: float = 0.05
    max_saturation: float = 0.09
    min_od: float = 0.04
    min_object_px: int = 64
    max_hole_px: int = 1000


@dataclass(frozen=True)
class TissueMask:
    """A tissue mask ``mask`` bool[h, w] whose pixel (i, j) covers level-0 px
    [j * l0_per_px, (j + 1) * l0_per_px) x [i * l0_per_px, ...); ``mpp`` is its µm/px."""

    mask: np.ndarray
    l0_per_px: float
    mpp: float

    def fraction_in_boxes(self, l0_x: np.ndarray, l0_y: np.ndarray, l0_size: float) -> np.ndarray:
        """Tissue share (float32[n], 0..1) of the squares at level-0 corners (l0_x, l0_y)
        with side ``l0_size``; exact area weighting of partly covered mask pixels (the
        integral image is bilinear between its samples). Outside the mask counts as none."""
        height, width = self.mask.shape
        integral = np.zeros((height + 1, width + 1), np.float64)
        integral[1:, 1:] = self.mask.cumsum(0).cumsum(1)
        x0 = np.asarray(l0_x, np.float64) / self.l0_per_px
        y0 = np.asarray(l0_y, np.float64) / self.l0_per_px
        side = l0_size / self.l0_per_px
        x1, y1 = x0 + side, y0 + side
        total = (
            _bilinear(integral, x1, y1)
            - _bilinear(integral, x0, y1)
            - _bilinear(integral, x1, y0)
            + _bilinear(integral, x0, y0)
        )
        return np.clip(total / (side * side), 0.0, 1.0).astype(np.float32)


def _bilinear(table: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Values of ``table`` (rows = y) at fractional (x, y), clamped to its extent."""
    x = np.clip(x, 0, table.shape[1] - 1)
    y = np.clip(y, 0, table.shape[0] - 1)
    xi = np.minimum(x.astype(np.int64), table.shape[1] - 2)
    yi = np.minimum(y.astype(np.int64), table.shape[0] - 2)
    fx, fy = x - xi, y - yi
    top = table[yi, xi] * (1 - fx) + table[yi, xi + 1] * fx
    bottom = table[yi + 1, xi] * (1 - fx) + table[yi + 1, xi + 1] * fx
    return top * (1 - fy) + bottom * fy


def pen_mask(rgb: np.ndarray) -> np.ndarray:
    """Pen-ink pixels of uint8[h, w, 3] -> bool[h, w] (see the module docstring)."""
    r, g, b = (rgb[..., i].astype(np.int16) for i in range(3))
    green_blue = (g - r > 12) & (np.minimum(g, b) < 235)
    red = (r - g > 25) & (4 * (b - g) < (r - g))
    ink = ndimage.binary_opening(green_blue | red)
    return ndimage.binary_dilation(ink, iterations=3)


def tissue_mask(rgb: np.ndarray, params: TissueParams | None = None) -> np.ndarray:
    """Tissue pixels of uint8[h, w, 3] (RGB; an alpha channel is ignored) -> bool[h, w]."""
    params = params or TissueParams()
    rgb = np.ascontiguousarray(rgb[..., :3])
    if rgb.size == 0:
        return np.zeros(rgb.shape[:2], bool)
    saturation = color.rgb2hsv(rgb)[..., 1]
    optical_density = -np.log10((rgb.astype(np.float32) + 1.0) / 256.0).mean(axis=-1)
    ink = pen_mask(rgb)
    candidates = saturation[~ink]
    threshold = params.max_saturation
    if candidates.size and np.ptp(candidates) > 0:
        threshold = float(filters.threshold_otsu(candidates))
    threshold = float(np.clip(threshold, params.min_saturation, params.max_saturation))
    mask = (saturation > threshold) & (optical_density > params.min_od) & ~ink
    mask = ndimage.binary_opening(mask)
    mask = _remove_small(mask, params.min_object_px)
    mask = ~_remove_small(~mask, params.max_hole_px)
    return mask & ~ink


def _remove_small(mask: np.ndarray, min_px: int) -> np.ndarray:
    """``mask`` without its 8-connected components of fewer than ``min_px`` pixels."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if count == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_px
    keep[0] = False
    return keep[labels]


def detect_tissue(
    slide: SlideReader,
    mask_mpp: float = DEFAULT_MASK_MPP,
    min_object_um2: float = 20_000.0,
    max_hole_um2: float = 20_000.0,
) -> TissueMask:
    """Tissue mask of a whole slide, computed at ``mask_mpp`` µm/px (or the slide's own
    resolution if coarser is impossible). Object and hole limits are in µm². Reads the slide
    once through ``read_region_at_mpp`` at the best level; call from the thread owning it.
    Raises SlideTooLargeError (before reading) when that read passes the read-size limit
    (:mod:`cdfis_desktop.core.slides.guards`), e.g. on a large slide without a pyramid."""
    mask_mpp, l0_per_px, out_w, out_h = _mask_geometry(slide, mask_mpp)
    image = slide.read_region_at_mpp(0, 0, out_w, out_h, mask_mpp)
    px_um2 = mask_mpp * mask_mpp
    params = TissueParams(
        min_object_px=max(1, round(min_object_um2 / px_um2)),
        max_hole_px=max(1, round(max_hole_um2 / px_um2)),
    )
    return TissueMask(mask=tissue_mask(image, params), l0_per_px=l0_per_px, mpp=mask_mpp)


def check_tissue_readable(slide: SlideReader, mask_mpp: float = DEFAULT_MASK_MPP) -> None:
    """Raise SlideTooLargeError when :func:`detect_tissue` would read more than the
    read-size limit from ``slide``; reads nothing (an import checks every slide first)."""
    mask_mpp, _, out_w, out_h = _mask_geometry(slide, mask_mpp)
    check_read_at_mpp(slide, out_w, out_h, mask_mpp)


def _mask_geometry(slide: SlideReader, mask_mpp: float) -> tuple[float, float, int, int]:
    """(mask µm/px, level-0 px per mask px, mask width, mask height) for ``slide``."""
    slide_mpp = slide.effective_mpp
    mask_mpp = max(mask_mpp, slide_mpp)
    l0_per_px = mask_mpp / slide_mpp
    width, height = slide.dimensions
    out_w, out_h = max(1, int(np.ceil(width / l0_per_px))), max(1, int(np.ceil(height / l0_per_px)))
    return mask_mpp, l0_per_px, out_w, out_h
