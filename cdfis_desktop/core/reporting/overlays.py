"""Slide backgrounds for the report and the PNG export: the slide's thumbnail the size of
an overlay layer, and a layer composited over it.

The layers themselves come from the overlay service (:mod:`cdfis_desktop.core.heatmap.
overlay`), the same as in the GUI. Frames: a layer covers the whole slide at
``downsample`` level-0 px per pixel; the background is the slide's thumbnail at the same
size. Safe from any thread: each call opens and closes its own slide handle.
"""

from __future__ import annotations

import numpy as np

from cdfis_desktop.core.errors import SlideOpenError
from cdfis_desktop.core.heatmap import composite, output_shape
from cdfis_desktop.core.storage import SlideRecord


def read_background(slide: SlideRecord, downsample: float) -> np.ndarray:
    """uint8[H, W, 3]: the slide's thumbnail the size of a layer at ``downsample``.

    Raises :class:`SlideOpenError` when the slide file cannot be opened.
    """
    from cdfis_desktop.core.slides.imageops import resize_rgb

    height, width = output_shape(slide.width, slide.height, downsample)
    with slide.open() as reader:
        thumbnail = reader.thumbnail(max(width, height))
    if thumbnail.shape[:2] != (height, width):
        thumbnail = resize_rgb(thumbnail, width, height)
    return thumbnail


def background_or_none(slide: SlideRecord, downsample: float) -> np.ndarray | None:
    """:func:`read_background`, or None when the slide file cannot be opened."""
    try:
        return read_background(slide, downsample)
    except SlideOpenError:
        return None


def on_background(layer: np.ndarray, background: np.ndarray | None) -> np.ndarray:
    """uint8[H, W, 3]: the RGBA ``layer`` over ``background`` (over white when None)."""
    if background is None:
        background = np.full((*layer.shape[:2], 3), 255, dtype=np.uint8)
    return composite(background, layer)
