"""A single background thread that performs the run's store writes in order.

Why: writing a step's history and metrics to SQLite costs a few milliseconds (more with
presampling: B rows per step), which is several percent of a CPU training step. Handing
the writes to one thread lets them overlap with the next step's tensor work (torch
releases the GIL), while keeping the store's rule of a single writer per run: the
training thread touches the run's rows only after :meth:`BackgroundWriter.drain`.

Thread rules: the training thread calls :meth:`submit`, :meth:`drain` and :meth:`close`;
the submitted callables run on the writer thread, one at a time, in submission order. An
exception in a write stops all later writes and is raised in the training thread by every
later :meth:`submit`/:meth:`drain`/:meth:`close`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

_STOP = object()


class BackgroundWriter:
    """Runs submitted store writes on one worker thread.

    ``max_pending``: submissions that may wait before :meth:`submit` blocks (back
    pressure, so a slow disk slows training instead of filling memory).
    """

    def __init__(self, name: str = "cdfis-store-writer", max_pending: int = 64) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_pending)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, write: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """Queue ``write(*args, **kwargs)``; raises the error of an earlier failed write."""
        self._raise_error()
        if not self._thread.is_alive():
            raise RuntimeError("the store writer is closed")
        self._queue.put((write, args, kwargs))

    def drain(self) -> None:
        """Wait until every submitted write is done; raises the first failure, if any."""
        self._queue.join()
        self._raise_error()

    def close(self, *, raise_error: bool = True) -> None:
        """Finish the queued writes and stop the thread (idempotent)."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        if raise_error:
            self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                if self._error is None:  # after a failure, later writes are dropped
                    write, args, kwargs = item
                    write(*args, **kwargs)
            except BaseException as exc:  # handed to the training thread
                self._error = exc
            finally:
                self._queue.task_done()
