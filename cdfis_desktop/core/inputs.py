"""Checks on input paths shared by every reader of user files (slides, annotations, CSVs).

A FIFO, socket or device given where a file is expected would make ``open`` or ``read``
wait forever (a FIFO blocks until a writer appears) or never end (``/dev/zero``), so
readers refuse anything that is not a regular file (or a link to one) before opening it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def special_file_kind(path: str | os.PathLike[str]) -> str | None:
    """``"a named pipe (FIFO)"``, ``"a socket"`` or ``"a device"`` when ``path`` (links
    followed) is one of those; None for a regular file, a folder or a missing path."""
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return None
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return None
