"""The window on a laptop screen and from the keyboard: minimum size, controls and status
bar in view at 1280 x 720, readable slide names, shortcuts listed, focus on hover."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, QRect, Qt
from PySide6.QtGui import QEnterEvent
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QScrollBar,
    QTableWidget,
    QWidget,
)

from cdfis_desktop.gui.main_window import MainWindow

LAPTOP = (1280, 720)


@pytest.fixture
def window(window_on, gui_project):
    return window_on(gui_project.folder)


def _on_screen(win: MainWindow, widget: QWidget) -> bool:
    """``widget`` is shown and lies entirely inside the window."""
    if not widget.isVisible():
        return False
    top_left = widget.mapTo(win, QPoint(0, 0))
    return win.rect().contains(QRect(top_left, widget.size()))


def test_the_window_fits_1280_by_720_with_every_control_in_view(window, qtbot):
    hint = window.minimumSizeHint()
    assert hint.width() <= LAPTOP[0] and hint.height() <= LAPTOP[1]
    window.resize(*LAPTOP)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == LAPTOP, timeout=5000)
    panel = window.training_panel
    window.bottom_tabs.setCurrentWidget(panel)
    QApplication.processEvents()
    for widget in (
        panel.start,
        panel.pause,
        panel.resume,
        panel.stop,
        panel.status,
        window.statusBar(),
        window.overlay_controls.metric,
        window.project_panel.continue_button,
        window.viewer,
    ):
        assert _on_screen(window, widget), widget


def test_slide_names_are_readable_in_the_project_dock(window):
    slide_list = window.project_panel.slide_list
    item = slide_list.item(0)
    name = item.text().splitlines()[0]
    needed = slide_list.fontMetrics().horizontalAdvance(name) + slide_list.iconSize().width()
    assert slide_list.viewport().width() >= needed


def test_default_layout_fits_the_screen(window):
    window.use_default_layout()
    # offscreen has no real screen: the 1600 x 1000 default; a real screen bounds it
    # (tests/gui/test_real_display.py checks that under Xvfb at 1366 x 768)
    assert (window.width(), window.height()) == (1600, 1000)


def test_shortcuts_are_listed_in_the_view_menu_and_the_help_dialog(window, qtbot):
    rows = dict(window.shortcut_rows())
    assert {"Zoom in", "Zoom out", "Fit slide", "Pan left", "Next patch", "Minimap"} <= set(rows)
    assert "+" in rows["Zoom in"] and "N" in rows["Next patch"]
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    listed = {a.text().replace("&", "") for a in view_menu.actions()}
    assert {"Zoom in", "Zoom out", "Pan up", "Minimap", "Annotation outlines"} <= listed
    dialog = window.show_shortcuts()
    table = dialog.findChild(QTableWidget)
    assert table.rowCount() == len(rows)
    dialog.close()


def test_keys_work_once_the_pointer_is_over_the_slide(window, qtbot):
    viewer = window.viewer
    window.project_panel.slide_list.setFocus()
    assert not viewer.canvas.hasFocus()
    before = viewer.visible_l0_rect().width()
    centre = QPointF(viewer.canvas.width() / 2, viewer.canvas.height() / 2)
    QApplication.sendEvent(viewer.canvas, QEnterEvent(centre, centre, centre))
    assert viewer.canvas.hasFocus()
    qtbot.keyClick(viewer.canvas, Qt.Key.Key_Plus)
    assert viewer.visible_l0_rect().width() < before
    assert window.state.patch_id is None  # no click was needed, so nothing got selected


def test_every_control_of_the_overlay_and_training_panels_has_a_tooltip(window):
    controls = (QComboBox, QAbstractSpinBox, QAbstractSlider, QAbstractButton)
    for panel in (window.overlay_controls, window.training_panel):
        missing = [
            w.objectName() or type(w).__name__ + ":" + getattr(w, "text", lambda: "")()
            for w in panel.findChildren(QWidget)
            if isinstance(w, controls)
            and w.isVisibleTo(panel)
            and not w.toolTip()
            and not isinstance(w.parent(), QComboBox)
            and not isinstance(w, QScrollBar)
        ]
        assert missing == [], f"{type(panel).__name__}: {missing}"
