"""Entry script of the frozen application (PyInstaller), for both of its programs.

``cdfis`` runs the command line (:func:`cdfis_desktop.cli.main.main`, aliases such as
``cdfis import`` included). ``cdfis-desktop`` (and ``python packaging/launcher.py``) opens
the desktop app, or runs a ``cdfis`` command when the first argument names one: the
dispatch of :func:`cdfis_desktop.__main__.main`. Before either,
:func:`multiprocessing.freeze_support` lets worker processes started with the ``spawn``
method (Windows, macOS) run their task instead of a second copy of the app.
"""

from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path

from cdfis_desktop.__main__ import main as app_main
from cdfis_desktop.cli.main import main as cli_main

CLI_PROGRAM = "cdfis"  # the EXE name in cdfis-desktop.spec


def main() -> int:
    """Run the program this executable is named after; returns the exit status."""
    if getattr(sys, "frozen", False) and Path(sys.executable).stem == CLI_PROGRAM:
        return cli_main()
    return app_main()


if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
