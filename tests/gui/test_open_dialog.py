"""Opening a project whose database needs an upgrade or the integrity check: a progress
dialog over a worker thread (the window keeps running its event loop), and a cancel that
leaves it unchanged."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from sqlalchemy import Engine, event

from cdfis_desktop.core.storage import SCHEMA_VERSION, Project, integrity, migrations
from cdfis_desktop.gui.main_window import MainWindow
from cdfis_desktop.gui.open_dialog import OpenProgressDialog


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
    shown: list[OpenProgressDialog] = []
    QTimer.singleShot(0, lambda: shown.append(QApplication.activeModalWidget()))
    assert win.open_project(folder)
    assert len(shown) == 1 and isinstance(shown[0], OpenProgressDialog)  # ran in its event loop
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
        assert isinstance(dialog, OpenProgressDialog)
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


def test_a_project_not_closed_cleanly_is_checked_behind_the_dialog(
    qtbot, gui_project, quick_checks, monkeypatch, request
):
    """A copied project (as after a crash: not as the last clean close left it) is checked
    in the dialog's worker, not on the GUI thread; reopened after a clean close, directly."""
    monkeypatch.setattr(integrity, "LONG_CHECK_BYTES", 1)  # the test project is small
    folder = gui_project.folder
    assert Project.pending_check_bytes(folder) > 0
    gui_thread = threading.get_ident()
    check_threads: list[int] = []
    listener = _record_check_thread(check_threads)
    event.listen(Engine, "before_cursor_execute", listener)
    request.addfinalizer(lambda: event.remove(Engine, "before_cursor_execute", listener))
    shown: list[object] = []
    QTimer.singleShot(0, lambda: shown.append(QApplication.activeModalWidget()))
    win = MainWindow()
    qtbot.addWidget(win)
    assert win.open_project(folder)
    assert len(shown) == 1 and isinstance(shown[0], OpenProgressDialog)
    assert shown[0].windowTitle() == "Checking the project"
    assert len(quick_checks) == 1 and check_threads and gui_thread not in check_threads
    qtbot.waitUntil(lambda: not win.jobs_running(), timeout=10_000)
    win.close_project()
    assert Project.pending_check_bytes(folder) == 0
    shown.clear()
    QTimer.singleShot(0, lambda: shown.append(QApplication.activeModalWidget()))
    assert win.open_project(folder)
    assert shown == [] and len(quick_checks) == 1  # no dialog's event loop ran
    qtbot.waitUntil(lambda: not win.jobs_running(), timeout=10_000)
    win.close()


def _record_check_thread(threads: list[int]):
    def listener(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if "quick_check" in statement:
            threads.append(threading.get_ident())

    return listener
