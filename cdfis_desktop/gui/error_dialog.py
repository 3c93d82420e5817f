"""Errors shown to the user: one dialog for expected errors and bugs, and a global hook.

A :class:`~cdfis_desktop.core.errors.CdfisError` is the user's to fix: the dialog shows its
message. Anything else is a bug: the dialog says so and carries the traceback in its
"Show Details" box (selectable, so it can be copied into a report). Dialogs are shown
non-modally, so an error never blocks the event loop. GUI thread only, except
:func:`describe`, which is pure.
"""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass
from types import TracebackType

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from cdfis_desktop.core.errors import CdfisError


@dataclass(frozen=True)
class ErrorInfo:
    """An exception flattened to text (safe to send between threads)."""

    title: str
    message: str
    details: str
    user_error: bool


def describe(exc: BaseException, what: str = "") -> ErrorInfo:
    """Text for ``exc``; ``what`` names the action that failed (e.g. "Import slides")."""
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if isinstance(exc, CdfisError):
        return ErrorInfo(what or "Error", str(exc), details, user_error=True)
    message = (
        f"Unexpected error: {type(exc).__name__}: {exc}\n\n"
        "This is a bug in cdfis-desktop. The details below can be copied into a report."
    )
    return ErrorInfo(what or "Unexpected error", message, details, user_error=False)


class ErrorReporter:
    """Shows :class:`ErrorInfo` dialogs parented to one window and remembers the last ones
    (tests and the status bar read :attr:`shown`)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        self._parent = parent
        self.shown: list[ErrorInfo] = []
        self._dialogs: list[QMessageBox] = []

    def show(self, info: ErrorInfo) -> QMessageBox:
        self.shown.append(info)
        box = QMessageBox(self._parent)
        box.setIcon(QMessageBox.Icon.Warning if info.user_error else QMessageBox.Icon.Critical)
        box.setWindowTitle(info.title)
        box.setText(info.message)
        box.setDetailedText(info.details)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _result, b=box: self._forget(b))
        self._dialogs.append(box)
        box.open()
        return box

    def show_exception(self, exc: BaseException, what: str = "") -> QMessageBox:
        return self.show(describe(exc, what))

    def close_all(self) -> None:
        for box in list(self._dialogs):
            box.close()
        self._dialogs.clear()

    def _forget(self, box: QMessageBox) -> None:
        if box in self._dialogs:
            self._dialogs.remove(box)


def install_excepthook(reporter: ErrorReporter) -> None:
    """Route uncaught exceptions of the GUI thread (e.g. raised in a slot) to a dialog, after
    printing them to stderr as Python would."""
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        previous(exc_type, exc, tb)
        if QApplication.instance() is not None and not issubclass(exc_type, KeyboardInterrupt):
            reporter.show(describe(exc.with_traceback(tb)))

    sys.excepthook = hook
