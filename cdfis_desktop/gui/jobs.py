"""One-shot background jobs of the main window and what the status bar says about them.

:class:`JobRunner` starts a :class:`~cdfis_desktop.gui.workers.JobWorker` per job, shows
its progress with a Cancel button in the status bar, routes failures to error dialogs and
calls ``on_success(result)`` on the GUI thread. :meth:`JobRunner.notify` shows a finished
result (e.g. an export) with an "Open folder" button that stays until the next notice.
GUI thread only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QProgressBar, QPushButton, QStatusBar

from cdfis_desktop.core.progress import Progress
from cdfis_desktop.gui.error_dialog import ErrorInfo, ErrorReporter
from cdfis_desktop.gui.workers import JobFn, JobWorker

MESSAGE_MS = 10_000


class JobRunner(QObject):
    """The window's job list, progress bar, Cancel button and completion notices."""

    def __init__(
        self, status_bar: QStatusBar, errors: ErrorReporter, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.status_bar = status_bar
        self.errors = errors
        self.jobs: list[JobWorker] = []
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running background work")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(lambda: self.cancel_all())
        self.open_button = QPushButton("Open folder")
        self.open_button.setToolTip("Show the written files in the file manager")
        self.open_button.hide()
        self.open_button.clicked.connect(self._open_folder)
        self.notice_folder: Path | None = None
        status_bar.addPermanentWidget(self.open_button)
        status_bar.addPermanentWidget(self.progress)
        status_bar.addPermanentWidget(self.cancel_button)

    def run(
        self,
        what: str,
        fn: JobFn,
        on_success: Callable[[Any], None] | None = None,
        *,
        quiet: bool = False,
        on_failure: Callable[[ErrorInfo], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> JobWorker:
        """Run ``fn(cancel, progress)`` in a worker; ``quiet`` jobs show no progress. The
        callbacks are connected before the worker starts, so none of its signals is
        missed (a job can fail at once)."""
        worker = JobWorker(what, fn, self)
        for signal, callback in (
            (worker.failed, on_failure),
            (worker.cancelled, on_cancelled),
            (worker.progressed, on_progress),
        ):
            if callback is not None:
                signal.connect(callback)
        self.jobs.append(worker)
        if not quiet:
            self.progress.setRange(0, 0)
            self.progress.show()
            self.cancel_button.show()
            self.status_bar.showMessage(f"{what}…")
        worker.progressed.connect(self._on_progress)
        if on_success is not None:
            worker.succeeded.connect(on_success)
        worker.failed.connect(self.errors.show)
        worker.cancelled.connect(lambda: self.status_bar.showMessage(f"{what}: cancelled", 5000))
        worker.finished.connect(lambda w=worker: self._ended(w))
        worker.start()
        return worker

    def running(self) -> bool:
        return bool(self.jobs)

    def cancel_all(self, wait: bool = False) -> None:
        """Ask every job to stop; ``wait`` until they did (closing)."""
        for worker in list(self.jobs):
            if wait:
                worker.stop()
            else:
                worker.cancel()

    def notify(self, text: str, folder: Path | None = None) -> None:
        """Say that something finished; with ``folder``, offer to open it."""
        self.notice_folder = folder
        self.open_button.setVisible(folder is not None)
        self.status_bar.showMessage(text)  # stays until the next message

    def _open_folder(self) -> None:
        if self.notice_folder is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.notice_folder)))

    def _on_progress(self, progress: Progress) -> None:
        self.progress.setRange(0, max(0, progress.total))
        self.progress.setValue(progress.done)
        if progress.message:
            self.status_bar.showMessage(progress.message)

    def _ended(self, worker: JobWorker) -> None:
        if worker in self.jobs:
            self.jobs.remove(worker)
        worker.wait()
        worker.deleteLater()
        if not self.jobs:
            self.progress.hide()
            self.cancel_button.hide()
