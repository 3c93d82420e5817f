"""Patch thumbnails read from their slides off the GUI thread.

:class:`PatchThumbnailLoader` reads each requested patch (level-0 square ``l0_x, l0_y,
l0_size``) from the pyramid level closest to the thumbnail size, scales it to ``size_px``
in the worker thread and emits ``thumbnail_loaded(key, QImage)`` (queued to the GUI
thread). A new :meth:`request` replaces the queue. GUI thread for every method.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal

from cdfis_desktop.gui.handles import PerThreadSlides, SlideOpener, default_opener
from cdfis_desktop.gui.qtimage import array_to_qimage
from cdfis_desktop.gui.threads import register_pool


@dataclass(frozen=True)
class ThumbnailRequest:
    """One patch to read: ``key`` is returned with the image."""

    key: Hashable
    slide_path: Path
    l0_x: int
    l0_y: int
    l0_size: int


class PatchThumbnailLoader(QObject):
    """``thumbnail_loaded(key, QImage)``; ``thumbnail_failed(key, message)``."""

    thumbnail_loaded = Signal(object, object)
    thumbnail_failed = Signal(object, str)

    def __init__(
        self, size_px: int = 96, opener: SlideOpener = default_opener, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.size_px = size_px
        self._slides = PerThreadSlides(opener)
        self._lock = threading.Lock()
        self._queue: list[ThumbnailRequest] = []
        self._pool = register_pool(QThreadPool(self))
        self._pool.setObjectName("patch thumbnails")
        self._pool.setMaxThreadCount(1)
        self._running = False
        self._closed = False

    def request(self, requests: Sequence[ThumbnailRequest]) -> None:
        with self._lock:
            if self._closed:
                return
            self._queue = list(reversed(requests))
            start = not self._running and bool(self._queue)
            self._running = self._running or start
        if start:
            self._pool.start(_Runnable(self))

    def shutdown(self) -> None:
        """Drop queued work, wait for the running read, close the handles."""
        with self._lock:
            self._closed = True
            self._queue.clear()
        self._pool.waitForDone()
        self._slides.close_all()

    def _next(self) -> ThumbnailRequest | None:
        with self._lock:
            if not self._queue or self._closed:
                self._running = False
                return None
            return self._queue.pop()

    def _read(self, request: ThumbnailRequest) -> None:
        try:
            slide = self._slides.get(request.slide_path)
            level = int(slide.best_level_for_downsample(request.l0_size / self.size_px))
            downsample = float(slide.level_downsamples[level])
            lv_size = max(1, round(request.l0_size / downsample))
            rgb = slide.read_region(request.l0_x, request.l0_y, level, lv_size, lv_size)
            image = array_to_qimage(rgb).scaled(
                self.size_px,
                self.size_px,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
            self.thumbnail_loaded.emit(request.key, image)
        except Exception as exc:  # shown on the item instead of a picture
            self.thumbnail_failed.emit(request.key, f"{type(exc).__name__}: {exc}")


class _Runnable(QRunnable):
    def __init__(self, loader: PatchThumbnailLoader) -> None:
        super().__init__()
        self._loader = loader

    def run(self) -> None:
        while (request := self._loader._next()) is not None:
            self._loader._read(request)
