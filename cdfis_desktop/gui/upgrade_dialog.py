"""Opening a project whose database must be upgraded first: the backup and the migration
run in a :class:`~cdfis_desktop.gui.workers.JobWorker` while a modal dialog shows their
progress, so the window keeps repainting (a 10-million-row database takes minutes).

Cancel (the button, Esc or closing the dialog) sets the worker's token; the core rolls
the migration back (the database stays at its old version, intact) and the dialog closes
when the worker has ended, never before. GUI thread only.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QDialog, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from cdfis_desktop.core.progress import CancelToken, Progress, ProgressCallback
from cdfis_desktop.core.storage import Project
from cdfis_desktop.gui.error_dialog import ErrorInfo
from cdfis_desktop.gui.workers import JobWorker


class UpgradeDialog(QDialog):
    """Runs ``Project.open(folder)`` with progress; after :meth:`run` exactly one of
    :attr:`project` (opened, upgraded), :attr:`error` (what failed) or
    :attr:`was_cancelled` is set."""

    def __init__(
        self, folder: Path | str, versions: tuple[int, int], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Upgrading the project")
        self.setModal(True)
        self.project: Project | None = None
        self.error: ErrorInfo | None = None
        self.was_cancelled = False
        stored, current = versions
        intro = QLabel(
            f"This project was saved by an older cdfis-desktop (database version {stored}). "
            f"It is backed up, then upgraded to version {current}; cancelling leaves it as "
            "it was."
        )
        intro.setWordWrap(True)
        self.message = QLabel("Starting…")
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.reject)
        layout = QVBoxLayout(self)
        for widget in (intro, self.message, self.bar, self.cancel_button):
            layout.addWidget(widget)
        self.resize(460, self.sizeHint().height())

        self._opened: list[Project] = []  # written by the worker, read after it ended

        def open_project(cancel: CancelToken, progress: ProgressCallback) -> Project:
            self._opened.append(Project.open(folder, progress=progress, cancel=cancel))
            return self._opened[0]

        self.worker = JobWorker("Upgrade the project database", open_project, self)
        self.worker.progressed.connect(self._show)
        self.worker.failed.connect(self._failed)
        self.worker.cancelled.connect(self._cancelled)
        self.worker.finished.connect(self.accept)  # after the outcome signals above

    def run(self) -> None:
        """Start the upgrade and wait in a local event loop until the worker has ended. A
        cancel that comes after the upgrade committed still gives the opened project."""
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
        self.message.setText("Cancelling: putting the database back as it was…")

    def _show(self, progress: Progress) -> None:
        self.bar.setRange(0, max(0, progress.total))
        self.bar.setValue(progress.done)
        if progress.message:
            self.message.setText(progress.message)

    def _failed(self, info: ErrorInfo) -> None:
        self.error = info

    def _cancelled(self) -> None:
        self.was_cancelled = True
