"""Patch thumbnails read from their slides off the GUI thread.

:class:`PatchThumbnailLoader` is a :class:`~cdfis_desktop.gui.loader.LatestLoader` whose
requests are :class:`ThumbnailRequest` values: it reads each patch (level-0 square
``l0_x, l0_y, l0_size``) from the pyramid level closest to the thumbnail size, scales it to
``size_px`` in its thread and emits ``loaded(request, QImage)`` (queued to the GUI thread),
or ``failed(request, exception)``. A new :meth:`request` replaces the queue. GUI thread for
every method.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QImage

from cdfis_desktop.gui.handles import PerThreadSlides, SlideOpener, default_opener
from cdfis_desktop.gui.loader import LatestLoader
from cdfis_desktop.gui.qtimage import array_to_qimage


@dataclass(frozen=True)
class ThumbnailRequest:
    """One patch to read; ``key`` tells the receiver which item it is for."""

    key: Hashable
    slide_path: Path
    l0_x: int
    l0_y: int
    l0_size: int


class PatchThumbnailLoader(LatestLoader):
    """Thumbnails of ``size_px`` px, read by one pool thread."""

    def __init__(
        self, size_px: int = 96, opener: SlideOpener = default_opener, parent: QObject | None = None
    ) -> None:
        self.size_px = size_px
        self._slides = PerThreadSlides(opener)
        super().__init__("patch thumbnails", self._read, threads=1, parent=parent)

    def shutdown(self) -> None:
        """Drop queued work, wait for the running read, close the handles."""
        super().shutdown()
        self._slides.close_all()

    def _read(self, request: ThumbnailRequest) -> QImage:
        slide = self._slides.get(request.slide_path)
        level = int(slide.best_level_for_downsample(request.l0_size / self.size_px))
        downsample = float(slide.level_downsamples[level])
        lv_size = max(1, round(request.l0_size / downsample))
        rgb = slide.read_region(request.l0_x, request.l0_y, level, lv_size, lv_size)
        return array_to_qimage(rgb).scaled(
            self.size_px,
            self.size_px,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
