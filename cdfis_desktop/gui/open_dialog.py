"""Opening a project that needs long work first (a database upgrade, or the integrity
check after an unclean close): ``Project.open`` runs in a
:class:`~cdfis_desktop.gui.workers.JobWorker` while a modal dialog shows its progress, so
the window keeps repainting (at 10 million history rows an upgrade takes minutes, the
check about 14 s).

Cancel (the button, Esc or closing the dialog) sets the worker's token; the core rolls an
upgrade back (the database stays at its old version, intact) or stops the check (nothing
opened; the next open checks again), and the dialog closes when the worker has ended,
never before. GUI thread only.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QDialog, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from cdfis_desktop.core.progress import CancelToken, Progress, ProgressCallback
from cdfis_desktop.core.storage import Project
from cdfis_desktop.gui.error_dialog import ErrorInfo
from cdfis_desktop.gui.workers import JobWorker


def opening_texts(upgrade: tuple[int, int] | None) -> tuple[str, str]:
    """(title, introduction) of the dialog: an upgrade from ``(stored, current)`` schema
    versions, or (None) the integrity check."""
    if upgrade is not None:
        stored, current = upgrade
        return "Upgrading the project", (
            f"This project was saved by an older cdfis-desktop (database version {stored}). "
            f"It is backed up, then upgraded to version {current}; cancelling leaves it as "
            "it was."
        )
    return "Checking the project", (
        "This project was not closed normally last time (or was copied or changed by "
        "another program), so its database is checked before use; cancelling leaves it "
        "unopened and unchanged."
    )


class OpenProgressDialog(QDialog):
    """Runs ``Project.open(folder)`` with progress; after :meth:`run` exactly one of
    :attr:`project` (opened), :attr:`error` (what failed) or :attr:`was_cancelled` is set.
    ``title``/``intro``: see :func:`opening_texts`."""

    def __init__(
        self, folder: Path | str, title: str, intro: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setModal(True)
        self.project: Project | None = None
        self.error: ErrorInfo | None = None
        self.was_cancelled = False
        intro_label = QLabel(intro)
        intro_label.setWordWrap(True)
        self.message = QLabel("Starting…")
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.reject)
        layout = QVBoxLayout(self)
        for widget in (intro_label, self.message, self.bar, self.cancel_button):
            layout.addWidget(widget)
        self.resize(460, self.sizeHint().height())

        self._opened: list[Project] = []  # written by the worker, read after it ended

        def open_project(cancel: CancelToken, progress: ProgressCallback) -> Project:
            self._opened.append(Project.open(folder, progress=progress, cancel=cancel))
            return self._opened[0]

        self.worker = JobWorker(title, open_project, self)
        self.worker.progressed.connect(self._show)
        self.worker.failed.connect(self._failed)
        self.worker.cancelled.connect(self._cancelled)
        self.worker.finished.connect(self.accept)  # after the outcome signals above

    def run(self) -> None:
        """Start the open and wait in a local event loop until the worker has ended. A
        cancel that comes after the project opened still gives the opened project."""
        self.worker.start()
        self.exec()
        self.worker.wait()
        if self._opened:
            self.project, self.was_cancelled = self._opened[0], False

    def reject(self) -> None:  # Qt override: Cancel, Esc and the close button
        """Ask the worker to stop; the dialog closes when it has."""
        if self.worker.isFinished():
            super().reject()
            return
        self.worker.cancel()
        self.cancel_button.setEnabled(False)
        self.message.setText("Cancelling: the project stays as it was…")

    def _show(self, progress: Progress) -> None:
        self.bar.setRange(0, max(0, progress.total))
        self.bar.setValue(progress.done)
        if progress.message:
            self.message.setText(progress.message)

    def _failed(self, info: ErrorInfo) -> None:
        self.error = info

    def _cancelled(self) -> None:
        self.was_cancelled = True
