"""Helpers shared by the command modules: argument types that fail with exit status 2,
progress lines on stderr, and opening a project with its upgrade / check progress shown."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from cdfis_desktop.core.progress import Progress
    from cdfis_desktop.core.storage import Project


def existing_path(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file or folder")
    return path


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be positive")
    return value


class ProgressLine:
    """Prints :class:`~cdfis_desktop.core.progress.Progress` updates to stderr: one line
    redrawn in place on a terminal, one line per update otherwise (logs, CI). Use as a
    context manager so the terminal line is ended."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.written = False

    def __call__(self, progress: Progress) -> None:
        counts = f"[{progress.done}/{progress.total}] " if progress.total > 0 else ""
        text = f"{counts}{progress.message}"
        if self.tty:
            self.stream.write(f"\r{text}\x1b[K")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self.written = True

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.tty and self.written:
            self.stream.write("\n")


def open_project(folder: str | Path, *, create: bool = False) -> Project:
    """:meth:`Project.open` whose schema upgrade (backup, migration) or integrity check of
    a big database (``Project.long_open``) prints its progress on stderr
    (:class:`ProgressLine`) instead of looking frozen; any other open is silent, so an
    error stays the only line on stderr."""
    from cdfis_desktop.core.storage import Project

    if create or not Project.long_open(folder):
        return Project.open(folder, create=create)
    with ProgressLine() as progress:
        return Project.open(folder, create=create, progress=progress)
