"""Training from the GUI: start a run with the panel's settings, continue a stopped or
interrupted one, pause, resume and stop it; the engine's reports feed the panel's live
plots and the window's state (the runs list, epochs and overlay follow a live run).

The run is ``Trainer.iter_run`` / ``iter_resume`` driven by a
:class:`~cdfis_desktop.gui.workers.StreamWorker` thread. Outside training the plots show
the selected run's recorded curves, read by a :class:`~cdfis_desktop.gui.loader.LatestLoader`
(off the GUI thread: about 0.3 s for a run of 250,000 patches and 10 epochs). GUI thread
only.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QStatusBar

from cdfis_desktop.core.errors import CdfisError
from cdfis_desktop.core.progress import CancelToken
from cdfis_desktop.gui.error_dialog import ErrorReporter
from cdfis_desktop.gui.loader import LatestLoader
from cdfis_desktop.gui.project_panel import ProjectPanel
from cdfis_desktop.gui.state import AppState
from cdfis_desktop.gui.training_panel import TrainingPanel
from cdfis_desktop.gui.workers import StreamWorker


@dataclass(frozen=True)
class RunCurves:
    """A stored run's curves for the live plots: ``Project.metrics``, the per-epoch
    ``Project.chosen_shares`` and the last epoch's scores (None without history)."""

    metrics: dict[str, np.ndarray]
    chosen_shares: tuple[np.ndarray, np.ndarray]
    scores: np.ndarray | None


def _read_run_curves(request: Hashable) -> RunCurves:
    """Loader thread: the curves of run ``request[1]`` of project ``request[0]``."""
    project, run_id = request  # type: ignore[misc]
    epochs = project.epochs(run_id)
    return RunCurves(
        project.metrics(run_id),
        project.chosen_shares(run_id),
        project.score_distribution(run_id, epoch=epochs[-1]) if epochs else None,
    )


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
        self.curves = LatestLoader("run curves", _read_run_curves, latest_only=True, parent=self)
        self.curves.loaded.connect(self._on_curves)
        self.curves.failed.connect(self._on_curves_failed)
        self._curves_wanted: tuple[Any, int] | None = None
        panel.start_requested.connect(self.start)
        panel.pause_requested.connect(self.pause)
        panel.resume_requested.connect(self.resume)
        panel.stop_requested.connect(self.stop)
        project_panel.continue_requested.connect(self.continue_run)
        state.events.run.connect(self._show_run)

    def running(self) -> bool:
        return self.worker is not None

    def busy(self) -> bool:
        """A stored run's curves are being read."""
        return self._curves_wanted is not None

    def shutdown(self) -> None:
        self.curves.shutdown()

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
        self.panel.plots.clear_data()
        self._curves_wanted = None if run_id is None else (project, run_id)
        if self._curves_wanted is not None:
            self.curves.request([self._curves_wanted])

    def _on_curves(self, request: tuple[Any, int], curves: RunCurves) -> None:
        if request != self._curves_wanted:
            return  # another run was selected meanwhile
        self._curves_wanted = None
        if self.worker is not None:
            return  # a run started meanwhile: its live reports own the plots
        plots = self.panel.plots
        plots.show_metrics(curves.metrics)
        plots.show_chosen_shares(*curves.chosen_shares)
        if curves.scores is not None:
            plots.set_scores(curves.scores)

    def _on_curves_failed(self, request: tuple[Any, int], error: Exception) -> None:
        if request == self._curves_wanted:
            self._curves_wanted = None
            self.status_bar.showMessage(f"Could not read the run's curves: {error}", 10_000)
