"""The overlay service: the one path from the store to a coloured layer and its legend.

A request names a slide, a run, a metric of the registry (:mod:`.metrics`), an epoch
(None = cumulative over the run), an optional comparison (this epoch minus another, or
this run minus another at the same epoch), a colormap (None = the metric's default) and a
value range (None = automatic). :func:`render_overlay` reads the slide's measurements from
the store (one call per epoch or run involved) and returns an :class:`Overlay`: the
``uint8[H, W, 4]`` RGBA layer, the per-patch values drawn (for the value under the
cursor) and a Qt-free :class:`~.legend.LegendSpec`. The GUI, the PDF report, the PNG
export and the CLI all draw through it, so one metric looks the same everywhere.

Automatic range rules (:mod:`.ranges`): percentiles for sequential maps, symmetric around 0
for diverging ones. With ``range_over="run"`` (the default) the range of an epoch view is
taken over the values of *every* epoch of the run, so the colours of the time slider are
comparable between epochs (cached per run, slide and metric until the run writes more
history: :mod:`.run_range`); the cumulative view and comparisons use their own values.

Public API::

    OverlayRequest(slide, run_id, metric, *, epoch=None, compare="none",
                   compare_epoch=None, compare_run=None, colormap=None, value_range=None,
                   range_over="run", opacity=1.0, downsample=None)
    render_overlay(project, request) -> Overlay   (.rgba .downsample .l0_rect .legend
                                                   .values .metric .value_range)
    metric_values(project, run_id, slide_id, metric, epoch=None) -> PatchValues
    layer_downsample(l0_size, slide_l0_w, slide_l0_h) -> float  (one pixel per patch)
    downsample_for(slide, *, max_px=None, mpp=None) -> float      (an export's size)

Frames: layers cover the whole slide, ``downsample`` level-0 px per layer pixel. Thread
rules: any thread (the store allows readers in any thread while training writes); the
GUI must apply the result on its own thread. Errors: ConfigError (unknown metric or
colormap, a metric the run did not record, a bad range), StoreError (unknown run).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cdfis_desktop.core.class_names import category_names
from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.heatmap.colormaps import (
    DIFFERENCE_COLORMAP,
    class_colors,
    colormap_lut,
    is_diverging,
)
from cdfis_desktop.core.heatmap.difference import PatchValues, difference
from cdfis_desktop.core.heatmap.legend import LegendSpec
from cdfis_desktop.core.heatmap.metrics import Metric, metric
from cdfis_desktop.core.heatmap.ranges import ValueRange, resolve_range
from cdfis_desktop.core.heatmap.render import render_categorical, render_patch_heatmap
from cdfis_desktop.core.heatmap.run_range import run_range

if TYPE_CHECKING:
    from cdfis_desktop.core.storage import Project, SlideMeasurements, SlideRecord

MAX_LAYER_PX = 4096
"""The longest side of a layer drawn at :func:`layer_downsample`."""

COMPARISONS = ("none", "epoch", "run")
RANGE_SCOPES = ("run", "view")


@dataclass(frozen=True)
class OverlayRequest:
    """What to draw (see the module docstring).

    ``compare``: ``none``, ``epoch`` (values at ``epoch`` minus those at
    ``compare_epoch``; None = cumulative) or ``run`` (this run minus ``compare_run`` at
    the same epoch). ``value_range``: ``(low, high)`` or None for automatic.
    ``range_over``: ``run`` (an epoch view's automatic range spans every epoch of the run)
    or ``view`` (this view's values only). ``opacity`` in [0, 1] is baked into the layer's
    alpha. ``downsample``: level-0 px per layer pixel, None = :func:`layer_downsample`.
    """

    slide: SlideRecord
    run_id: int
    metric: str
    epoch: int | None = None
    compare: str = "none"
    compare_epoch: int | None = None
    compare_run: int | None = None
    colormap: str | None = None
    value_range: tuple[float, float] | None = None
    range_over: str = "run"
    opacity: float = 1.0
    downsample: float | None = None

    def __post_init__(self) -> None:
        if self.compare not in COMPARISONS:
            raise ConfigError(f"compare must be one of {COMPARISONS} (got {self.compare!r})")
        if self.range_over not in RANGE_SCOPES:
            raise ConfigError(f"range_over must be one of {RANGE_SCOPES} (got {self.range_over!r})")

    @property
    def comparing(self) -> bool:
        """True when the layer shows a difference (a comparison with its other side set)."""
        if self.compare == "epoch":
            return self.compare_epoch is not None
        return self.compare == "run" and self.compare_run is not None


@dataclass(frozen=True)
class Overlay:
    """A rendered layer: ``rgba`` uint8[H, W, 4] covering the slide at ``downsample``
    level-0 px per pixel; ``values`` the per-patch values drawn (level-0 geometry, NaN =
    no value); ``legend`` what the colours mean; ``metric`` the registry entry."""

    request: OverlayRequest
    metric: Metric
    rgba: np.ndarray
    downsample: float
    values: PatchValues
    legend: LegendSpec

    @property
    def l0_rect(self) -> tuple[float, float, float, float]:
        """``(x, y, w, h)`` in level-0 px of the area the layer covers."""
        return (
            0.0,
            0.0,
            self.rgba.shape[1] * self.downsample,
            self.rgba.shape[0] * self.downsample,
        )

    @property
    def value_range(self) -> tuple[float, float] | None:
        """The range the colours span (None for classes)."""
        if self.legend.categories:
            return None
        return (self.legend.vmin, self.legend.vmax)


def render_overlay(project: Project, request: OverlayRequest) -> Overlay:
    """Read and draw ``request`` (see the module docstring for the rules)."""
    entry = metric(request.metric)
    slide = request.slide
    measured = project.slide_measurements(request.run_id, slide.id, request.epoch)
    values = _patch_values(measured, entry.values(measured))
    downsample = request.downsample or layer_downsample(values.l0_size, slide.width, slide.height)
    if entry.categorical and not request.comparing:
        names = list(entry.categories or project.class_names())
        labels = np.where(np.isfinite(values.value), values.value, -1).astype(np.int64)
        n_classes = max(len(names), int(labels.max(initial=-1)) + 1, 1)
        colors = class_colors(n_classes)
        rgba = render_categorical(
            values.l0_x,
            values.l0_y,
            values.l0_size,
            labels,
            colors=colors,
            slide_l0_w=slide.width,
            slide_l0_h=slide.height,
            downsample=downsample,
            opacity=request.opacity,
        )
        lut = np.concatenate([colors, np.full((n_classes, 1), 255, np.uint8)], axis=1)
        legend = LegendSpec(
            _title(entry, request),
            lut,
            0.0,
            float(n_classes - 1),
            categories=category_names(names, n_classes),
            units=entry.units,
        )
        return Overlay(request, entry, rgba, downsample, values, legend)
    if request.comparing:
        values = difference(values, _other_side(project, request, entry))
    colormap = request.colormap or entry.default_colormap or DIFFERENCE_COLORMAP
    colormap_lut(colormap)  # an unknown name fails here, before any drawing
    if request.comparing and not is_diverging(colormap):
        colormap = DIFFERENCE_COLORMAP
    value_range = _value_range(project, request, entry, values.value, colormap)
    rgba = render_patch_heatmap(
        values.l0_x,
        values.l0_y,
        values.l0_size,
        values.value,
        colormap=colormap,
        value_range=value_range,
        slide_l0_w=slide.width,
        slide_l0_h=slide.height,
        downsample=downsample,
        opacity=request.opacity,
    )
    legend = LegendSpec(
        _title(entry, request),
        colormap_lut(colormap),
        value_range.low,
        value_range.high,
        colormap=colormap,
        units=entry.units,
    )
    return Overlay(request, entry, rgba, downsample, values, legend)


def metric_values(
    project: Project, run_id: int, slide_id: int, metric_key: str, epoch: int | None = None
) -> PatchValues:
    """One value per patch of ``slide_id`` (ordered by id) for ``metric_key`` at ``epoch``
    (None = cumulative). Raises ConfigError for an unknown metric or one the run did not
    record, StoreError for an unknown run."""
    entry = metric(metric_key)
    measured = project.slide_measurements(run_id, slide_id, epoch)
    return _patch_values(measured, entry.values(measured))


def layer_downsample(l0_size: np.ndarray, slide_l0_w: int, slide_l0_h: int) -> float:
    """Level-0 px per layer pixel: one pixel per patch side, but at most
    :data:`MAX_LAYER_PX` pixels along the slide's longer side."""
    sizes = np.asarray(l0_size)
    smallest = float(np.min(sizes)) if sizes.size else 1.0
    return max(1.0, smallest, max(slide_l0_w, slide_l0_h) / MAX_LAYER_PX)


def downsample_for(
    slide: SlideRecord, *, max_px: int | None = None, mpp: float | None = None
) -> float:
    """Level-0 px per output pixel so the longer side is ``max_px``, or so a pixel is
    ``mpp`` µm (needs the slide's mpp). Exactly one must be given; ConfigError otherwise."""
    if (max_px is None) == (mpp is None):
        raise ConfigError("give exactly one of a size in pixels or a resolution in µm/px")
    if max_px is not None:
        if max_px < 16:
            raise ConfigError(f"image size must be at least 16 px (got {max_px})")
        return max(slide.width, slide.height) / max_px
    assert mpp is not None
    if slide.mpp is None:
        raise ConfigError(
            f"{slide.path} has no known µm/px, so a resolution in µm/px cannot be used; give a "
            "size in pixels instead, or set the slide's mpp"
        )
    if mpp < slide.mpp:
        raise ConfigError(f"resolution {mpp} µm/px is finer than the slide's {slide.mpp} µm/px")
    return mpp / slide.mpp


def _patch_values(measured: SlideMeasurements, value: np.ndarray) -> PatchValues:
    return PatchValues(measured.patch_id, measured.l0_x, measured.l0_y, measured.l0_size, value)


def _other_side(project: Project, request: OverlayRequest, entry: Metric) -> PatchValues:
    """The values subtracted in a comparison."""
    if request.compare == "epoch":
        return metric_values(
            project, request.run_id, request.slide.id, entry.key, request.compare_epoch
        )
    assert request.compare_run is not None
    return metric_values(project, request.compare_run, request.slide.id, entry.key, request.epoch)


def _value_range(
    project: Project, request: OverlayRequest, entry: Metric, value: np.ndarray, colormap: str
) -> ValueRange:
    """The manual range, or the automatic one over this view or over every epoch."""
    if request.value_range is not None:
        return resolve_range(value, request.value_range, colormap)
    over_run = request.range_over == "run" and request.epoch is not None
    if over_run and not request.comparing:
        return run_range(project, request.run_id, request.slide.id, entry, colormap)
    return resolve_range(value, None, colormap)


def _title(entry: Metric, request: OverlayRequest) -> str:
    if request.compare == "epoch" and request.comparing:
        return (
            f"{entry.title}: epoch {_epoch_text(request.epoch)} − "
            f"epoch {_epoch_text(request.compare_epoch)}"
        )
    if request.compare == "run" and request.comparing:
        return f"{entry.title}: run {request.run_id} − run {request.compare_run}"
    if request.epoch is None:
        return entry.title
    return f"{entry.title}, epoch {request.epoch}"


def _epoch_text(epoch: int | None) -> str:
    return "all" if epoch is None else str(epoch)
