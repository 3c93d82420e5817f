"""Tissue detection on a low-resolution image of the slide (numpy + scipy + scikit-image).

Two rules, one per kind of slide (``stain``):

**brightfield** (H&E, IHC: tissue is darker and more coloured than the bright glass), per
pixel of an RGB image:
1. Pen ink is excluded by colour: green/blue/teal ink has G clearly above R (never so in
   H&E or haematoxylin counterstain), red ink has R far above G with B close to G (eosin
   pink keeps B well above G). The ink mask is opened (specks off) and dilated a little
   to take the ink's soft border with it.
2. Tissue = saturation above an Otsu threshold of the non-ink pixels, clamped to
   [``min_saturation``, ``max_saturation``]: the lower clamp keeps an all-white image from
   getting a meaningless threshold in its noise, the upper one keeps an all-tissue image
   from being split in two; and mean optical density above ``min_od`` (white, grey glass).

**fluorescence** (dark glass; tissue, or only its nuclei, emits light): tissue = brightness
(the brightest of R, G, B) smoothed with a Gaussian of ``signal_sigma_px`` (so that sparse
stained nuclei merge into the tissue around them) above an Otsu threshold of the log
brightness, clamped to [``min_signal``, ``max_signal``] (0..255). With a nuclear stain
(DAPI) tissue with few nuclei stays dark and is missed; the brightfield rule, in contrast,
would call the whole dark glass tissue (it is "dense").

**auto** (:func:`guess_stain`) takes a slide whose median brightness is below
:data:`DARK_GLASS_BRIGHTNESS` for fluorescence: glass is bright in brightfield, dark in
fluorescence.

Clean-up for both: an opening, objects smaller than ``min_object_px`` removed, holes
smaller than ``max_hole_px`` filled; ink pixels stay out.

Memory: :func:`detect_tissue` reads the slide in strips of at most :data:`STRIP_PX` source
pixels, and :func:`tissue_mask` computes the per-pixel quantities in blocks of
:data:`BLOCK_PX` pixels (plus a halo of rows for the neighbourhood operations, so the result
is the same as in one block), keeping a uint16 "level" (saturation or smoothed brightness)
and two flags per pixel: about 7 bytes per mask pixel with the RGB image, plus 5 for the
clean-up's component labels, instead of ~90 bytes when the whole image went through
float64 colour conversion at once; and :data:`MAX_MASK_PX` caps the mask's size. Measured
on a 100,000 px square slide at 0.5 µm/px: 60 s and 3.6 GB peak RSS before (one read, a
6250 x 6250 px mask), 15-20 s and 410 MB now (4096 x 4096 px; a shared 2-core machine).

Checked on the 34 real tiles of ``tiles_tissue/`` (tests/core/tiling/test_tissue_real.py)
and the two fluorescence NDPI slides. Known limit: out-of-focus dark purple ink is the
colour of haematoxylin and is kept. All functions are pure (any thread).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage import filters

from cdfis_desktop.core.config import TISSUE_STAINS
from cdfis_desktop.core.progress import CancelToken
from cdfis_desktop.core.slides.guards import check_read_at_mpp
from cdfis_desktop.core.slides.reader import SlideReader

DEFAULT_MASK_MPP = 8.0
"""µm/px of the image tissue is detected on (16x coarser than a 0.5 µm/px scan)."""

DARK_GLASS_BRIGHTNESS = 80
"""A slide image whose median brightness (max of R, G, B; 0..255) is below this is taken for
fluorescence. Brightfield glass is above 200 and H&E tissue above 100; the two fluorescence
NDPI slides of the test data have medians of 14 and 18."""

MAX_MASK_PX = 1 << 24
"""Most pixels of a slide's tissue mask (4096 x 4096): a larger slide gets a coarser mask
(a 100,000 px square slide at 0.5 µm/px: 12.2 µm/px instead of 8, still ten mask pixels
across a 256 px patch at 0.5 µm/px), which bounds memory and time whatever the slide."""

SIGNAL_SIGMA_UM = 16.0
"""Smoothing of the fluorescence brightness in µm (a couple of nuclei across)."""

STRIP_PX = 1 << 22
"""Source pixels read from the slide at a time by :func:`detect_tissue`."""

BLOCK_PX = 1 << 20
"""Mask pixels whose per-pixel quantities :func:`tissue_mask` computes at a time."""

_LEVELS = 1 << 16  # uint16 codes of the thresholded quantity
_OD_OF_VALUE = -np.log10((np.arange(256, dtype=np.float32) + 1.0) / 256.0)


@dataclass(frozen=True)
class TissueParams:
    """Thresholds of :func:`tissue_mask`: saturation in 0..1 and optical density (log10
    units) for brightfield; brightness 0..255 and smoothing in px for fluorescence; sizes
    in px of the image."""

    min_saturation: float = 0.05
    max_saturation: float = 0.09
    min_od: float = 0.04
    min_signal: float = 4.0
    max_signal: float = 40.0
    signal_sigma_px: float = 2.0
    min_object_px: int = 64
    max_hole_px: int = 1000


@dataclass(frozen=True)
class TissueMask:
    """A tissue mask ``mask`` bool[h, w] whose pixel (i, j) covers level-0 px
    [j * l0_per_px, (j + 1) * l0_per_px) x [i * l0_per_px, ...); ``mpp`` is its µm/px and
    ``stain`` the rule that made it (``brightfield`` or ``fluorescence``)."""

    mask: np.ndarray
    l0_per_px: float
    mpp: float
    stain: str = "brightfield"

    def fraction_in_boxes(self, l0_x: np.ndarray, l0_y: np.ndarray, l0_size: float) -> np.ndarray:
        """Tissue share (float32[n], 0..1) of the squares at level-0 corners (l0_x, l0_y)
        with side ``l0_size``; exact area weighting of partly covered mask pixels (the
        integral image is bilinear between its samples). Outside the mask counts as none."""
        integral = _integral_image(self.mask)
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


def _integral_image(mask: np.ndarray) -> np.ndarray:
    """int[h + 1, w + 1]: entry (i, j) counts the True pixels of ``mask`` above and left of it.

    Built in place in int32 (a 6250 x 6250 mask needs 156 MB, not 3 x 312 MB of int64 and
    float64 copies), rows added one by one (a strided accumulate down the columns is 3x
    slower) and then accumulated along each row."""
    height, width = mask.shape
    integral = np.zeros((height + 1, width + 1), np.int32 if height * width < 2**31 else np.int64)
    integral[1:, 1:] = mask
    for row in range(2, height + 1):
        np.add(integral[row], integral[row - 1], out=integral[row])
    np.add.accumulate(integral, axis=1, out=integral)
    return integral


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
    ink = green_blue | red
    if not ink.any():  # most of a slide: skip the morphology
        return ink
    ink = ndimage.binary_opening(ink)
    return ndimage.binary_dilation(ink, iterations=_PEN_DILATION)


_PEN_DILATION = 3
_PEN_HALO = 2 + _PEN_DILATION  # rows one output row of pen_mask depends on, each side


def _brightness(rgb: np.ndarray) -> np.ndarray:
    """uint8[..., 3] -> uint8[...]: the brightest channel (channel-wise maximum, much faster
    than a reduction over the last axis of size 3)."""
    return np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])


def guess_stain(rgb: np.ndarray) -> str:
    """``fluorescence`` when the median brightness of uint8[h, w, 3] is below
    :data:`DARK_GLASS_BRIGHTNESS`, else ``brightfield``."""
    counts = np.zeros(256, np.int64)
    for rows in _row_blocks(rgb.shape[0], rgb.shape[1], 0):
        counts += np.bincount(_brightness(rgb[rows]).ravel(), minlength=256)
    if counts.sum() == 0:
        return "brightfield"
    median = int(np.searchsorted(np.cumsum(counts), (counts.sum() + 1) // 2))
    return "fluorescence" if median < DARK_GLASS_BRIGHTNESS else "brightfield"


def tissue_mask(
    rgb: np.ndarray, params: TissueParams | None = None, stain: str = "brightfield"
) -> np.ndarray:
    """Tissue pixels of uint8[h, w, 3] (RGB; an alpha channel is ignored) -> bool[h, w], by
    the ``stain`` rule (``brightfield``, ``fluorescence`` or ``auto``)."""
    params = params or TissueParams()
    rgb = rgb[..., :3]
    if rgb.size == 0:
        return np.zeros(rgb.shape[:2], bool)
    rule = _RULES[guess_stain(rgb) if stain == "auto" else stain]
    level, allowed, counts = _features_in_blocks(rgb, rule, params)
    mask = level > _clamped_otsu(counts, rule, params)
    del level
    mask &= allowed
    mask = ndimage.binary_opening(mask)
    mask = _remove_small(mask, params.min_object_px)
    mask = ~_remove_small(~mask, params.max_hole_px)
    return mask & allowed


@dataclass(frozen=True)
class _Rule:
    """One stain's per-pixel features, computed on a block of rows (with ``halo`` rows of
    context each side): ``features(rgb, params) -> (level uint16, allowed bool, dense
    bool | None)``; ``level_values`` float64[65536] maps a level to the value Otsu sees;
    ``bounds(params)`` the threshold's clamp in those values."""

    halo: Callable[[TissueParams], int]
    features: Callable[[np.ndarray, TissueParams], tuple[np.ndarray, np.ndarray, np.ndarray | None]]
    level_values: np.ndarray
    bounds: Callable[[TissueParams], tuple[float, float]]


