"""Training from the window: a real short run in the worker thread, pause/stop, the database
afterwards, responsiveness of the event loop while it trains, and closing during a run."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from cdfis_desktop.core.heatmap.overlay import metric_values
from cdfis_desktop.core.storage import Project
from cdfis_desktop.gui.latency import LatencyProbe
from cdfis_desktop.gui.main_window import MainWindow


@pytest.fixture
def window(window_on, gui_project):
    win = window_on(gui_project.folder)
    yield win
    win.training.stop(wait=True)


def _configure(win: MainWindow, steps: int) -> None:
    panel = win.training_panel
    panel.stop_by.setCurrentText("steps")
    panel.stop_value.setValue(steps)
    panel.batch_size.setValue(16)
    panel.presample_ratio.setValue(2.0)
    panel.device.setCurrentText("cpu")
    panel.augment.setChecked(False)


@pytest.mark.slow
def test_train_pause_stop_and_check_the_database(window, qtbot, gui_project):
    _configure(window, steps=2000)
    probe = LatencyProbe()
    window.training_panel.start.click()
    assert window.training.running()
    plots = window.training_panel.plots
    qtbot.waitUntil(lambda: plots.series["train_loss"].size >= 10, timeout=60_000)
    lateness = probe.stop()
    window.training.pause()
    assert window.training_panel.resume.isEnabled()
    paused_at = plots.series["train_loss"].size
    qtbot.wait(500)
    QApplication.processEvents()
    assert plots.series["train_loss"].size <= paused_at + 1  # at most the step in flight
    # the step in flight reported after Pause does not overwrite the status
    assert window.training_panel.status.text().startswith("Paused")
    window.training.resume()
    qtbot.waitUntil(lambda: plots.series["train_loss"].size >= paused_at + 5, timeout=30_000)
    window.training.stop()
    qtbot.waitUntil(lambda: not window.training.running(), timeout=30_000)
    assert window.training_panel.start.isEnabled()
    run_id = window.state.run_id
    assert run_id != gui_project.run_id  # the new run is selected
    project = Project.open(gui_project.folder)
    try:
        run = project.run(run_id)
        assert run.status == "cancelled"
        assert run.steps is not None and run.steps >= 15
        history = project.patch_history(run_id, int(gui_project.patch_ids[1]))
        chosen = metric_values(project, run_id, gui_project.slide_id, "times_chosen")
        assert np.nansum(chosen.value) >= 16 * 15  # every trained step recorded its draws
        assert history.step.dtype.kind == "i"
    finally:
        project.close()
    # the event loop kept running while the worker trained: its 10 ms timer ticked at least
    # twice per reported step (a loop blocked by the steps would tick about once per step;
    # timing targets live in benchmarks/gui_latency.py, not in tests)
    assert lateness.size >= 2 * 10
    # the stopped run is continued from the runs list, from its checkpoint
    continue_button = window.project_panel.continue_button
    assert window.state.run_id == run_id and continue_button.isEnabled()
    continue_button.click()
    assert window.training.running() and not continue_button.isEnabled()
    qtbot.waitUntil(lambda: plots.series["train_loss"].size >= 3, timeout=60_000)
    window.training.stop()
    qtbot.waitUntil(lambda: not window.training.running(), timeout=30_000)
    assert window.state.run_id == run_id  # the same run, not a new one
    project = Project.open(gui_project.folder)
    try:
        assert [r.id for r in project.runs()].count(run_id) == 1
        assert project.run(run_id).steps > run.steps
    finally:
        project.close()


@pytest.mark.slow
def test_closing_during_training_asks_then_stops_cleanly(window, qtbot, gui_project):
    _configure(window, steps=2000)
    window.training_panel.start.click()
    plots = window.training_panel.plots
    qtbot.waitUntil(lambda: plots.series["train_loss"].size >= 3, timeout=60_000)

    def answer(button: QMessageBox.StandardButton) -> None:
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox), "closing during training must ask"
        box.button(button).click()

    QTimer.singleShot(200, lambda: answer(QMessageBox.StandardButton.No))
    window.close()
    assert window.isVisible() and window.training.running()  # "No" keeps it training
    QTimer.singleShot(200, lambda: answer(QMessageBox.StandardButton.Yes))
    window.close()
    assert not window.isVisible() and not window.training.running()
    project = Project.open(gui_project.folder)
    try:
        assert project.runs()[0].status == "cancelled"
    finally:
        project.close()


def test_invalid_training_settings_end_in_an_error_dialog(window, qtbot):
    window.training_panel.warmup.setText("sometimes")
    window.training.start()
    qtbot.waitUntil(lambda: not window.training.running(), timeout=30_000)
    assert window.errors.shown and window.errors.shown[-1].user_error
    assert "sometimes" in window.errors.shown[-1].message
    assert window.training_panel.start.isEnabled()


def test_the_form_offers_every_preset_and_builds_its_configuration(qtbot):
    from cdfis_desktop.core.sampling.presets import SAMPLER_PRESETS
    from cdfis_desktop.gui.training_panel import TrainingPanel

    panel = TrainingPanel()
    qtbot.addWidget(panel)
    names = [panel.preset.itemText(i) for i in range(panel.preset.count())]
    assert names == list(SAMPLER_PRESETS)
    panel.preset.setCurrentText("cdf-history")
    panel.warmup.setText("epochs:1")
    config = panel.config().sampler
    assert (config.rule, config.mode, config.warmup) == ("cdf", "history", "epochs:1")
    assert panel.preset_note.text() == SAMPLER_PRESETS["cdf-history"].summary


def test_patch_loading_before_the_first_step_shows_in_the_status(window):
    from cdfis_desktop.core.training.reports import LoadProgress

    window.training_panel.add_reports([LoadProgress(1, 50, 200, "building the patch cache")])
    assert window.training_panel.status.text() == "Building the patch cache: 50/200 patches"


def test_the_form_enables_the_fields_of_the_chosen_presets_mode(qtbot):
    from cdfis_desktop.gui.training_panel import TrainingPanel

    panel = TrainingPanel()
    qtbot.addWidget(panel)
    assert panel.preset.currentText() == "cdf-prune"  # the default preset
    assert not panel.presample_ratio.isEnabled() and not panel.floor.isEnabled()
    panel.preset.setCurrentText("cdf-history")
    assert not panel.presample_ratio.isEnabled() and panel.floor.isEnabled()
    panel.preset.setCurrentText("cdf-presample")
    assert panel.presample_ratio.isEnabled()
    panel.preset.setCurrentText("uniform")
    assert not panel.metric.isEnabled() and not panel.presample_ratio.isEnabled()
    assert panel.config().sampler.rule == "uniform"
