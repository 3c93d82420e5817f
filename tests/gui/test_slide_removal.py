"""Removing a slide from the window: the real confirmation box, a worker, the real store.
"No" changes nothing; "Yes" removes the slide with its patches and history, keeps the
runs, and the lists follow."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from cdfis_desktop.core.storage import Project
from cdfis_desktop.gui.slide_removal import ask_remove_slide


def _answer(button: QMessageBox.StandardButton, seen: list[str]) -> None:
    box = QApplication.activeModalWidget()
    if not isinstance(box, QMessageBox):
        QTimer.singleShot(50, lambda: _answer(button, seen))
        return
    seen.append(box.text())
    box.button(button).click()


def test_no_keeps_the_slide_yes_removes_it_and_keeps_the_runs(window_on, multi_project, qtbot):
    window = window_on(multi_project.folder)
    victim = multi_project.imported_later
    window.state.set_slide(victim)
    seen: list[str] = []
    with Project.open(multi_project.folder) as project:
        patches_before = len(project.patches())
        victim_patches = len(project.patches(slide_id=victim))
    assert victim_patches > 0

    QTimer.singleShot(50, lambda: _answer(QMessageBox.StandardButton.No, seen))
    assert ask_remove_slide(window, victim) is None
    assert victim in [s.id for s in window.state.slides]
    assert f"its {victim_patches:,} patches" in seen[0] and "not touched" in seen[0]

    QTimer.singleShot(50, lambda: _answer(QMessageBox.StandardButton.Yes, seen))
    worker = ask_remove_slide(window, victim)
    assert worker is not None
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: not window.jobs_running(), timeout=10_000)
    slide_ids = [s.id for s in window.state.slides]
    assert victim not in slide_ids and window.state.slide_id in slide_ids
    assert window.project_panel.slide_list.count() == len(slide_ids) == 3
    assert window.statusBar().currentMessage().startswith("Removed ")
    with Project.open(multi_project.folder) as project:
        assert len(project.patches()) == patches_before - victim_patches
        assert [r.id for r in project.runs()] == [multi_project.run_id]


def test_removal_is_refused_while_this_window_trains(window_on, gui_project, qtbot):
    """While a real run trains in the window, the action explains and removes nothing."""
    window = window_on(gui_project.folder)
    panel = window.training_panel
    panel.stop_by.setCurrentText("steps")
    panel.stop_value.setValue(2000)
    panel.batch_size.setValue(16)
    panel.device.setCurrentText("cpu")
    panel.start.click()
    assert window.training.running()
    seen: list[str] = []
    try:
        QTimer.singleShot(50, lambda: _answer(QMessageBox.StandardButton.Ok, seen))
        assert ask_remove_slide(window, gui_project.slide_id) is None
    finally:
        window.training.stop()
        qtbot.waitUntil(lambda: not window.training.running(), timeout=30_000)
    assert seen and "Stop the training run" in seen[0]
    assert gui_project.slide_id in [s.id for s in window.state.slides]
