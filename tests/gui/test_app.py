"""``cdfis-desktop`` entry point: screenshot mode on a real project, bad input, the icon, and
the PySide6 work-around that keeps long sessions from aborting."""

from __future__ import annotations

import os
import subprocess
import sys

from PySide6.QtGui import QImage

from cdfis_desktop.gui.app import app_icon, build_parser, main
from cdfis_desktop.gui.qtimage import qimage_to_array


def test_screenshot_of_a_project_shows_slide_overlay_and_plots(qapp, gui_project, screenshot_dir):
    target = screenshot_dir / "app_window.png"
    target.unlink(missing_ok=True)
    assert main(["--project", str(gui_project.folder), "--screenshot", str(target)]) == 0
    image = qimage_to_array(QImage(str(target)))
    assert image.shape[0] >= 900 and image.shape[1] >= 1500
    assert image[..., :3].std() > 30  # a drawn window, not a blank one


def test_screenshot_without_a_project_and_with_a_bad_one(qapp, tmp_path, capsys):
    empty = tmp_path / "empty.png"
    assert main(["--screenshot", str(empty)]) == 0
    assert empty.exists()
    assert main(["--project", str(tmp_path / "nowhere"), "--screenshot", str(empty)]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_icon_and_parser() -> None:
    assert not app_icon().isNull()
    assert {16, 256} <= {size.width() for size in app_icon().availableSizes()}
    args = build_parser().parse_args(["--project", "p", "--screenshot", "s.png"])
    assert str(args.project) == "p" and str(args.screenshot) == "s.png"


def test_bools_survive_many_signal_emits() -> None:
    """PySide6 6.12.0 on Python 3.11 aborts after a few thousand emits (each drops a
    reference to True it never took); the PySide6 version pyproject.toml allows must not."""
    code = (
        "import cdfis_desktop.gui\n"
        "from PySide6.QtCore import QObject, Signal\n"
        "class O(QObject):\n"
        "    s = Signal()\n"
        "o = O()\n"
        "for _ in range(200_000):\n"
        "    o.s.emit()\n"
        "print('ok', True)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout.strip() == "ok True"


def test_without_a_usable_display_the_app_says_so_in_one_line_and_exits_3(tmp_path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "XDG_CONFIG_HOME": str(tmp_path)}
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    result = subprocess.run(
        [sys.executable, "-m", "cdfis_desktop"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 3  # documented: the app cannot start here (not Qt's abort)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot open the desktop app: ")
    # no display, or (on a machine without them) the packages to install
    assert "no display" in lines[0] or "apt-get install" in lines[0]
