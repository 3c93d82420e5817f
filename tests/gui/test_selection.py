"""One selection: the slide list, the viewer, the patch details, the galleries and the exports
name the same slide and patch after a gallery click, N / P, or a slide switch (real
project trained by the engine on several slides, real widgets, offscreen)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer

from cdfis_desktop.gui import patch_controller
from cdfis_desktop.gui.main_window import MainWindow

_ROLE = Qt.ItemDataRole.UserRole + 1


@pytest.fixture
def window(window_on, multi_project):
    return window_on(multi_project.folder)


def _listed_slide(win: MainWindow) -> int:
    return win.project_panel.slide_list.currentItem().data(_ROLE)


def _assert_agree(qtbot, win: MainWindow, slide_id: int, patch_id: int | None) -> None:
    """Once the slide's patch table is read (off the GUI thread), every view of the
    selection names ``slide_id`` / ``patch_id``."""
    qtbot.waitUntil(lambda: not win.patches.busy(), timeout=10_000)
    state = win.state
    assert state.slide_id == slide_id
    assert _listed_slide(win) == slide_id
    assert win.viewer.slide is not None and win.viewer.slide.path == state.slide.file
    assert win.patches.patches is not None and set(win.patches.patches.slide_id) == {slide_id}
    assert win.patch_details.patch_id == patch_id
    if patch_id is None:
        assert win.viewer.highlighted_rect() is None
        assert "Click a patch" in win.patch_details.text.text()
    else:
        assert state.patch_id == patch_id
        assert f"Patch {patch_id}</b> on {state.slide.name}" in win.patch_details.text.text()
        assert win.viewer.highlighted_rect() is not None


def _gallery_stat_on(win: MainWindow, slide_id: int, other_than: int | None = None):
    stats = win.gallery.all_stats()
    return next(s for s in stats if s.slide_id == slide_id and s.patch_id != other_than)


def test_gallery_click_on_another_slide_moves_every_view(window, qtbot, multi_project):
    first, second = multi_project.trained
    assert window.state.slide_id == first
    stat = _gallery_stat_on(window, second)
    grid = window.gallery.favoured if stat.favour >= 0 else window.gallery.ignored
    row = next(r for r in range(grid.count()) if grid.item(r).data(_ROLE) == stat)
    window.bottom_tabs.setCurrentWidget(window.gallery)
    qtbot.mouseClick(
        grid.viewport(),
        Qt.MouseButton.LeftButton,
        pos=grid.visualItemRect(grid.item(row)).center(),
    )
    _assert_agree(qtbot, window, second, stat.patch_id)
    centre = window.viewer.visible_l0_rect().center()
    assert centre.x() == pytest.approx(stat.l0_x + stat.l0_size / 2, abs=2)


def test_next_and_previous_follow_the_gallery_across_slides(window, qtbot):
    stats = window.gallery.all_stats()
    assert len({s.slide_id for s in stats}) == 2  # the galleries span both trained slides
    for expected in stats[:6]:
        window.patches.step(1)  # N
        _assert_agree(qtbot, window, expected.slide_id, expected.patch_id)
    window.patches.step(-1)  # P
    _assert_agree(qtbot, window, stats[4].slide_id, stats[4].patch_id)


def test_switching_the_slide_clears_the_patch(window, qtbot, settle, multi_project):
    first, second = multi_project.trained
    stat = _gallery_stat_on(window, first)
    window.patches.go_to(stat)
    _assert_agree(qtbot, window, first, stat.patch_id)
    window.project_panel.slide_list.setCurrentRow(
        next(
            r
            for r in range(window.project_panel.slide_list.count())
            if window.project_panel.slide_list.item(r).data(_ROLE) == second
        )
    )
    settle(window)
    _assert_agree(qtbot, window, second, None)


def test_png_export_writes_the_slide_the_viewer_shows(
    window, qtbot, settle, multi_project, tmp_path
):
    from cdfis_desktop.core.heatmap.overlay import OverlayRequest, render_overlay
    from cdfis_desktop.gui.exports import export_downsample, start_export

    _, second = multi_project.trained
    window.patches.go_to(_gallery_stat_on(window, second))  # as a gallery click would
    settle(window)
    worker = start_export(window, "png", tmp_path / "pngs")
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: not window.jobs_running(), timeout=5000)
    assert len(window.last_export) == 3
    exported = _overlay_png(window.last_export)
    # the overlay service's layer for each trained slide: only the second one matches
    choice = window.overlay.request_state()
    expected = {}
    for slide_id in multi_project.trained:
        slide = next(s for s in window.state.slides if s.id == slide_id)
        request = OverlayRequest(
            slide,
            window.state.run_id,
            choice.metric,
            colormap=choice.colormap,
            opacity=choice.opacity,
            downsample=export_downsample(slide),
        )
        expected[slide_id] = render_overlay(window.state.project, request).rgba
    assert not np.array_equal(expected[multi_project.trained[0]], expected[second])
    assert np.array_equal(exported, expected[second])


def _overlay_png(paths) -> np.ndarray:
    from matplotlib.image import imread

    (overlay,) = [p for p in paths if p.name.endswith("-overlay.png")]
    return np.round(imread(overlay) * 255).astype(np.uint8)


def test_patch_tables_and_galleries_load_while_the_event_loop_runs(
    qtbot, monkeypatch, multi_project
):
    """The slide's patch table and the galleries are read in loader threads: while those
    reads are held back, the GUI thread keeps turning (timer ticks), the slide and its
    placeholders are shown, and of two slide switches only the newest table is kept."""
    gate = threading.Event()
    read_table, read_gallery = patch_controller._read_table, patch_controller._read_gallery
    monkeypatch.setattr(patch_controller, "_read_table", lambda r: gate.wait(60) and read_table(r))
    monkeypatch.setattr(
        patch_controller, "_read_gallery", lambda r: gate.wait(60) and read_gallery(r)
    )
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    ticks = []
    timer = QTimer(win)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(0)
    try:
        assert win.open_project(multi_project.folder)
        first, second = multi_project.trained
        qtbot.waitUntil(lambda: len(ticks) >= 50, timeout=10_000)
        assert win.patches.busy() and win.patches.patches is None
        assert win.gallery.is_loading() and not win.gallery.all_stats()
        assert win.viewer.slide is not None and win.state.slide_id == first
        win.state.set_slide(second)  # the first slide's table is still being read
        before = len(ticks)
        qtbot.waitUntil(lambda: len(ticks) >= before + 50, timeout=10_000)
    finally:
        gate.set()
    qtbot.waitUntil(lambda: not win.jobs_running(), timeout=15_000)
    assert set(win.patches.patches.slide_id) == {second}
    assert win.gallery.all_stats() and not win.gallery.is_loading()
    win.close()
