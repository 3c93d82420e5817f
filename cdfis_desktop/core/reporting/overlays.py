"""Slide overlays for the report and the PNG export: a run's per-patch values or the
patch labels drawn as one layer over the slide's thumbnail.

Frames: the layer covers the whole slide at ``downsample`` level-0 px per pixel; the
background is the slide's thumbnail at the same size (``None`` when the slide file cannot
be opened: the overlay is then still drawn, on white). Safe from any thread: each call
opens and closes its own slide handle and only reads the store.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cdfis_desktop.core.errors import ConfigError, SlideOpenError
from cdfis_desktop.core.heatmap import (
    DEFAULT_COLORMAP,
    DIFFERENCE_COLORMAP,
    ValueRange,
    class_colors,
    composite,
    output_shape,
    render_categorical,
    render_patch_heatmap,
    resolve_range,
)
from cdfis_desktop.core.reporting.data import slide_file
from cdfis_desktop.core.storage import Project, SlideRecord

CATEGORICAL_METRICS = ("label", "prediction")
METRIC_TITLES = {
    "favour": "favour (times chosen - uniform expectation)",
    "times_chosen": "times chosen",
    "times_scored": "times scored",
    "mean_score": "mean score",
    "last_score": "last score",
    "prediction_probability": "prediction probability",
    "label": "label",
    "prediction": "prediction",
}


@dataclass(frozen=True)
class SlideOverlay:
    """One overlay of one slide.

    ``layer``: uint8[H, W, 4] RGBA; ``background``: uint8[H, W, 3] thumbnail or None;
    ``downsample``: level-0 px per pixel. Continuous metrics set ``colormap`` and
    ``value_range``; categorical ones (label, prediction) set ``class_names`` and
    ``colors`` (uint8[k, 3]) instead.
    """

    slide: SlideRecord
    metric: str
    layer: np.ndarray
    background: np.ndarray | None
    downsample: float
    colormap: str | None = None
    value_range: ValueRange | None = None
    class_names: tuple[str, ...] = ()
    colors: np.ndarray | None = None

    def composited(self) -> np.ndarray:
        """uint8[H, W, 3]: the layer over the thumbnail (over white when there is none)."""
        base = self.background
        if base is None:
            base = np.full((*self.layer.shape[:2], 3), 255, dtype=np.uint8)
        return composite(base, self.layer)


def default_colormap(metric: str) -> str:
    """Diverging for favour (signed, 0 = as often as uniform), viridis for the rest."""
    return DIFFERENCE_COLORMAP if metric == "favour" else DEFAULT_COLORMAP


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


def render_overlay(
    project: Project,
    run_id: int,
    slide: SlideRecord,
    metric: str,
    *,
    downsample: float,
    colormap: str | None = None,
    value_range: ValueRange | tuple[float, float] | None = None,
    opacity: float = 0.5,
    epoch: int | None = None,
    with_background: bool = True,
) -> SlideOverlay:
    """Render ``metric`` (a store heatmap metric) of run ``run_id`` over ``slide``.

    ``with_background``: read the slide thumbnail (a slide that cannot be opened gives
    ``background=None``; use :func:`read_background` to get the error instead).
    """
    values = project.heatmap_values(run_id, slide.id, metric, epoch)
    geometry = dict(slide_l0_w=slide.width, slide_l0_h=slide.height, downsample=downsample)
    background = background_or_none(project, slide, downsample) if with_background else None
    if metric in CATEGORICAL_METRICS:
        names = tuple(project.class_names())
        n_classes = max(len(names), int(np.nanmax(values.value, initial=-1)) + 1, 1)
        colors = class_colors(n_classes)
        labels = np.where(np.isnan(values.value), -1, values.value).astype(np.int64)
        layer = render_categorical(
            values.l0_x,
            values.l0_y,
            values.l0_size,
            labels,
            colors=colors,
            opacity=opacity,
            **geometry,
        )
        return SlideOverlay(
            slide, metric, layer, background, downsample, class_names=names, colors=colors
        )
    colormap = colormap or default_colormap(metric)
    resolved = resolve_range(values.value, value_range, colormap)
    layer = render_patch_heatmap(
        values.l0_x,
        values.l0_y,
        values.l0_size,
        values.value,
        colormap=colormap,
        value_range=resolved,
        opacity=opacity,
        **geometry,
    )
    return SlideOverlay(
        slide, metric, layer, background, downsample, colormap=colormap, value_range=resolved
    )


def read_background(project: Project, slide: SlideRecord, downsample: float) -> np.ndarray:
    """uint8[H, W, 3]: the slide's thumbnail the size of a layer at ``downsample``.

    Raises :class:`SlideOpenError` when the slide file cannot be opened.
    """
    from cdfis_desktop.core.slides import open_slide
    from cdfis_desktop.core.slides.imageops import resize_rgb

    height, width = output_shape(slide.width, slide.height, downsample)
    override = slide.mpp if slide.mpp_overridden else None
    with open_slide(slide_file(project, slide), mpp_override=override) as reader:
        thumbnail = reader.thumbnail(max(width, height))
    if thumbnail.shape[:2] != (height, width):
        thumbnail = resize_rgb(thumbnail, width, height)
    return thumbnail


def background_or_none(
    project: Project, slide: SlideRecord, downsample: float
) -> np.ndarray | None:
    try:
        return read_background(project, slide, downsample)
    except SlideOpenError:
        return None
