"""Quitting while tiles, thumbnails and the overlay load leaves no traceback: the app runs
in its own process (tracebacks of dying threads show up at interpreter exit), is closed
with work in flight, and its stderr must stay clean."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

QUIT_WHILE_LOADING = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from cdfis_desktop.gui.app import main
from cdfis_desktop.gui.main_window import MainWindow

app = QApplication([])
delay_ms = int(sys.argv[2])


def window():
    return next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow))


def busy():
    # a zoom (new tiles), another slide (new loader), another metric (new overlay),
    # the patch browser (thumbnails): all in flight when the window closes
    w = window()
    w.viewer.zoom_by(6)
    w.project_panel.slide_list.setCurrentRow(1)
    w.viewer.zoom_by(6)
    w.overlay_controls.select_metric("times_chosen")
    w.bottom_tabs.setCurrentWidget(w.gallery)
    w.patches.step(1)


# as the real app: main() owns the window, which goes away when main() returns
QTimer.singleShot(delay_ms, busy)
QTimer.singleShot(delay_ms + 30, lambda: window().close())
sys.exit(main(["--project", sys.argv[1]]))
"""


@pytest.mark.parametrize("delay_ms", [0, 300])
def test_quitting_while_loading_prints_nothing(multi_project, tmp_path, delay_ms):
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PYTHONFAULTHANDLER": "1",
    }
    result = subprocess.run(
        [sys.executable, "-c", QUIT_WHILE_LOADING, str(multi_project.folder), str(delay_ms)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    noise = [
        line
        for line in result.stderr.splitlines()
        if "propagateSizeHints" not in line  # the offscreen plugin's own notice
    ]
    assert noise == [], "\n".join(noise[-40:])
