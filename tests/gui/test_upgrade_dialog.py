"""Opening a project whose database needs an upgrade: a progress dialog over a worker
thread (the window keeps running its event loop), and a cancel that leaves it unchanged."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from cdfis_desktop.core.storage import SCHEMA_VERSION, migrations
from cdfis_desktop.gui.main_window import MainWindow
from cdfis_desktop.gui.upgrade_dialog import UpgradeDialog


def _schema_version(folder: Path) -> str:
    with sqlite3.connect(folder / "project.db") as conn:
        return conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]


def _downgraded(folder: Path, as_version_5) -> Path:
    with sqlite3.connect(folder / "project.db") as conn:
        as_version_5(conn)
    return folder


def test_old_project_opens_through_the_upgrade_dialog(qtbot, gui_project, as_version_5):
    folder = _downgraded(gui_project.folder, as_version_5)
    win = MainWindow()
    qtbot.addWidget(win)
    shown: list[UpgradeDialog] = []
    QTimer.singleShot(0, lambda: shown.append(QApplication.activeModalWidget()))
    assert win.open_project(folder)
    assert len(shown) == 1 and isinstance(shown[0], UpgradeDialog)  # ran in its event loop
    assert win.state.project is not None and win.state.slides
    assert _schema_version(folder) == str(SCHEMA_VERSION)
    assert len(list(folder.glob("project.db.v5-backup-*"))) == 1
    qtbot.waitUntil(lambda: not win.jobs_running(), timeout=10_000)
    win.close()


def test_cancelling_the_upgrade_leaves_the_project_unchanged(
    qtbot, gui_project, as_version_5, monkeypatch
):
    """Cancel pressed while the migration runs (held at its first unit of work until
    then): the window has no project, the database is version 5 and intact, no backup."""
    folder = _downgraded(gui_project.folder, as_version_5)
    released = threading.Event()
    migrate_5 = migrations.MIGRATIONS[5]

    def held(conn, report) -> None:
        released.wait(30)
        report(0, 1)
        migrate_5(conn, report)

    monkeypatch.setitem(migrations.MIGRATIONS, 5, held)

    def press_cancel() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, UpgradeDialog)
        dialog.cancel_button.click()
        assert not dialog.cancel_button.isEnabled()  # waits for the worker to stop
        released.set()

    QTimer.singleShot(0, press_cancel)
    win = MainWindow()
    qtbot.addWidget(win)
    assert not win.open_project(folder)
    assert released.is_set()
    assert win.state.project is None
    assert "cancelled" in win.statusBar().currentMessage()
    assert _schema_version(folder) == "5"
    with sqlite3.connect(folder / "project.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert not list(folder.glob("project.db.v5-backup-*"))
    win.close()
