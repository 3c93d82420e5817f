"""The Qt platform check run before Qt starts: which plugin, which libraries it lacks, which
packages provide them, and the display; never importing Qt."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cdfis_desktop.core.environment import (
    check_qt_platform,
    packages_for,
    qt_platform_candidates,
    qt_plugin_dir,
)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="Qt platform plugins are .so files on Linux"
)


def test_candidates_follow_qt_rules() -> None:
    assert qt_platform_candidates({"QT_QPA_PLATFORM": "offscreen"}) == ["offscreen"]
    assert qt_platform_candidates({"QT_QPA_PLATFORM": "wayland:foo;xcb"}) == ["wayland", "xcb"]
    assert qt_platform_candidates({}) == ["xcb"]
    session = {"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}
    assert qt_platform_candidates(session) == ["wayland", "xcb"]


def test_packages_named_for_missing_libraries() -> None:
    sonames = ["libxcb-keysyms.so.1", "libxcb-icccm.so.4", "libunknown.so.7", "libxcb-icccm.so.4"]
    assert packages_for(sonames) == ["libxcb-icccm4", "libxcb-keysyms1"]


def test_offscreen_loads_without_a_display() -> None:
    check = check_qt_platform({"QT_QPA_PLATFORM": "offscreen"})
    assert check.ok and check.plugin is not None and check.plugin.name == "libqoffscreen.so"


def test_unknown_plugin_lists_the_available_ones() -> None:
    check = check_qt_platform({"QT_QPA_PLATFORM": "nosuch"})
    assert not check.ok and "nosuch" in check.problem and "offscreen" in check.problem


def test_xcb_without_display_is_refused_or_names_missing_packages() -> None:
    check = check_qt_platform({"QT_QPA_PLATFORM": "xcb"})
    assert not check.ok
    assert check.problem.startswith("no display") or "apt-get install" in check.problem


def test_plugin_whose_libraries_do_not_resolve_names_them(tmp_path: Path) -> None:
    """A real copy of the xcb plugin outside PySide6: its Qt libraries (found through its
    relative RPATH) do not resolve, so the loader's missing libraries are listed."""
    if shutil.which("ldd") is None:
        pytest.skip("ldd is not installed")
    source = qt_plugin_dir()
    assert source is not None
    folder = tmp_path / "platforms"
    folder.mkdir()
    shutil.copy(source / "libqxcb.so", folder / "libqxcb.so")
    check = check_qt_platform({"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":0"}, plugin_dir=folder)
    assert not check.ok
    assert "libQt6XcbQpa.so.6" in check.missing
    assert "reinstall PySide6" in check.problem


def test_check_never_imports_qt() -> None:
    code = (
        "import sys\n"
        "from cdfis_desktop.core.environment import check_qt_platform\n"
        "check_qt_platform({'QT_QPA_PLATFORM': 'offscreen'})\n"
        "print([m for m in sys.modules if m.startswith(('PySide6', 'shiboken6'))])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr
