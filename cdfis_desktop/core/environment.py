"""What this machine provides for the desktop app: a Qt platform plugin whose system
libraries load, and a display to open a window on.

Qt aborts the process (``could not load the Qt platform plugin "xcb"``, exit 134) when a
library its platform plugin needs is missing, with a message that names neither the
library nor the package to install. :func:`check_qt_platform` finds the plugin file of the
installed PySide6 *without importing Qt*, asks the dynamic loader (``ldd``) whether it
loads, and names the missing libraries and the Debian/Ubuntu packages that provide them,
so the app (``gui/app.py``), ``cdfis demo`` and ``cdfis doctor`` can say so in one line
before Qt is started. Qt-free, any thread.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

GUI_UNAVAILABLE_EXIT = 3
"""Exit status of ``cdfis-desktop`` (and ``cdfis demo``/``cdfis doctor``) when the desktop
app cannot start here: a Qt platform plugin's library is missing, or there is no display."""

DEBIAN_PACKAGES: Mapping[str, str] = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libwayland-client.so.0": "libwayland-client0",
    "libwayland-cursor.so.0": "libwayland-cursor0",
    "libwayland-egl.so.1": "libwayland-egl1",
}
"""Shared library (soname) -> the Debian/Ubuntu package that installs it."""


@dataclass(frozen=True)
class PlatformCheck:
    """Whether Qt can start its platform plugin here.

    ``platform``: the plugin Qt will try (``xcb``, ``wayland``, ``offscreen``, ``cocoa``,
    ``windows``...); ``plugin``: its file, None when not found or not needed (macOS,
    Windows); ``missing``: sonames the dynamic loader could not find; ``display``: the
    display Qt will connect to (``$DISPLAY`` / ``$WAYLAND_DISPLAY``), None when none is
    needed; ``problem``: one line for the user, None when Qt can start.
    """

    platform: str
    plugin: Path | None
    missing: tuple[str, ...] = ()
    display: str | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def packages(self) -> list[str]:
        """Debian/Ubuntu packages providing :attr:`missing` (unknown libraries left out)."""
        return packages_for(self.missing)


def packages_for(sonames: Sequence[str]) -> list[str]:
    """The Debian/Ubuntu packages that install ``sonames``, sorted, without duplicates."""
    return sorted({DEBIAN_PACKAGES[s] for s in sonames if s in DEBIAN_PACKAGES})


def qt_platform_candidates(environ: Mapping[str, str] | None = None) -> list[str]:
    """The platform plugins Qt tries, in order: ``$QT_QPA_PLATFORM`` (``;``-separated,
    ``name:options``), else ``wayland`` then ``xcb`` in a Wayland session and ``xcb``
    elsewhere on Linux; ``cocoa`` on macOS, ``windows`` on Windows."""
    env = os.environ if environ is None else environ
    explicit = env.get("QT_QPA_PLATFORM", "").strip()
    if explicit:
        return [part.split(":")[0].strip() for part in explicit.split(";") if part.strip()]
    if sys.platform == "darwin":
        return ["cocoa"]
    if sys.platform == "win32":
        return ["windows"]
    if env.get("XDG_SESSION_TYPE") == "wayland" and env.get("WAYLAND_DISPLAY"):
        return ["wayland", "xcb"]
    return ["xcb"]


def qt_plugin_dir() -> Path | None:
    """``PySide6/Qt/plugins/platforms`` of the installed PySide6 (found without importing
    it), or None when PySide6 is not installed."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    for candidate in (root / "Qt" / "plugins" / "platforms", root / "plugins" / "platforms"):
        if candidate.is_dir():
            return candidate
    return None


def check_qt_platform(
    environ: Mapping[str, str] | None = None, plugin_dir: Path | None = None
) -> PlatformCheck:
    """Check the platform plugins Qt will try (:func:`qt_platform_candidates`): the first
    that loads and has its display wins; otherwise the first candidate's problem.
    ``plugin_dir`` defaults to :func:`qt_plugin_dir`. Never imports Qt."""
    env = os.environ if environ is None else environ
    folder = plugin_dir if plugin_dir is not None else qt_plugin_dir()
    checks = [_check_one(name, env, folder) for name in qt_platform_candidates(env)]
    return next((c for c in checks if c.ok), checks[0])


def _check_one(platform: str, env: Mapping[str, str], folder: Path | None) -> PlatformCheck:
    if platform in ("cocoa", "windows"):
        return PlatformCheck(platform, None)  # the wheels bundle what these need
    if folder is None:
        if importlib.util.find_spec("PySide6") is None:
            return PlatformCheck(
                platform, None, problem="PySide6 is not installed (pip install PySide6-Essentials)"
            )
        return PlatformCheck(platform, None)  # plugins elsewhere (a bundle): let Qt try
    plugin = folder / f"libq{platform}.so"
    if not plugin.exists():
        available = sorted(p.stem.removeprefix("libq") for p in folder.glob("libq*.so"))
        return PlatformCheck(
            platform,
            None,
            problem=f'Qt has no platform plugin "{platform}" (QT_QPA_PLATFORM); '
            f"available: {', '.join(available)}",
        )
    display_variable = {"xcb": "DISPLAY", "wayland": "WAYLAND_DISPLAY"}.get(platform)
    display = (env.get(display_variable) or None) if display_variable else None
    missing = missing_libraries(plugin)
    if getattr(sys, "frozen", False):  # a bundle loads its own Qt libraries, not by RUNPATH
        missing = tuple(name for name in missing if not name.startswith("libQt6"))
    if missing:
        return PlatformCheck(
            platform, plugin, missing, display, problem=_missing_text(platform, missing)
        )
    if platform == "xcb" and display is None:
        return PlatformCheck(platform, plugin, problem=_NO_DISPLAY)
    if platform == "xcb" and display is not None and not x_display_reachable(display):
        return PlatformCheck(
            platform,
            plugin,
            display=display,
            problem=f"cannot connect to the X display {display!r} (is the X server "
            "running, and may this user use it?)",
        )
    if platform == "wayland" and display is None:
        return PlatformCheck(platform, plugin, problem="no Wayland display ($WAYLAND_DISPLAY)")
    return PlatformCheck(platform, plugin, display=display)


_NO_DISPLAY = (
    "no display ($DISPLAY is not set): run it on a desktop session or with X forwarding "
    "(ssh -X); for a picture without a display use QT_QPA_PLATFORM=offscreen with --screenshot"
)


def _missing_text(platform: str, missing: Sequence[str]) -> str:
    packages = packages_for(missing)
    hints = []
    if packages:
        hints.append(f"on Debian/Ubuntu: sudo apt-get install {' '.join(packages)}")
    if any(name.startswith("libQt6") for name in missing):
        hints.append("reinstall PySide6 (pip install --force-reinstall PySide6-Essentials)")
    if not hints:
        hints.append("install the system packages listed in the README (System packages)")
    return (
        f'the Qt platform plugin "{platform}" needs {", ".join(missing)}, not installed; '
        + "; ".join(hints)
    )


def missing_libraries(library: Path) -> tuple[str, ...]:
    """Sonames ``library`` needs that the dynamic loader cannot find (empty when it
    loads). Asks ``ldd`` (a fresh process, so libraries this process already loaded do not
    hide missing ones); without ``ldd``, loads it here and names the first missing one."""
    listed = _ldd_missing(library)
    if listed is not None:
        return listed
    try:
        ctypes.CDLL(str(library))
    except OSError as exc:
        found = re.match(r"([^:\s]+\.so[.\d]*): cannot open shared object file", str(exc))
        return (found.group(1),) if found else (str(exc),)
    return ()


def _ldd_missing(library: Path) -> tuple[str, ...] | None:
    """The "not found" lines of ``ldd library``; None when ``ldd`` cannot tell."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return None
    try:
        result = subprocess.run(
            [ldd, str(library)], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    names = re.findall(r"^\s*(\S+) => not found", result.stdout, flags=re.MULTILINE)
    return tuple(dict.fromkeys(names))


def x_display_reachable(display: str) -> bool:
    """Whether an X client can connect to ``display`` (libxcb's ``xcb_connect``)."""
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return False
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    connection = xcb.xcb_connect(display.encode(), None)
    try:
        return bool(connection) and xcb.xcb_connection_has_error(connection) == 0
    finally:
        if connection:
            xcb.xcb_disconnect(connection)
