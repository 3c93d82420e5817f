"""Entry script of the frozen application (PyInstaller): the desktop app, or a ``cdfis``
command when one is named (``cdfis-desktop train --project DIR ...``).

The dispatch is :func:`cdfis_desktop.__main__.main`; this file only adds what a frozen
program needs first: :func:`multiprocessing.freeze_support`, so worker processes started
with the ``spawn`` method (Windows, macOS) run their task instead of a second copy of the app.
"""

from __future__ import annotations

import multiprocessing
import sys

from cdfis_desktop.__main__ import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
