"""Training from the GUI: start a run with the panel's settings, continue a stopped or
interrupted one, pause, resume and stop it; the engine's reports feed the panel's live
plots and the window's state (the runs list, epochs and overlay follow a live run).

The run is ``Trainer.iter_run`` / ``iter_resume`` driven by a
:class:`~cdfis_desktop.gui.workers.StreamWorker` thread. GUI thread only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QStatusBar

from cdfis_desktop.core.errors import CdfisError
from cdfis_desktop.core.progress import CancelToken
from cdfis_desktop.gui.error_dialog import ErrorReporter
from cdfis_desktop.gui.project_panel import ProjectPanel
from cdfis_desktop.gui.state import AppState
from cdfis_desktop.gui.training_panel import TrainingPanel
from cdfis_desktop.gui.workers import StreamWorker


class TrainingController(QObject):
    """One training worker at a time."""

    def __init__(
        self,
        state: AppState,
        panel: TrainingPanel,
        project_panel: ProjectPanel,
        errors: ErrorReporter,
        status_bar: QStatusBar,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.panel = panel
        self.project_panel = project_panel
        self.errors = errors
        self.status_bar = status_bar
        self.worker: StreamWorker | None = None
        panel.start_requested.connect(self.start)
        panel.pause_requested.connect(self.pause)
        panel.resume_requested.connect(self.resume)
        panel.stop_requested.connect(self.stop)
        project_panel.continue_requested.connect(self.continue_run)
        state.events.run.connect(self._show_run)

    def running(self) -> bool:
        return self.worker is not None

    def start(self) -> None:
        """Start a new run with the panel's configuration."""
        if self.state.project is None or self.worker is not None:
            return
        try:
            config = self.panel.config()
        except CdfisError as exc:
            self.errors.show_exception(exc, "Training settings")
            return
        from cdfis_desktop.core.training.engine import Trainer

        project = self.state.project
        self._launch(lambda cancel: Trainer(project).iter_run(config, cancel), "Preparing the run…")

    def continue_run(self, run_id: int) -> None:
        """Continue a stopped or interrupted run from its last checkpoint."""
        if self.state.project is None or self.worker is not None:
            return
        from cdfis_desktop.core.training.engine import Trainer

        project = self.state.project
        self._launch(
            lambda cancel: Trainer(project).iter_resume(run_id, cancel),
            f"Continuing run {run_id} from its last checkpoint…",
        )

    def pause(self) -> None:
        if self.worker is not None:
            self.worker.cancel_token.pause()
            self.panel.set_running(True, paused=True)

    def resume(self) -> None:
        if self.worker is not None:
            self.worker.cancel_token.resume()
            self.panel.set_running(True, paused=False)

    def stop(self, wait: bool = False) -> None:
        """Ask the run to stop at its next step (it flushes its history and writes a
        checkpoint); ``wait`` blocks until it did (closing the window)."""
        if self.worker is None:
            return
        self.panel.set_status("Stopping…")
        self.worker.cancel()
        if wait:
            self.worker.wait()
            self._ended()

    # ------------------------------------------------------------------ internals
    def _launch(self, reports: Callable[[CancelToken], Iterator[Any]], status: str) -> None:
        from cdfis_desktop.core.training.reports import EpochReport, RunFinished, RunStarted

        worker = StreamWorker(
            "Training",
            reports,
            urgent_types=(RunStarted, EpochReport, RunFinished),
            parent=self,
        )
        worker.reports.connect(self._on_reports)
        worker.failed.connect(self.errors.show)
        worker.finished.connect(self._ended)
        self.worker = worker
        self.panel.plots.clear_data()
        self.panel.set_running(True)
        self.panel.set_status(status)
        self.project_panel.set_training(True)
        worker.start()

    def _on_reports(self, reports: list[Any]) -> None:
        from cdfis_desktop.core.training.reports import EpochReport, RunFinished, RunStarted

        project = self.state.project
        if self.sender() is not self.worker or project is None:
            return  # queued before the run was stopped for closing
        self.panel.add_reports(reports)
        for report in reports:
            if isinstance(report, RunStarted):
                self.state.set_runs(project.runs(), select=report.run_id)
                if report.warning:
                    self.status_bar.showMessage(report.warning, 10_000)
            elif isinstance(report, EpochReport):
                self.state.set_runs(project.runs())  # epochs, overlay and galleries follow
            elif isinstance(report, RunFinished):
                self.panel.set_status(
                    f"Run {report.run_id} {report.status} at step {report.step}"
                    + (f": {report.message}" if report.message else "")
                )

    def _ended(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.wait()
            worker.deleteLater()
        self.panel.set_running(False)
        self.project_panel.set_training(False)
        if self.state.project is not None:
            self.state.set_runs(self.state.project.runs())

    def _show_run(self, run_id: int | None) -> None:
        """Outside training, the plots show the selected run's recorded curves."""
        project = self.state.project
        if self.worker is not None or project is None:
            return
        plots = self.panel.plots
        plots.clear_data()
        if run_id is None:
            return
        plots.show_metrics(project.metrics(run_id))
        plots.show_chosen_shares(*project.chosen_shares(run_id))
        epochs = project.epochs(run_id)
        if epochs:
            plots.set_scores(project.score_distribution(run_id, epoch=epochs[-1]))
