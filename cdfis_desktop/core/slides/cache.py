"""``SlideHandleCache``: a small, locked, least-recently-used cache of open slides.

Any thread may call :meth:`get`; the returned reader is shared (OpenSlide readers are
thread-safe) and stays open until evicted or :meth:`close`. The cache notices a ``fork``:
in a child process it drops the parent's handles (without closing them) and opens its own.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

from cdfis_desktop.core.slides.opening import open_slide
from cdfis_desktop.core.slides.openslide_reader import OpenSlideReader


class SlideHandleCache:
    """Keeps at most ``max_open`` slides open, keyed by (resolved path, mpp override)."""

    def __init__(self, max_open: int = 8) -> None:
        if max_open < 1:
            raise ValueError(f"max_open must be at least 1 (got {max_open})")
        self._max_open = max_open
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._readers: OrderedDict[tuple[Path, float | None], OpenSlideReader] = OrderedDict()

    def get(
        self, path: str | os.PathLike[str], mpp_override: float | None = None
    ) -> OpenSlideReader:
        """The open reader for ``path`` (opened on first use; raises SlideOpenError)."""
        key = (Path(path).expanduser().resolve(), mpp_override)
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's handles are not ours
                self._readers = OrderedDict()
                self._pid = os.getpid()
            reader = self._readers.get(key)
            if reader is not None:
                self._readers.move_to_end(key)
                return reader
            reader = open_slide(key[0], mpp_override=mpp_override)
            self._readers[key] = reader
            while len(self._readers) > self._max_open:
                _, evicted = self._readers.popitem(last=False)
                evicted.close()
            return reader

    def __len__(self) -> int:
        with self._lock:
            return len(self._readers)

    def close(self) -> None:
        """Close every cached reader (callers must have finished using them)."""
        with self._lock:
            readers, self._readers = list(self._readers.values()), OrderedDict()
        for reader in readers:
            reader.close()