def _brightfield_features(
    rgb: np.ndarray, params: TissueParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Saturation (HSV: (max - min) / max) as a uint16 level, not-ink, OD above min_od."""
    high = _brightness(rgb).astype(np.uint32)
    spread = high - np.minimum(np.minimum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])
    level = (spread * (_LEVELS - 1) + high // 2) // np.maximum(high, 1)
    od = (_OD_OF_VALUE[rgb[..., 0]] + _OD_OF_VALUE[rgb[..., 1]] + _OD_OF_VALUE[rgb[..., 2]]) / 3
    return level.astype(np.uint16), ~pen_mask(rgb), od > params.min_od


def _fluorescence_features(
    rgb: np.ndarray, params: TissueParams
) -> tuple[np.ndarray, np.ndarray, None]:
    """Smoothed brightness x 256 as a uint16 level; every pixel allowed."""
    brightness = _brightness(rgb).astype(np.float32)
    smooth = ndimage.gaussian_filter(brightness, params.signal_sigma_px, mode="nearest")
    level = np.clip(np.rint(smooth * 256.0), 0, _LEVELS - 1).astype(np.uint16)
    return level, np.ones(level.shape, bool), None


_RULES = {
    "brightfield": _Rule(
        halo=lambda params: _PEN_HALO,
        features=_brightfield_features,
        level_values=np.arange(_LEVELS) / (_LEVELS - 1),
        bounds=lambda p: (p.min_saturation, p.max_saturation),
    ),
    "fluorescence": _Rule(
        halo=lambda params: math.ceil(4 * params.signal_sigma_px) + 1,  # the filter's reach
        features=_fluorescence_features,
        level_values=np.log1p(np.arange(_LEVELS) / 256.0),
        bounds=lambda p: (math.log1p(p.min_signal), math.log1p(p.max_signal)),
    ),
}
assert set(_RULES) | {"auto"} == set(TISSUE_STAINS)


def _row_blocks(height: int, width: int, halo: int) -> list[slice]:
    rows = max(1, BLOCK_PX // max(1, width), 4 * halo)
    return [slice(y, min(height, y + rows)) for y in range(0, height, rows)]


def _features_in_blocks(
    rgb: np.ndarray, rule: _Rule, params: TissueParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(level uint16[h, w], allowed bool[h, w], counts int64[65536]) computed block by block
    with the rule's halo. ``counts`` is the histogram of the allowed pixels' levels (what
    Otsu sees); the level of a pixel that is not dense is then set to 0, below any
    threshold (the thresholds' lower clamps are positive)."""
    height, width = rgb.shape[:2]
    halo = rule.halo(params)
    level = np.empty((height, width), np.uint16)
    allowed = np.empty((height, width), bool)
    counts = np.zeros(_LEVELS, np.int64)
    for rows in _row_blocks(height, width, halo):
        top, bottom = max(0, rows.start - halo), min(height, rows.stop + halo)
        block_level, block_allowed, dense = rule.features(rgb[top:bottom], params)
        core = slice(rows.start - top, rows.stop - top)
        block_level, block_allowed = block_level[core], block_allowed[core]
        counts += np.bincount(block_level[block_allowed], minlength=_LEVELS)
        level[rows] = block_level if dense is None else np.where(dense[core], block_level, 0)
        allowed[rows] = block_allowed
    return level, allowed, counts


def _clamped_otsu(counts: np.ndarray, rule: _Rule, params: TissueParams) -> int:
    """The largest level that is not tissue: Otsu's threshold of the histogram ``counts``
    (int64[65536] over levels) in the rule's values, clamped to the rule's bounds (the upper
    bound when there are fewer than two distinct values)."""
    low, high = rule.bounds(params)
    present = np.flatnonzero(counts)
    threshold = high
    if present.size > 1:
        values = rule.level_values[present]
        threshold = float(filters.threshold_otsu(hist=(counts[present], values)))
    threshold = float(np.clip(threshold, low, high))
    return int(np.searchsorted(rule.level_values, threshold, side="right")) - 1


def _remove_small(mask: np.ndarray, min_px: int) -> np.ndarray:
    """``mask`` without its 8-connected components of fewer than ``min_px`` pixels."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if count == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_px
    keep[0] = False
    return keep[labels]


def read_slide_image(
    slide: SlideReader, mpp: float, out_w: int, out_h: int, cancel: CancelToken | None = None
) -> np.ndarray:
    """The slide from its top-left corner at ``mpp`` µm/px as uint8[out_h, out_w, 3], read
    in horizontal strips of at most :data:`STRIP_PX` source pixels (so memory stays bounded
    whatever the slide's pyramid); ``cancel`` is checked before each strip (raises
    ``Cancelled``). Call from the thread owning ``slide``."""
    l0_per_px = mpp / slide.effective_mpp
    level = slide.best_level_for_downsample(l0_per_px)
    source_per_px = (l0_per_px / slide.level_downsamples[level]) ** 2
    rows = max(1, int(STRIP_PX // max(1.0, out_w * source_per_px)))
    image = np.empty((out_h, out_w, 3), np.uint8)
    for top in range(0, out_h, rows):
        if cancel is not None:
            cancel.raise_if_cancelled()
        height = min(rows, out_h - top)
        image[top : top + height] = slide.read_region_at_mpp(
            0, round(top * l0_per_px), out_w, height, mpp
        )
    return image


def detect_tissue(
    slide: SlideReader,
    mask_mpp: float = DEFAULT_MASK_MPP,
    min_object_um2: float = 20_000.0,
    max_hole_um2: float = 20_000.0,
    stain: str = "auto",
    cancel: CancelToken | None = None,
) -> TissueMask:
    """Tissue mask of a whole slide, computed at ``mask_mpp`` µm/px (coarser when the
    slide's own resolution is coarser, or when the mask would exceed :data:`MAX_MASK_PX`)
    with the ``stain`` rule (``auto``: guessed from the slide, see :func:`guess_stain`).
    Object and hole limits are in µm². The mask covers the whole mask pixels inside the
    slide (a partial last row/column of less than one mask pixel counts as no tissue).
    ``cancel`` is checked while the slide is read, in strips (:func:`read_slide_image`).
    Call from the thread owning ``slide``; an import checks :func:`check_tissue_readable`
    first."""
    mask_mpp, l0_per_px, out_w, out_h = _mask_geometry(slide, mask_mpp)
    image = read_slide_image(slide, mask_mpp, out_w, out_h, cancel)
    px_um2 = mask_mpp * mask_mpp
    params = TissueParams(
        min_object_px=max(1, round(min_object_um2 / px_um2)),
        max_hole_px=max(1, round(max_hole_um2 / px_um2)),
        signal_sigma_px=SIGNAL_SIGMA_UM / mask_mpp,
    )
    chosen = guess_stain(image) if stain == "auto" else stain
    mask = tissue_mask(image, params, chosen)
    return TissueMask(mask=mask, l0_per_px=l0_per_px, mpp=mask_mpp, stain=chosen)


def check_tissue_readable(slide: SlideReader, mask_mpp: float = DEFAULT_MASK_MPP) -> None:
    """Raise SlideTooLargeError when the level :func:`detect_tissue` reads from ``slide``
    (in strips, so memory stays bounded) passes the read-size limit in total: a large slide
    without a pyramid, whose full-resolution read would take very long. Reads nothing (an
    import checks every slide first)."""
    mask_mpp, _, out_w, out_h = _mask_geometry(slide, mask_mpp)
    check_read_at_mpp(slide, out_w, out_h, mask_mpp)


def _mask_geometry(slide: SlideReader, mask_mpp: float) -> tuple[float, float, int, int]:
    """(mask µm/px, level-0 px per mask px, mask width, mask height) for ``slide`` (see
    :func:`detect_tissue` and :data:`MAX_MASK_PX`)."""
    slide_mpp = slide.effective_mpp
    width, height = slide.dimensions
    fitting_mpp = slide_mpp * math.sqrt(width * height / MAX_MASK_PX)
    mask_mpp = max(mask_mpp, slide_mpp, fitting_mpp)
    l0_per_px = mask_mpp / slide_mpp
    out_w, out_h = max(1, int(width / l0_per_px)), max(1, int(height / l0_per_px))
    return mask_mpp, l0_per_px, out_w, out_h
