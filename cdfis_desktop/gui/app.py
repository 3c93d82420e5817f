"""``cdfis-desktop [--project DIR] [--screenshot PNG]``: start the desktop application.

``--screenshot PNG`` opens the window (works with ``QT_QPA_PLATFORM=offscreen``), waits
until the slide tiles and the overlay are drawn, saves a PNG of the whole window
(atomically) and exits 0; 1 when it could not be saved or nothing was drawn in time, 2 for
a project that cannot be opened.

Exit status 3 (``GUI_UNAVAILABLE_EXIT``), with one ``error: ...`` line naming the missing
system packages or the missing display, when Qt's platform plugin cannot start here
(checked before Qt is started, since Qt itself aborts with a misleading message).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from cdfis_desktop import __version__
from cdfis_desktop.core.environment import GUI_UNAVAILABLE_EXIT, check_qt_platform
from cdfis_desktop.core.paths import APP_NAME, resources_dir

if TYPE_CHECKING:
    from cdfis_desktop.gui.main_window import MainWindow

ORGANIZATION = "cdfis"
ICON_SIZES = (16, 32, 48, 64, 128, 256)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cdfis-desktop", description="Desktop app of cdfis: train, then see on the slide."
    )
    parser.add_argument("--project", type=Path, help="project folder to open")
    parser.add_argument(
        "--screenshot",
        type=Path,
        metavar="PNG",
        help="save a PNG of the window once drawn, then exit",
    )
    parser.add_argument(
        "--screenshot-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="give up waiting for the drawing after S seconds (default 60)",
    )
    parser.add_argument("-V", "--version", action="version", version=f"cdfis-desktop {__version__}")
    return parser


def app_icon() -> QIcon:
    """The application icon from ``resources/icons`` (PNG sizes, SVG as fallback)."""
    icon = QIcon()
    folder = resources_dir() / "icons"
    for size in ICON_SIZES:
        path = folder / f"cdfis-{size}.png"
        if path.exists():
            icon.addFile(str(path))
    if icon.isNull() and (folder / "cdfis.svg").exists():
        icon.addFile(str(folder / "cdfis.svg"))
    return icon


def configure_application(app: QApplication) -> None:
    """Name, organisation (QSettings location), icon and style sheet."""
    if not QCoreApplication.organizationName():  # tests set their own, for their settings
        QCoreApplication.setOrganizationName(ORGANIZATION)
        QCoreApplication.setApplicationName(APP_NAME)
    QApplication.setApplicationDisplayName("cdfis-desktop")
    QCoreApplication.setApplicationVersion(__version__)
    app.setWindowIcon(app_icon())
    style = resources_dir() / "style.qss"
    if style.exists():
        app.setStyleSheet(style.read_text(encoding="utf-8"))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if QApplication.instance() is None:
        check = check_qt_platform()
        if not check.ok:  # Qt would abort with a message that names no package
            print(f"error: cannot open the desktop app: {check.problem}", file=sys.stderr)
            return GUI_UNAVAILABLE_EXIT
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else APP_NAME])
    configure_application(app)
    from cdfis_desktop.gui.error_dialog import install_excepthook
    from cdfis_desktop.gui.main_window import MainWindow

    window = MainWindow()
    window.setWindowIcon(app.windowIcon())
    install_excepthook(window.errors)
    if args.project is not None and not window.open_project(args.project):
        if args.screenshot is not None:
            print(f"error: {window.errors.shown[-1].message}", file=sys.stderr)
            window.close()
            return 2
    window.show()
    if args.screenshot is not None:
        window.use_default_layout()  # the same picture whatever layout was saved
        return save_screenshot(app, window, args.screenshot, args.screenshot_timeout)
    return app.exec()


def window_drawn(window: MainWindow) -> bool:
    """True when the window shows all it is going to: the slide's tiles settled, the
    overlay drawn (or the canvas notice saying why there is none), the plots filled, and
    no background job left."""
    state = window.state
    if state.project is None or state.slide is None:
        return not window.jobs_running()
    if not window.viewer.is_settled() or window.jobs_running():
        return False
    return state.run_id is None or window.overlay_shown() or bool(window.viewer.notice_text())


def save_screenshot(app: QApplication, window: MainWindow, path: Path, timeout_s: float) -> int:
    """Wait until :func:`window_drawn`, save the window as PNG at ``path``, close it."""
    deadline = time.monotonic() + timeout_s
    drawn = False
    while time.monotonic() < deadline:
        app.processEvents()
        if window_drawn(window):
            drawn = True
            break
        time.sleep(0.02)
    for _ in range(5):  # let the last tiles and timers paint
        app.processEvents()
        time.sleep(0.02)
    path = path.expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    saved = window.grab().save(str(tmp), "PNG")
    if saved:
        os.replace(tmp, path)
    window.close()
    app.processEvents()
    if not saved:
        print(f"error: could not write {path}", file=sys.stderr)
        return 1
    if not drawn:
        print(
            f"warning: {path} saved before everything was drawn ({timeout_s:g} s)", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
