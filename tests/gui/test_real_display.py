"""The desktop app as a user meets it on Linux: a real X server (Xvfb) with a window
manager (openbox), Qt's ``xcb`` platform plugin, a 1366 x 768 laptop screen.

Skipped where Xvfb is not installed; ``.ci/run`` installs it with the Qt system packages
the README lists, so CI runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from cdfis_desktop.core.environment import x_display_reachable
from cdfis_desktop.gui.qtimage import qimage_to_array

SCREEN = (1366, 768)


@pytest.fixture
def x_display(tmp_path: Path) -> Iterator[str]:
    """A fresh Xvfb display (``:N``) with openbox running on it, stopped afterwards."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None or not sys.platform.startswith("linux"):
        pytest.skip("Xvfb is not installed (.ci/run installs it: apt-get install xvfb openbox)")
    number = next(n for n in range(90, 190) if not Path(f"/tmp/.X{n}-lock").exists())
    display = f":{number}"
    server = subprocess.Popen(
        [xvfb, display, "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    processes = [server]
    try:
        for _ in range(200):
            if x_display_reachable(display):
                break
            assert server.poll() is None, "Xvfb exited"
            time.sleep(0.05)
        else:
            pytest.fail(f"Xvfb did not accept connections on {display}")
        openbox = shutil.which("openbox")
        if openbox is not None:
            env = {**os.environ, "DISPLAY": display, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
            processes.append(
                subprocess.Popen(
                    [openbox], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            )
        yield display
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=10)


def test_app_opens_with_xcb_and_fits_a_laptop_screen(x_display, gui_project, tmp_path):
    shot = tmp_path / "xcb.png"
    env = {
        **os.environ,
        "DISPLAY": x_display,
        "QT_QPA_PLATFORM": "xcb",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),  # not the user's saved layout
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cdfis_desktop",
            "--project",
            str(gui_project.folder),
            "--screenshot",
            str(shot),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    image = qimage_to_array(QImage(str(shot)))
    height, width = image.shape[:2]
    assert width <= SCREEN[0] and height <= SCREEN[1]  # the whole window is on screen
    assert width >= 1000 and height >= 600  # and uses the screen
    assert image[..., :3].std() > 30  # drawn, not blank
