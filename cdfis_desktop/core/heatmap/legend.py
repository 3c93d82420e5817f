"""Legends for heatmap layers: what the colours mean, as data and as images.

:class:`LegendSpec` is the Qt-free description of a layer's legend (the overlay service
returns it; the GUI paints it, exports render it). :func:`legend_ticks` gives "nice" tick
values inside a range with their position along the bar; :func:`render_legend` draws a
colour bar with the same ticks, and :func:`legend_image` draws any spec (colour bar or
class swatches), into an RGBA array with matplotlib's Agg canvas (no display, no pyplot
state), for exports and reports. Safe from any thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.heatmap.colormaps import colormap_lut
from cdfis_desktop.core.heatmap.plaintext import literal_text
from cdfis_desktop.core.heatmap.ranges import ValueRange


@dataclass(frozen=True)
class LegendSpec:
    """What a layer's colours mean.

    ``lut`` is ``uint8[n, 3|4]``, row 0 the colour of ``vmin`` and row n-1 of ``vmax``
    (``colormap`` names it). With ``categories`` (one name per ``lut`` row) the legend is
    named swatches instead, and ``vmin``/``vmax`` are the first and last label. ``units``:
    what the values count or measure (e.g. ``draws``), empty for classes.
    """

    title: str
    lut: np.ndarray
    vmin: float
    vmax: float
    categories: tuple[str, ...] = ()
    colormap: str | None = None
    units: str = ""

    @property
    def value_range(self) -> ValueRange:
        return ValueRange(float(self.vmin), float(self.vmax))


@dataclass(frozen=True)
class LegendTick:
    """A tick: ``value`` in data units, ``position`` in ``[0, 1]`` along the bar (0 = low
    end), and ``text`` to print."""

    value: float
    position: float
    text: str


def legend_ticks(value_range: ValueRange, max_ticks: int = 5) -> list[LegendTick]:
    """Up to ``max_ticks`` round values within ``value_range`` (at least its two ends)."""
    from matplotlib.ticker import MaxNLocator

    if max_ticks < 2:
        raise ConfigError(f"a legend needs at least 2 ticks (got {max_ticks})")
    low, high = value_range.low, value_range.high
    if value_range.span == 0:
        return [LegendTick(low, 0.5, _format(low))]
    candidates = MaxNLocator(nbins=max_ticks - 1).tick_values(low, high)
    tolerance = 1e-9 * value_range.span
    inside = [float(v) for v in candidates if low - tolerance <= v <= high + tolerance]
    if len(inside) < 2:
        inside = [low, high]
    return [LegendTick(v, (v - low) / value_range.span, _format(v)) for v in inside]


def render_legend(
    colormap: str, value_range: ValueRange, label: str, width_px: int, height_px: int
) -> np.ndarray:
    """A colour bar with ticks and ``label`` as ``uint8[height_px, width_px, 4]`` RGBA on a
    white, opaque background. Horizontal when ``width_px >= height_px``, else vertical.

    Raises :class:`ConfigError` for a size under 40 x 20 px or an unknown colormap.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colorbar import ColorbarBase
    from matplotlib.colors import ListedColormap, Normalize
    from matplotlib.figure import Figure

    if min(width_px, height_px) < 20 or max(width_px, height_px) < 40:
        raise ConfigError(f"a legend needs at least 40 x 20 px (got {width_px} x {height_px})")
    cmap = ListedColormap(colormap_lut(colormap)[:, :3] / 255.0)
    dpi = 100.0
    figure = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, facecolor="white")
    canvas = FigureCanvasAgg(figure)
    horizontal = width_px >= height_px
    if horizontal:
        axes = figure.add_axes((0.06, 0.55, 0.88, 0.2))
    else:
        axes = figure.add_axes((0.15, 0.05, 0.2, 0.85))
    low, high = value_range.low, value_range.high
    if value_range.span == 0:
        low, high = low - 0.5, high + 0.5
    bar = ColorbarBase(
        axes,
        cmap=cmap,
        norm=Normalize(vmin=low, vmax=high),
        orientation="horizontal" if horizontal else "vertical",
    )
    ticks = legend_ticks(value_range)
    bar.set_ticks([t.value for t in ticks], labels=[t.text for t in ticks])
    bar.ax.tick_params(labelsize=8)
    bar.set_label(label, fontsize=9)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba(), dtype=np.uint8)
    return np.ascontiguousarray(rgba[:height_px, :width_px])


def legend_image(spec: LegendSpec, width_px: int, height_px: int) -> np.ndarray:
    """``spec`` drawn as ``uint8[h, w, 4]`` RGBA on white: a colour bar of
    ``width_px x height_px`` (see :func:`render_legend`), or for categories one swatch and
    name per class (width ``width_px``, height grown to fit the classes)."""
    if not spec.categories:
        if spec.colormap is None:
            raise ConfigError(f"the legend {spec.title!r} has neither a colormap nor classes")
        return render_legend(spec.colormap, spec.value_range, spec.title, width_px, height_px)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    dpi = 100.0
    rows = max(len(spec.categories), 1)
    height_in = max(height_px / dpi, 0.3 + 0.25 * rows)
    figure = Figure(figsize=(width_px / dpi, height_in), dpi=dpi, facecolor="white")
    canvas = FigureCanvasAgg(figure)
    handles = [
        Patch(facecolor=_rgb(spec.lut[k]), edgecolor="none", label=name)
        for k, name in enumerate(spec.categories)
    ]
    with literal_text():  # class names are the user's: "$" is not mathtext
        figure.legend(handles=handles, title=spec.title, loc="center", frameon=False)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba(), dtype=np.uint8).copy()


def _rgb(row: np.ndarray) -> tuple[float, float, float]:
    """A ``uint8`` colour-table row as matplotlib's 0..1 RGB."""
    return (row[0] / 255.0, row[1] / 255.0, row[2] / 255.0)


def _format(value: float) -> str:
    if value == 0:
        return "0"
    return f"{value:.3g}"
