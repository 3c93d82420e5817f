"""Cooperative cancel and pause for long work (training, imports, exports).

Thread rules: any thread may call :meth:`CancelToken.cancel`, :meth:`pause` and
:meth:`resume`; the worker doing the long job calls :meth:`raise_if_cancelled` or checks
:attr:`cancelled` between units of work, and :meth:`wait_while_paused` where pausing is safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


class Cancelled(Exception):
    """Raised inside a worker by :meth:`CancelToken.raise_if_cancelled`."""


class CancelToken:
    """A flag shared between the thread that asks to stop and the worker that stops."""

    def __init__(self) -> None:
        self._cancelled = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def cancel(self) -> None:
        self._cancelled.set()
        self._running.set()  # a paused worker must wake up to see the cancel

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def raise_if_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise Cancelled()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self, poll_s: float = 0.1) -> None:
        """Block the worker while paused; returns at once when running or cancelled."""
        while not self._running.wait(poll_s):
            pass


@dataclass(frozen=True)
class Progress:
    """One progress update: ``done`` of ``total`` units (``total`` 0 when unknown)."""

    done: int
    total: int
    message: str = ""


ProgressCallback = Callable[[Progress], None]
"""Called from the worker thread; GUI callers must forward to the GUI thread themselves."""
