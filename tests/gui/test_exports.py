"""Exports from the window write what their dialog promises (a file, or a folder of files),
with the permissions of any new file, and say where they wrote it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QLineEdit

from cdfis_desktop.gui.exports import EXPORT_KINDS, ask_export, start_export
from cdfis_desktop.gui.main_window import MainWindow


@pytest.fixture
def window(window_on, gui_project):
    return window_on(gui_project.folder)


@pytest.fixture
def umask_027():
    previous = os.umask(0o027)
    yield 0o027
    os.umask(previous)


def _run(window: MainWindow, qtbot, kind: str, path: Path) -> list[Path]:
    worker = start_export(window, kind, path)
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: not window.jobs_running(), timeout=5000)
    return window.last_export


@pytest.mark.parametrize("kind", ["csv", "geojson", "png"])
def test_export_writes_what_the_dialog_asked_for(window, qtbot, tmp_path, kind, umask_027):
    target = tmp_path / ("out" if EXPORT_KINDS[kind].writes_folder else f"run.{kind}")
    written = _run(window, qtbot, kind, target)
    if EXPORT_KINDS[kind].writes_folder:
        assert target.is_dir() and all(p.parent == target for p in written)
        assert len(written) == (3 if kind == "png" else 1)
    else:
        assert written == [target] and target.is_file()
    for path in written:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o666 & ~umask_027, f"{path.name}: {oct(mode)}"  # not mkstemp's 0600
    assert not list(tmp_path.rglob("*.partial"))
    message = window.statusBar().currentMessage()
    folder = target if EXPORT_KINDS[kind].writes_folder else target.parent
    assert message.startswith("Exported") and str(folder) in message
    assert written[0].name in message
    assert window.jobs.open_button.isVisible() and window.jobs.notice_folder == folder


@pytest.mark.parametrize("kind", ["geojson", "csv"])
def test_the_dialog_asks_for_a_folder_or_a_file(window, qtbot, tmp_path, kind):
    """The real Qt file dialog: a folder chooser for GeoJSON, a file name for CSV."""
    seen: list[QFileDialog.FileMode] = []
    chosen = tmp_path / ("chosen" if EXPORT_KINDS[kind].writes_folder else "chosen.csv")
    if EXPORT_KINDS[kind].writes_folder:
        chosen.mkdir()

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QFileDialog):
            QTimer.singleShot(50, answer)
            return
        seen.append(dialog.fileMode())
        dialog.findChild(QLineEdit, "fileNameEdit").setText(str(chosen))  # typed by the user
        dialog.accept()

    QTimer.singleShot(50, answer)
    worker = ask_export(window, kind)
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: not window.jobs_running(), timeout=5000)
    if EXPORT_KINDS[kind].writes_folder:
        assert seen == [QFileDialog.FileMode.Directory]
        assert [p.parent for p in window.last_export] == [chosen]
    else:
        assert seen == [QFileDialog.FileMode.AnyFile]
        assert window.last_export == [chosen] and chosen.is_file()


def test_png_export_follows_the_epoch_on_the_time_slider(window, qtbot, tmp_path):
    """The PNG export writes the epoch the viewer shows, not always the cumulative view."""
    window.state.set_epoch(0)
    written = _run(window, qtbot, "png", tmp_path / "out")
    assert len(written) == 3
    assert all("-epoch0-" in path.name for path in written), [p.name for p in written]
