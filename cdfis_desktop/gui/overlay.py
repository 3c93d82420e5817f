"""What the importance overlay shows, and turning it into an image layer for the viewer.

:class:`OverlayState` is the user's choice (metric, colormap, range, epoch, comparison);
:func:`build_overlay` reads the per-patch values from the project store and renders them
with ``core.heatmap`` into one RGBA layer plus its legend. Pure numpy apart from the store
queries; any thread may call it (the store allows readers in any thread), but the viewer
must be updated from the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cdfis_desktop.core.heatmap import (
    DEFAULT_COLORMAP,
    DIFFERENCE_COLORMAP,
    class_colors,
    colormap_lut,
    difference,
    is_diverging,
    render_categorical,
    render_patch_heatmap,
    resolve_range,
)
from cdfis_desktop.gui.hud import LegendSpec

METRICS: tuple[tuple[str, str], ...] = (
    ("times_chosen", "Times chosen"),
    ("favour", "Favoured / ignored vs uniform"),
    ("mean_score", "Mean score"),
    ("last_score", "Last score"),
    ("loss", "Loss"),
    ("gradnorm", "Gradient norm"),
    ("label", "Label"),
    ("prediction", "Prediction"),
)
"""``(store metric, text)`` in menu order; ``loss``/``gradnorm`` need a run scored by it."""

CATEGORICAL_METRICS = frozenset({"label", "prediction"})
MAX_LAYER_PX = 4096


@dataclass(frozen=True)
class OverlayState:
    """The overlay the user asked for.

    ``epoch`` None = cumulative over the run. ``value_range`` None = automatic
    (percentiles). ``compare``: ``none``, ``epoch`` (this epoch minus ``compare_epoch``) or
    ``run`` (this run minus ``compare_run`` at the same epoch).
    """

    metric: str = "times_chosen"
    colormap: str = DEFAULT_COLORMAP
    opacity: float = 0.45
    value_range: tuple[float, float] | None = None
    epoch: int | None = None
    compare: str = "none"
    compare_epoch: int | None = None
    compare_run: int | None = None


@dataclass(frozen=True)
class OverlayLayer:
    """A rendered layer: ``rgba`` uint8[H, W, 4] covering ``l0_rect = (0, 0, w, h)``; the
    value range used (for the controls' auto-range display) and the legend."""

    rgba: np.ndarray
    l0_rect: tuple[float, float, float, float]
    value_range: tuple[float, float] | None
    legend: LegendSpec
    n_patches: int


def layer_downsample(l0_size: np.ndarray, slide_l0_w: int, slide_l0_h: int) -> float:
    """Level-0 px per layer pixel: one pixel per patch side, but at most ``MAX_LAYER_PX``."""
    smallest = float(np.min(l0_size)) if l0_size.size else 1.0
    return max(1.0, smallest, max(slide_l0_w, slide_l0_h) / MAX_LAYER_PX)


def metric_text(metric: str) -> str:
    return dict(METRICS).get(metric, metric)


def build_overlay(
    project: Any,
    run_id: int,
    slide_id: int,
    slide_l0_w: int,
    slide_l0_h: int,
    state: OverlayState,
) -> OverlayLayer:
    """Query and render the layer for ``state``. Raises the store's ``ConfigError`` (e.g.
    ``loss`` for a run scored by gradient norm) and ``StoreError``."""
    values = project.heatmap_values(run_id, slide_id, state.metric, state.epoch)
    title = metric_text(state.metric)
    if state.epoch is not None:
        title += f", epoch {state.epoch}"
    if state.metric in CATEGORICAL_METRICS and state.compare == "none":
        return _categorical(project, values, slide_l0_w, slide_l0_h, state, title)
    if state.compare == "epoch" and state.compare_epoch is not None:
        other = project.heatmap_values(run_id, slide_id, state.metric, state.compare_epoch)
        values = difference(values, other)
        title = (
            f"{metric_text(state.metric)}: epoch {_epoch_text(state.epoch)} − "
            f"epoch {_epoch_text(state.compare_epoch)}"
        )
    elif state.compare == "run" and state.compare_run is not None:
        other = project.heatmap_values(state.compare_run, slide_id, state.metric, state.epoch)
        values = difference(values, other)
        title = f"{metric_text(state.metric)}: run {run_id} − run {state.compare_run}"
    comparing = state.compare != "none"
    colormap = state.colormap
    if comparing and not is_diverging(colormap):
        colormap = DIFFERENCE_COLORMAP
    value = np.asarray(values.value, dtype=np.float64)
    value_range = resolve_range(value, state.value_range, colormap)
    downsample = layer_downsample(np.asarray(values.l0_size), slide_l0_w, slide_l0_h)
    rgba = render_patch_heatmap(
        values.l0_x,
        values.l0_y,
        values.l0_size,
        value,
        slide_l0_w=slide_l0_w,
        slide_l0_h=slide_l0_h,
        downsample=downsample,
        colormap=colormap,
        value_range=value_range,
        opacity=1.0,
    )
    legend = LegendSpec(title, colormap_lut(colormap), value_range.low, value_range.high)
    return OverlayLayer(
        rgba, _rect(rgba, downsample), (value_range.low, value_range.high), legend, len(value)
    )


def _categorical(
    project: Any, values: Any, slide_l0_w: int, slide_l0_h: int, state: OverlayState, title: str
) -> OverlayLayer:
    value = np.asarray(values.value, dtype=np.float64)
    labels = np.where(np.isfinite(value), value, -1).astype(np.int64)
    names = list(project.class_names())
    n_classes = max(len(names), int(labels.max()) + 1 if labels.size else 0, 1)
    colors = class_colors(n_classes)
    downsample = layer_downsample(np.asarray(values.l0_size), slide_l0_w, slide_l0_h)
    rgba = render_categorical(
        values.l0_x,
        values.l0_y,
        values.l0_size,
        labels,
        slide_l0_w=slide_l0_w,
        slide_l0_h=slide_l0_h,
        downsample=downsample,
        colors=colors,
        opacity=1.0,
    )
    categories = tuple(names[i] if i < len(names) else f"class {i}" for i in range(n_classes))
    lut = np.concatenate([colors, np.full((n_classes, 1), 255, np.uint8)], axis=1)
    legend = LegendSpec(title, lut, 0.0, float(n_classes - 1), categories=categories)
    return OverlayLayer(rgba, _rect(rgba, downsample), None, legend, len(value))


def _rect(rgba: np.ndarray, downsample: float) -> tuple[float, float, float, float]:
    return (0.0, 0.0, rgba.shape[1] * downsample, rgba.shape[0] * downsample)


def _epoch_text(epoch: int | None) -> str:
    return "all" if epoch is None else str(epoch)
