"""Whole-slide image access: ``open_slide`` (OpenSlide), ``InMemorySlide`` (tests), the
``SlideReader`` protocol, a shared-handle cache and the pyramidal TIFF writer.

Level-0 pixel coordinates are canonical; resolution is asked for in µm/px.
"""

from __future__ import annotations

from cdfis_desktop.core.slides.cache import SlideHandleCache
from cdfis_desktop.core.slides.memory import InMemorySlide
from cdfis_desktop.core.slides.opening import SUPPORTED_FORMATS, open_slide
from cdfis_desktop.core.slides.openslide_reader import OpenSlideReader
from cdfis_desktop.core.slides.reader import (
    FALLBACK_MPP,
    BaseSlideReader,
    MissingMppWarning,
    SlideReader,
)
from cdfis_desktop.core.slides.tiff_writer import write_pyramidal_tiff, write_pyramidal_tiff_bands

__all__ = [
    "FALLBACK_MPP",
    "SUPPORTED_FORMATS",
    "BaseSlideReader",
    "InMemorySlide",
    "MissingMppWarning",
    "OpenSlideReader",
    "SlideHandleCache",
    "SlideReader",
    "open_slide",
    "write_pyramidal_tiff",
    "write_pyramidal_tiff_bands",
]
