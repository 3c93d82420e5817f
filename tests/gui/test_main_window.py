"""The main window on a real project (SQLite store, OpenSlide-read TIFF), offscreen."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from cdfis_desktop.core.heatmap import colormap_lut
from cdfis_desktop.core.storage import Project
from cdfis_desktop.gui.main_window import MainWindow
from cdfis_desktop.gui.qtimage import qimage_to_array


@pytest.fixture
def window(window_on, gui_project):
    win = window_on(gui_project.folder)
    assert win.overlay_shown()
    return win


def _change(win: MainWindow, qtbot, action) -> None:
    """Do ``action`` and wait until the overlay worker has rendered the result."""
    action()
    qtbot.waitUntil(lambda: not win.overlay_busy(), timeout=10_000)


def _overlay(win: MainWindow) -> np.ndarray:
    return np.array(win.viewer.overlay_item.image, copy=True)


def test_open_project_shows_slide_overlay_legend_and_plots(window, gui_project, screenshot_dir):
    assert window.state.slide_id == gui_project.slide_id
    assert window.state.run_id == gui_project.run_id
    # the default view answers "what did training favour or ignore?"
    legend = window.viewer.hud.legend
    assert legend is not None and legend.title == "Favoured / ignored vs uniform"
    assert legend.colormap == "RdBu_r" and legend.vmin == pytest.approx(-legend.vmax)
    assert "ignored" in window.viewer.hud.legend_caption
    assert window.viewer.hud.legend_title() == "Favoured / ignored vs uniform (draws)"
    # the sampler of the test run favoured the right half: more chosen there
    rgba = _overlay(window)
    assert rgba.shape[2] == 4 and rgba[..., 3].max() == 255
    # validations before training and after each of the 3 epochs
    assert window.training_panel.plots.series["val_acc"].size == 4
    # the reopened run's share of patches ever chosen: one point per epoch, never falling
    share = window.training_panel.plots.series["share"]
    assert share.size == 3 and np.all(np.diff(share.y) >= 0) and 0 < share.y[-1] <= 1
    assert window.project_panel.slide_list.item(0).icon().isNull() is False
    assert str(gui_project.folder.resolve()) in window.recent_projects()
    window.grab().save(str(screenshot_dir / "main_window.png"))


def test_switching_metric_and_colormap_redraws_the_overlay(window, qtbot):
    controls = window.overlay_controls
    favour = window.viewer.hud.legend
    _change(window, qtbot, lambda: controls.select_metric("times_chosen"))
    before = window.viewer.hud.legend
    assert before.title == "Times chosen" and before.colormap == "viridis"  # a count
    # favour = times chosen - expected under uniform: same map, range shifted below 0
    assert favour.vmin < 0 < favour.vmax and favour.vmin < before.vmin
    _change(
        window,
        qtbot,
        lambda: controls.colormap.setCurrentIndex(controls.colormap.findData("inferno")),
    )
    assert np.array_equal(window.viewer.hud.legend.lut, colormap_lut("inferno"))
    # each metric keeps its own colormap: favour is still diverging, times chosen inferno
    _change(window, qtbot, lambda: controls.select_metric("favour"))
    assert window.viewer.hud.legend.colormap == "RdBu_r"
    _change(window, qtbot, lambda: controls.select_metric("times_chosen"))
    assert window.viewer.hud.legend.colormap == "inferno"
    _change(
        window, qtbot, lambda: controls.metric.setCurrentIndex(controls.metric.findData("label"))
    )
    assert window.viewer.hud.legend.categories == ("Stroma", "Tumor")
    # a metric the run did not score by is refused with a message, not a crash
    _change(
        window, qtbot, lambda: controls.metric.setCurrentIndex(controls.metric.findData("gradnorm"))
    )
    assert not window.overlay_shown()
    assert "did not record gradient norm" in window.viewer.notice_text()


def test_manual_range_and_opacity(window, qtbot):
    controls = window.overlay_controls
    controls.range_mode.setCurrentIndex(controls.range_mode.findData("manual"))
    _change(window, qtbot, lambda: controls.range_low.setValue(0.0))
    _change(window, qtbot, lambda: controls.range_high.setValue(1.0))
    legend = window.viewer.hud.legend
    assert (legend.vmin, legend.vmax) == (0.0, 1.0)
    controls.opacity.setValue(80)
    assert window.viewer.overlay_item.opacity() == pytest.approx(0.8)


def test_time_slider_replays_epochs_and_difference_view(window, qtbot, gui_project):
    controls = window.overlay_controls
    assert controls.epoch.maximum() == 3  # "all" + epochs 0..2
    cumulative = _overlay(window)
    _change(window, qtbot, lambda: controls.epoch.setValue(1))
    assert controls.selected_epoch() == 0
    assert window.viewer.hud.legend.title.endswith("epoch 0")
    assert not np.array_equal(cumulative, _overlay(window))
    _change(
        window,
        qtbot,
        lambda: controls.compare_epoch.setCurrentIndex(controls.compare_epoch.findData(2)),
    )
    _change(
        window, qtbot, lambda: controls.compare.setCurrentIndex(controls.compare.findData("epoch"))
    )
    legend = window.viewer.hud.legend
    assert legend.vmin == pytest.approx(-legend.vmax)  # diverging, centred on 0
    assert np.array_equal(legend.lut, colormap_lut("RdBu_r"))
    controls.play.setChecked(True)  # replay walks the slider to the last epoch
    qtbot.waitUntil(lambda: not controls.play.isChecked(), timeout=30_000)
    qtbot.waitUntil(lambda: not window.overlay_busy(), timeout=10_000)
    assert window.viewer.hud.legend.title.endswith("epoch 2 − epoch 2")
    assert controls.selected_epoch() == 2


def test_click_on_slide_shows_patch_details_and_history(window, qtbot, gui_project, screenshot_dir):
    index = int(np.flatnonzero((gui_project.l0_x == 1280) & (gui_project.l0_y == 512))[0])
    patch_id = int(gui_project.patch_ids[index])
    window.viewer.centre_on(1344, 576, l0_width=1024)
    qtbot.waitUntil(window.viewer.is_settled, timeout=8000)
    target = window.viewer.canvas.mapFromScene(
        window.viewer.view_box.mapViewToScene(QPointF(1344, 576))
    )
    qtbot.mouseClick(window.viewer.canvas.viewport(), Qt.MouseButton.LeftButton, pos=target)
    assert window.patch_details.patch_id == patch_id
    rect = window.viewer.highlighted_rect()
    assert (rect.x(), rect.y(), rect.width()) == (1280, 512, 128)
    assert "Tumor" in window.patch_details.text.text()
    history = Project.open(gui_project.folder)
    try:
        expected = history.patch_history(gui_project.run_id, patch_id)
    finally:
        history.close()
    x, _ = window.patch_details._score_curve.getData()
    assert np.array_equal(x, expected.step.astype(float))
    qtbot.waitUntil(
        lambda: (
            window.patch_details.thumbnail.pixmap() is not None
            and not window.patch_details.thumbnail.pixmap().isNull()
        ),
        timeout=5000,
    )
    window.grab().save(str(screenshot_dir / "patch_details.png"))


def test_gallery_click_moves_the_viewer_to_the_patch(window, qtbot, screenshot_dir):
    window.bottom_tabs.setCurrentWidget(window.gallery)
    grid = window.gallery.favoured
    assert grid.count() > 0
    item = grid.item(2)
    stat = item.data(Qt.ItemDataRole.UserRole + 1)
    assert stat.favour >= grid.item(grid.count() - 1).data(Qt.ItemDataRole.UserRole + 1).favour
    qtbot.mouseClick(
        grid.viewport(), Qt.MouseButton.LeftButton, pos=grid.visualItemRect(item).center()
    )
    centre = window.viewer.visible_l0_rect().center()
    assert centre.x() == pytest.approx(stat.l0_x + stat.l0_size / 2, abs=2)
    assert centre.y() == pytest.approx(stat.l0_y + stat.l0_size / 2, abs=2)
    assert window.viewer.highlighted_rect().x() == stat.l0_x
    assert window.patch_details.patch_id == stat.patch_id
    window.patches.step(1)  # N / PageDown
    assert window.patch_details.patch_id == grid.item(3).data(Qt.ItemDataRole.UserRole + 1).patch_id
    n_items = grid.count() + window.gallery.ignored.count()
    qtbot.waitUntil(lambda: window.gallery.thumbnails_shown >= n_items, timeout=10_000)
    qtbot.waitUntil(window.viewer.is_settled, timeout=8000)
    window.grab().save(str(screenshot_dir / "patch_browser.png"))
    ignored = window.gallery.ignored.item(0).data(Qt.ItemDataRole.UserRole + 1)
    assert ignored.favour <= stat.favour


def test_gallery_filters_by_label(window, qtbot):
    gallery = window.gallery
    gallery.label_filter.setCurrentIndex(gallery.label_filter.findData(0))
    stats = gallery.all_stats()
    assert stats and all(s.label == 0 for s in stats)


def test_opening_a_folder_that_is_no_project_shows_an_error(qtbot, tmp_path):
    win = MainWindow()
    qtbot.addWidget(win)
    assert not win.open_project(tmp_path / "missing")
    assert "missing" in win.errors.shown[-1].message
    assert win.errors.shown[-1].user_error
    win.close()


def test_layout_and_overlay_settings_are_remembered(qtbot, gui_project):
    first = MainWindow()
    qtbot.addWidget(first)
    first.overlay_controls.colormap.setCurrentIndex(first.overlay_controls.colormap.findData("jet"))
    first.overlay_controls.opacity.setValue(30)
    first.open_project(gui_project.folder)
    qtbot.waitUntil(lambda: not first.jobs_running(), timeout=10_000)
    first.close()
    second = MainWindow()
    qtbot.addWidget(second)
    assert second.overlay_controls.colormap.currentData() == "jet"
    assert second.overlay_controls.opacity.value() == 30
    assert second.recent_projects()[0] == str(gui_project.folder.resolve())
    second.close()


def test_exports_csv_in_a_worker(window, qtbot, tmp_path):
    from cdfis_desktop.gui.exports import start_export

    target = tmp_path / "run.csv"
    worker = start_export(window, "csv", target)
    with qtbot.waitSignal(worker.finished, timeout=20_000):
        pass
    qtbot.waitUntil(lambda: not window.jobs_running(), timeout=5000)
    lines = target.read_text().splitlines()
    assert len(lines) == 1 + len(window.patches.patches)


def test_viewer_shows_what_was_drawn(window):
    shot = qimage_to_array(window.viewer.grab().toImage())
    # neither blank nor one colour: slide pixels and overlay are on screen
    assert shot[..., :3].std() > 20
