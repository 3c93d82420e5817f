"""Slide handles owned per worker thread (slide handles are never shared between threads).

:class:`PerThreadSlides` opens a handle the first time a thread asks for a path and keeps it
for that thread; :meth:`close_all` closes them once the workers have stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

SlideOpener = Callable[[Path], Any]
"""``path -> SlideReader`` (see ``cdfis_desktop.core.slides``)."""


def default_opener(path: Path) -> Any:
    """``core.slides.open_slide``; raises ``SlideOpenError``."""
    from cdfis_desktop.core.slides import open_slide

    return open_slide(path)


class PerThreadSlides:
    """Handles keyed by (calling thread, path). Any thread may call :meth:`get`; call
    :meth:`close_all` only after every thread using it has finished."""

    def __init__(self, opener: SlideOpener = default_opener) -> None:
        self._opener = opener
        self._lock = threading.Lock()
        self._handles: dict[tuple[int, Path], Any] = {}

    def get(self, path: Path) -> Any:
        key = (threading.get_ident(), Path(path))
        with self._lock:
            handle = self._handles.get(key)
        if handle is None:
            handle = self._opener(Path(path))
            with self._lock:
                self._handles[key] = handle
        return handle

    def close_all(self) -> None:
        with self._lock:
            handles, self._handles = list(self._handles.values()), {}
        for handle in handles:
            handle.close()
