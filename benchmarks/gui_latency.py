"""Event-loop lateness of the desktop app while it trains (target: 95th percentile < 50 ms).

Builds the demo project in a temporary folder, opens it in the main window (offscreen
unless a display is set), starts a CDF-presample run from the training panel, and records
how late a 10 ms QTimer's ticks arrive while the worker thread trains.

Usage: QT_QPA_PLATFORM=offscreen python benchmarks/gui_latency.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QApplication

from cdfis_desktop.core.demo.project import build_demo_project
from cdfis_desktop.gui.latency import LatencyProbe
from cdfis_desktop.gui.main_window import MainWindow


def wait_until(app: QApplication, condition, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="training time measured")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "demo"
        build_demo_project(folder).close()
        window = MainWindow()
        window.show()
        window.open_project(folder)
        wait_until(app, lambda: window.viewer.is_settled() and not window.jobs_running(), 60)
        panel = window.training_panel
        panel.stop_by.setCurrentText("steps")
        panel.stop_value.setValue(100_000)
        panel.rule.setCurrentText("cdf")
        panel.presample_ratio.setValue(4.0)
        idle = LatencyProbe()
        wait_until(app, lambda: False, 3.0)
        idle_ms = idle.stop()
        probe = LatencyProbe()
        panel.start.click()
        wait_until(app, lambda: False, args.seconds)
        lateness = probe.stop()
        window.training.stop(wait=True)
        window.close()
    for name, values in (("idle", idle_ms), ("training", lateness)):
        print(
            f"{name:>8}: p50 {np.median(values):6.1f} ms  p95 {np.percentile(values, 95):6.1f} ms"
            f"  max {values.max():7.1f} ms  ({values.size} ticks of a 10 ms timer)"
        )
    p95 = float(np.percentile(lateness, 95))
    print(f"95th percentile while training: {p95:.1f} ms (target < 50 ms)")


if __name__ == "__main__":
    main()
