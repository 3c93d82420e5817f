"""Event-loop responsiveness: how late a fast QTimer's ticks arrive while work runs.

Used by ``benchmarks/gui_latency.py`` and the GUI tests. GUI thread only.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QTimer


class LatencyProbe:
    """A QTimer ticking every ``interval_ms``; records each tick's lateness in ms."""

    def __init__(self, interval_ms: int = 10) -> None:
        self.interval_s = interval_ms / 1000
        self.lateness_ms: list[float] = []
        self._last = time.perf_counter()
        self._timer = QTimer()
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.lateness_ms.append(max(0.0, (now - self._last - self.interval_s) * 1000))
        self._last = now

    def stop(self) -> np.ndarray:
        """Stop ticking; the lateness of every tick so far, float64[n] in ms."""
        self._timer.stop()
        return np.asarray(self.lateness_ms)
