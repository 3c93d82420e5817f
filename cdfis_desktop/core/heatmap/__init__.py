"""Heatmaps: per-patch values -> one RGBA numpy image layer, colormaps, ranges, legends.

Pure numpy plus matplotlib's colormap tables and Agg canvas; no Qt. The GUI turns the
``uint8[H, W, 4]`` layers into a QImage with one helper; reports and exports save them.

- :func:`render_patch_heatmap` / :func:`render_categorical`: patches (level-0 px) -> layer.
- :func:`composite`: layer over a slide thumbnail -> ``uint8[h, w, 3]``.
- :func:`auto_range`, :func:`symmetric_range`, :class:`ValueRange`: value -> colour.
- :class:`LegendSpec`, :func:`legend_image`, :func:`render_legend`, :func:`legend_ticks`:
  legends as data and as images.
- :func:`difference`: epoch/run differences aligned by patch id.
- :mod:`.metrics`: the metric registry (the only list of drawable/exported metrics).
- :mod:`.overlay`: the overlay service, store -> layer + legend (imported on its own: it
  is the one module of this package that reads the store).
"""

from __future__ import annotations

from cdfis_desktop.core.heatmap.colormaps import (
    DEFAULT_COLORMAP,
    DIFFERENCE_COLORMAP,
    available_colormaps,
    class_colors,
    colormap_lut,
    is_diverging,
)
from cdfis_desktop.core.heatmap.difference import PatchValues, PerPatchValues, difference
from cdfis_desktop.core.heatmap.legend import (
    LegendSpec,
    LegendTick,
    legend_image,
    legend_ticks,
    render_legend,
)
from cdfis_desktop.core.heatmap.ranges import (
    ValueRange,
    auto_range,
    resolve_range,
    symmetric_range,
)
from cdfis_desktop.core.heatmap.render import (
    composite,
    output_shape,
    render_categorical,
    render_patch_heatmap,
)

__all__ = [
    "DEFAULT_COLORMAP",
    "DIFFERENCE_COLORMAP",
    "LegendSpec",
    "LegendTick",
    "PatchValues",
    "PerPatchValues",
    "ValueRange",
    "auto_range",
    "available_colormaps",
    "class_colors",
    "colormap_lut",
    "composite",
    "difference",
    "is_diverging",
    "legend_image",
    "legend_ticks",
    "output_shape",
    "render_categorical",
    "render_legend",
    "render_patch_heatmap",
    "resolve_range",
    "symmetric_range",
]
