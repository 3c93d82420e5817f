"""Per-patch values -> one RGBA image layer over the slide (vectorised numpy).

Frames: patches are given in level-0 px (``l0_x``, ``l0_y`` top-left corner, ``l0_size``
side). The output image covers the whole slide at ``downsample`` level-0 px per output
pixel: shape ``(ceil(slide_l0_h / downsample), ceil(slide_l0_w / downsample), 4)``, uint8
RGBA, straight (not premultiplied) alpha. Output pixel ``(r, c)`` shows the patches that
contain its centre, level-0 point ``((c + 0.5) * downsample, (r + 0.5) * downsample)``; a
patch smaller than one output pixel still paints the pixel holding its centre.

Overlapping patches (stride < size) are averaged (continuous values) or decided by
majority (categorical labels). NaN values and label -1 mean "no value" and leave pixels
fully transparent.

How it stays fast: patches are rasterised on a cell grid with 2-D difference arrays
(``O(n_patches + n_cells)``, independent of how many cells a patch covers). When the patch
coordinates lie on a lattice coarser than an output pixel (the usual case: a regular grid
shown zoomed out) the cells are lattice cells, colour-mapped once and expanded to the
output by one gather; otherwise the cells are the output pixels themselves.

Pure functions of their inputs; safe from any thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.heatmap.colormaps import DEFAULT_COLORMAP, class_colors, colormap_lut
from cdfis_desktop.core.heatmap.ranges import ValueRange, resolve_range

_TRANSPARENT = 256  # colour-table row for "no value"


def render_patch_heatmap(
    l0_x: np.ndarray,
    l0_y: np.ndarray,
    l0_size: int | np.ndarray,
    values: np.ndarray,
    *,
    slide_l0_w: int,
    slide_l0_h: int,
    downsample: float,
    colormap: str = DEFAULT_COLORMAP,
    value_range: ValueRange | tuple[float, float] | None = None,
    opacity: float = 0.5,
) -> np.ndarray:
    """Colour-map one value per patch into a ``uint8[H, W, 4]`` RGBA layer.

    ``l0_x``, ``l0_y``: int ``[n]``; ``l0_size``: int or int ``[n]``; ``values``: float
    ``[n]`` (NaN = no value). ``value_range`` None picks the automatic range for the
    colormap (percentiles, or symmetric around 0 for diverging maps, see
    :mod:`~cdfis_desktop.core.heatmap.ranges`). ``opacity`` in ``[0, 1]`` becomes the alpha
    of every painted pixel. Raises :class:`ConfigError` on mismatched lengths, a
    non-positive size/downsample/slide dimension, an opacity outside ``[0, 1]`` or an
    unknown colormap.
    """
    _check_opacity(opacity)
    table = _colour_table(colormap_lut(colormap), opacity)
    values = np.asarray(values, dtype=np.float64)
    raster = _Raster.build(l0_x, l0_y, l0_size, values.shape[0], slide_l0_w, slide_l0_h, downsample)
    cell_mean = raster.mean(values)
    cell_index = resolve_range(values, value_range, colormap).lut_index(cell_mean)
    return raster.expand(table[cell_index])


def render_categorical(
    l0_x: np.ndarray,
    l0_y: np.ndarray,
    l0_size: int | np.ndarray,
    labels: np.ndarray,
    *,
    slide_l0_w: int,
    slide_l0_h: int,
    downsample: float,
    colors: np.ndarray | None = None,
    opacity: float = 0.5,
) -> np.ndarray:
    """Paint one class per patch (labels, predictions) into a ``uint8[H, W, 4]`` layer.

    ``labels``: int ``[n]``, ``0 .. n_classes - 1``, -1 = unlabelled (transparent).
    ``colors``: ``uint8[n_classes, 3]`` RGB per label; None = :func:`class_colors`. Where
    patches overlap, the label covering the pixel most often wins (ties: the lower label).
    Raises :class:`ConfigError` as :func:`render_patch_heatmap`, and for a label below -1
    or without a colour.
    """
    _check_opacity(opacity)
    labels = np.asarray(labels, dtype=np.int64)
    n_classes = int(labels.max()) + 1 if labels.size else 0
    if colors is None:
        colors = class_colors(max(n_classes, 1))
    colors = np.asarray(colors, dtype=np.uint8)
    if colors.ndim != 2 or colors.shape[1] not in (3, 4) or colors.shape[0] > _TRANSPARENT:
        raise ConfigError(
            f"class colours must be an [n, 3] RGB table with n <= 256 (got shape {colors.shape})"
        )
    if labels.size and (labels.min() < -1 or n_classes > colors.shape[0]):
        raise ConfigError(
            f"labels must be -1 (unlabelled) or 0..{colors.shape[0] - 1} to match the "
            f"{colors.shape[0]} class colours (got {labels.min()}..{labels.max()})"
        )
    rgba = np.zeros((colors.shape[0], 4), dtype=np.uint8)
    rgba[:, :3] = colors[:, :3]
    rgba[:, 3] = 255
    table = _colour_table(rgba, opacity)
    raster = _Raster.build(l0_x, l0_y, l0_size, labels.shape[0], slide_l0_w, slide_l0_h, downsample)
    return raster.expand(table[raster.majority(labels, colors.shape[0])])


def composite(thumbnail_rgb: np.ndarray, heatmap_rgba: np.ndarray) -> np.ndarray:
    """Alpha-blend a heatmap layer over a slide image; ``uint8[h, w, 3]``.

    ``thumbnail_rgb``: ``uint8[h, w, 3]``; ``heatmap_rgba``: ``uint8[H, W, 4]`` covering the
    same slide area. When the sizes differ the layer is resampled to the thumbnail's size
    (nearest neighbour, pixel centres), so a layer rendered at any downsample fits.
    """
    base = np.asarray(thumbnail_rgb)
    layer = np.asarray(heatmap_rgba)
    if base.ndim != 3 or base.shape[2] != 3 or layer.ndim != 3 or layer.shape[2] != 4:
        raise ConfigError(
            f"composite needs an [h, w, 3] image and an [H, W, 4] layer "
            f"(got {base.shape} and {layer.shape})"
        )
    if layer.shape[:2] != base.shape[:2]:
        rows = ((np.arange(base.shape[0]) + 0.5) * layer.shape[0] / base.shape[0]).astype(np.intp)
        cols = ((np.arange(base.shape[1]) + 0.5) * layer.shape[1] / base.shape[1]).astype(np.intp)
        layer = layer[rows[:, None], cols[None, :]]
    alpha = layer[:, :, 3:4].astype(np.float32) / 255.0
    blended = base.astype(np.float32) * (1.0 - alpha) + layer[:, :, :3].astype(np.float32) * alpha
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def output_shape(slide_l0_w: int, slide_l0_h: int, downsample: float) -> tuple[int, int]:
    """``(H, W)`` of a layer covering the slide at ``downsample`` level-0 px per pixel."""
    if slide_l0_w < 1 or slide_l0_h < 1:
        raise ConfigError(f"slide dimensions must be positive (got {slide_l0_w} x {slide_l0_h})")
    if not downsample > 0:
        raise ConfigError(f"downsample must be positive (got {downsample})")
    return math.ceil(slide_l0_h / downsample), math.ceil(slide_l0_w / downsample)


def _check_opacity(opacity: float) -> None:
    if not 0.0 <= opacity <= 1.0:
        raise ConfigError(f"opacity must be between 0 and 1 (got {opacity})")


def _colour_table(rgba_rows: np.ndarray, opacity: float) -> np.ndarray:
    """``uint32[257]``: up to 256 RGBA rows packed as one word each, opacity applied, and
    row 256 transparent ("no value"); packing lets one gather produce a whole image."""
    rows = np.zeros((_TRANSPARENT + 1, 4), dtype=np.uint8)
    n = rgba_rows.shape[0]
    rows[:n, :3] = rgba_rows[:, :3]
    rows[:n, 3] = np.rint(rgba_rows[:, 3].astype(np.float32) * opacity).astype(np.uint8)
    return rows.view(np.uint32).ravel()


@dataclass(frozen=True)
class _Raster:
    """Patches as half-open cell rectangles ``[r0, r1) x [c0, c1)`` on a ``grid_h x grid_w``
    cell grid, and the map from output pixels to cells (``-1``: outside every cell)."""

    r0: np.ndarray
    r1: np.ndarray
    c0: np.ndarray
    c1: np.ndarray
    grid_h: int
    grid_w: int
    out_rows: np.ndarray | None  # cell row of each output row; None when cells = pixels
    out_cols: np.ndarray | None

    @classmethod
    def build(
        cls,
        l0_x: np.ndarray,
        l0_y: np.ndarray,
        l0_size: int | np.ndarray,
        n_values: int,
        slide_l0_w: int,
        slide_l0_h: int,
        downsample: float,
    ) -> _Raster:
        out_h, out_w = output_shape(slide_l0_w, slide_l0_h, downsample)
        x = np.asarray(l0_x, dtype=np.int64).ravel()
        y = np.asarray(l0_y, dtype=np.int64).ravel()
        if not x.shape[0] == y.shape[0] == n_values:
            raise ConfigError(
                f"l0_x, l0_y and the values must have one entry per patch "
                f"(got {x.shape[0]}, {y.shape[0]}, {n_values})"
            )
        size = np.broadcast_to(np.asarray(l0_size, dtype=np.int64), x.shape)
        if size.size and size.min() < 1:
            raise ConfigError(f"patch sizes must be at least 1 level-0 px (got {size.min()})")
        if x.size == 0:
            empty = np.zeros(0, dtype=np.int64)
            return cls(empty, empty, empty, empty, out_h, out_w, None, None)
        origin_x, origin_y = int(x.min()), int(y.min())
        cell = int(np.gcd.reduce(np.concatenate([x - origin_x, y - origin_y, size])))
        if cell >= downsample:
            return cls._on_lattice(x, y, size, origin_x, origin_y, cell, downsample, out_h, out_w)
        return cls._on_pixels(x, y, size, downsample, out_h, out_w)

    @classmethod
    def _on_lattice(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        size: np.ndarray,
        origin_x: int,
        origin_y: int,
        cell: int,
        downsample: float,
        out_h: int,
        out_w: int,
    ) -> _Raster:
        c0 = (x - origin_x) // cell
        r0 = (y - origin_y) // cell
        c1 = c0 + size // cell
        r1 = r0 + size // cell
        grid_h, grid_w = int(r1.max()), int(c1.max())
        out_rows = _pixel_to_cell(out_h, downsample, origin_y, cell, grid_h)
        out_cols = _pixel_to_cell(out_w, downsample, origin_x, cell, grid_w)
        return cls(r0, r1, c0, c1, grid_h, grid_w, out_rows, out_cols)

    @classmethod
    def _on_pixels(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        size: np.ndarray,
        downsample: float,
        out_h: int,
        out_w: int,
    ) -> _Raster:
        c0, c1 = _covered_pixels(x, size, downsample, out_w)
        r0, r1 = _covered_pixels(y, size, downsample, out_h)
        return cls(r0, r1, c0, c1, out_h, out_w, None, None)

    def _coverage_sum(self, weights: np.ndarray | None, keep: np.ndarray) -> np.ndarray:
        """Per cell, the sum of ``weights`` (or the count) of the kept patches covering it."""
        r0, r1, c0, c1 = self.r0[keep], self.r1[keep], self.c0[keep], self.c1[keep]
        wt = None if weights is None else weights[keep]
        if np.all(r1 - r0 == 1) and np.all(c1 - c0 == 1):  # one cell per patch: no overlap
            cells = self.grid_h * self.grid_w
            flat = np.bincount(r0 * self.grid_w + c0, weights=wt, minlength=cells)
            return flat.astype(np.float64).reshape(self.grid_h, self.grid_w)
        h, w = self.grid_h + 1, self.grid_w + 1
        corners = np.concatenate([r0 * w + c0, r0 * w + c1, r1 * w + c0, r1 * w + c1])
        signs = np.repeat(np.array([1.0, -1.0, -1.0, 1.0]), r0.shape[0])
        if wt is not None:
            signs = signs * np.tile(wt, 4)
        diff = np.bincount(corners, weights=signs, minlength=h * w).reshape(h, w)
        return np.cumsum(np.cumsum(diff, axis=0), axis=1)[:-1, :-1]

    def _kept(self) -> np.ndarray:
        return (self.r1 > self.r0) & (self.c1 > self.c0)

    def mean(self, values: np.ndarray) -> np.ndarray:
        """``float64[grid_h, grid_w]``: mean value of the patches covering each cell (NaN if
        none); NaN values are ignored."""
        keep = self._kept() & ~np.isnan(values)
        count = np.rint(self._coverage_sum(None, keep))
        total = self._coverage_sum(values, keep)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    def majority(self, labels: np.ndarray, n_classes: int) -> np.ndarray:
        """``intp[grid_h, grid_w]``: the label covering each cell most often, or 256
        (transparent) where no labelled patch covers it."""
        best = np.full((self.grid_h, self.grid_w), _TRANSPARENT, dtype=np.intp)
        best_count = np.zeros((self.grid_h, self.grid_w), dtype=np.float64)
        kept = self._kept()
        for label in range(n_classes):
            count = np.rint(self._coverage_sum(None, kept & (labels == label)))
            better = count > best_count
            best[better] = label
            best_count[better] = count[better]
        return best

    def expand(self, cell_rgba32: np.ndarray) -> np.ndarray:
        """Packed cell colours ``uint32[grid_h, grid_w]`` -> output ``uint8[H, W, 4]``."""
        if self.out_rows is None or self.out_cols is None:
            packed = cell_rgba32
        else:
            padded = np.zeros((self.grid_h + 1, self.grid_w + 1), dtype=np.uint32)
            padded[:-1, :-1] = cell_rgba32
            packed = padded[self.out_rows[:, None], self.out_cols[None, :]]
        packed = np.ascontiguousarray(packed, dtype=np.uint32)
        return packed.view(np.uint8).reshape(packed.shape[0], packed.shape[1], 4)


def _pixel_to_cell(
    n_out: int, downsample: float, origin: int, cell: int, n_cells: int
) -> np.ndarray:
    """Cell index under the centre of each output pixel; ``n_cells`` (the transparent
    padding cell) where the centre falls outside the grid."""
    centre_l0 = (np.arange(n_out, dtype=np.float64) + 0.5) * downsample
    index = np.floor((centre_l0 - origin) / cell).astype(np.int64)
    index[(index < 0) | (index >= n_cells)] = n_cells
    return index


def _covered_pixels(
    start_l0: np.ndarray, size_l0: np.ndarray, downsample: float, n_out: int
) -> tuple[np.ndarray, np.ndarray]:
    """Half-open output-pixel range ``[p0, p1)`` whose centres lie in ``[start, start+size)``;
    a patch containing no pixel centre gets the single pixel holding its own centre."""
    p0 = np.ceil(start_l0 / downsample - 0.5).astype(np.int64)
    p1 = np.ceil((start_l0 + size_l0) / downsample - 0.5).astype(np.int64)
    empty = p1 <= p0
    p0[empty] = np.floor((start_l0[empty] + size_l0[empty] / 2.0) / downsample).astype(np.int64)
    p1[empty] = p0[empty] + 1
    return np.clip(p0, 0, n_out), np.clip(p1, 0, n_out)
