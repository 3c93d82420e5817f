"""The one "newest request wins" background loader behind slide tiles, patch thumbnails
and the overlay.

:meth:`LatestLoader.request` replaces the queue: requests not started yet and absent from
the new list are dropped (tiles that scrolled away are never read, an overlay the user
already changed is never rendered). ``threads`` pool threads run ``work(request)``; each
result comes back to the GUI thread through the queued ``loaded(request, result)`` signal,
a raised exception through ``failed(request, exception)``. With ``latest_only`` a result
is delivered only while its request is still in the latest list (an older overlay that
finishes after a newer request is dropped); without it every result is delivered (a tile
read is worth caching even if it scrolled away).

Thread rules: construct, request, shut down from the GUI thread; ``work`` runs in pool
threads and must not touch widgets. :meth:`shutdown` drops the queue and waits for the
running work; nothing is emitted after it returns, and a loader whose Qt object is
deleted without it (the application quitting) emits nothing either.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from cdfis_desktop.gui.threads import register_pool

Work = Callable[[Any], Any]
"""``work(request) -> result``; runs in a pool thread."""


class LatestLoader(QObject):
    """Signals: ``loaded(request, result)``, ``failed(request, exception)``."""

    loaded = Signal(object, object)
    failed = Signal(object, object)

    def __init__(
        self,
        name: str,
        work: Work,
        *,
        threads: int = 1,
        latest_only: bool = False,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self._work = work
        self._latest_only = latest_only
        self._lock = threading.Lock()
        self._queue: list[Hashable] = []  # next request last
        self._latest: set[Hashable] = set()
        self._in_flight: set[Hashable] = set()
        self._runners = 0
        self._max_runners = max(1, threads)
        self._closed = False
        self._pool = register_pool(QThreadPool(self))
        self._pool.setObjectName(name)
        self._pool.setMaxThreadCount(self._max_runners)
        self.completed = 0  # work items that ran to the end (tests, benchmarks)

    def request(self, requests: Sequence[Hashable]) -> None:
        """Make ``requests`` (hashable, in priority order) the work to do."""
        with self._lock:
            if self._closed:
                return
            self._latest = set(requests)
            self._queue = [r for r in reversed(requests) if r not in self._in_flight]
            missing = max(0, min(self._max_runners - self._runners, len(self._queue)))
            self._runners += missing
        for _ in range(missing):
            self._pool.start(_Runner(self))

    def is_latest(self, request: Hashable) -> bool:
        """``request`` is in the latest list passed to :meth:`request`."""
        with self._lock:
            return request in self._latest

    def pending(self) -> int:
        """Requests queued or running."""
        with self._lock:
            return len(self._queue) + len(self._in_flight)

    def shutdown(self) -> None:
        """Drop queued work and wait for the running items. GUI thread."""
        with self._lock:
            self._closed = True
            self._queue.clear()
            self._latest.clear()
        self._pool.waitForDone()

    # ------------------------------------------------------------- pool threads
    def _next(self) -> Hashable | None:
        with self._lock:
            if not self._queue or self._closed:
                self._runners -= 1
                return None
            request = self._queue.pop()
            self._in_flight.add(request)
            return request

    def _run(self, request: Hashable) -> None:
        try:
            result = self._work(request)
        except Exception as exc:  # handed to the GUI thread, which shows it
            self._emit(self.failed, request, exc)
        else:
            self._emit(self.loaded, request, result)
        finally:
            with self._lock:
                self._in_flight.discard(request)
                self.completed += 1

    def _emit(self, signal: Any, request: Hashable, value: Any) -> None:
        with self._lock:
            if self._closed or (self._latest_only and request not in self._latest):
                return
        if shiboken6.isValid(self):
            signal.emit(request, value)


class _Runner(QRunnable):
    """Takes requests from its loader's queue until the queue is empty."""

    def __init__(self, loader: LatestLoader) -> None:
        super().__init__()
        self._loader = loader

    def run(self) -> None:
        while (request := self._loader._next()) is not None:
            self._loader._run(request)
