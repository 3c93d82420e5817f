"""The heatmap as a pathologist reads it: per-metric colormap defaults, a range fixed over
the time slider, the legend, the value under the cursor, metrics a run did not record, and
the canvas explaining every empty view (engine-trained project with several slides)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QStandardItemModel

from cdfis_desktop.core.heatmap.metrics import METRICS
from cdfis_desktop.gui.main_window import MainWindow


@pytest.fixture
def window(window_on, multi_project):
    return window_on(multi_project.folder, size=(1400, 900))


@pytest.fixture
def change(window, settle):
    """``change(action)``: do it, then wait until the window has settled."""

    def run(action) -> None:
        action()
        settle(window)

    return run


def test_each_metric_starts_on_its_kind_of_colormap(window, qtbot, change):
    controls = window.overlay_controls
    for entry in METRICS:
        if entry.scored_by not in (None, "loss"):
            continue  # not recorded by this loss-scored run
        change(lambda key=entry.key: controls.select_metric(key))
        legend = window.viewer.hud.legend
        if entry.categorical:  # the classes, or the metric's own categories
            assert legend.categories == (entry.categories or ("Stroma", "Tumor"))
            assert not controls.colormap.isEnabled()
        elif entry.kind == "signed":
            assert legend.colormap == "RdBu_r" and legend.vmin == pytest.approx(-legend.vmax)
        else:  # counts and scores: sequential, never the previous metric's map
            assert legend.colormap == "viridis", entry.key


def test_the_range_stays_the_same_over_the_time_slider(window, qtbot, change):
    controls = window.overlay_controls
    change(lambda: controls.select_metric("mean_score"))
    ranges = []
    for position in (1, 2):
        change(lambda p=position: controls.epoch.setValue(p))
        legend = window.viewer.hud.legend
        assert legend.title.endswith(f"epoch {controls.selected_epoch()}")
        ranges.append((legend.vmin, legend.vmax))
    assert ranges[0] == ranges[1]
    change(
        lambda: controls.range_mode.setCurrentIndex(controls.range_mode.findData("view")),
    )
    fitted = window.viewer.hud.legend
    assert (fitted.vmin, fitted.vmax) != ranges[1]  # this epoch's values only


def test_value_under_the_cursor(window, qtbot):
    layer = window.overlay.layer
    values = layer.values
    row = int(np.flatnonzero(np.isfinite(values.value))[0])
    centre = QPointF(
        values.l0_x[row] + values.l0_size[row] / 2, values.l0_y[row] + values.l0_size[row] / 2
    )
    window.viewer.cursor_moved.emit(centre.x(), centre.y())
    text = window.viewer.hud.value_text
    assert text == f"Favoured / ignored vs uniform: {values.value[row]:+.3g} draws"
    window.viewer.cursor_moved.emit(-50.0, -50.0)  # off the slide
    assert window.viewer.hud.value_text == ""


def test_metrics_the_run_did_not_record_are_greyed_with_the_reason(window):
    model = window.overlay_controls.metric.model()
    assert isinstance(model, QStandardItemModel)
    rows = {entry.key: model.item(i) for i, entry in enumerate(METRICS)}
    assert not rows["gradnorm"].isEnabled()
    assert "scored patches by 'loss'" in rows["gradnorm"].toolTip()
    assert rows["loss"].isEnabled() and rows["loss"].text() == "Loss (= Mean score)"
    assert rows["mean_score"].isEnabled()
    for entry, item in zip(METRICS, (model.item(i) for i in range(len(METRICS))), strict=True):
        assert item.toolTip(), f"{entry.key} has no tooltip"


def test_validation_slide_explains_itself_and_offers_predictions(
    window, qtbot, multi_project, change
):
    change(lambda: window.state.set_slide(multi_project.validation))
    assert not window.overlay_shown()
    notice = window.viewer.notice_text()
    assert "is a validation slide" in notice and "Show the predictions" in notice
    change(lambda: window.viewer.notice_link_activated.emit("metric:prediction"))
    assert window.overlay_shown() and window.viewer.notice_text() == ""
    assert window.viewer.hud.legend.categories == ("Stroma", "Tumor")


def test_slide_imported_after_the_run_explains_itself(window, qtbot, multi_project, change):
    change(lambda: window.state.set_slide(multi_project.imported_later))
    assert "never drew from" in window.viewer.notice_text()


def test_a_metric_not_recorded_says_so_on_the_canvas(window, qtbot, change):
    change(lambda: window.overlay_controls.select_metric("gradnorm"))
    assert "did not record gradient norm" in window.viewer.notice_text()
    change(lambda: window.viewer.notice_link_activated.emit("metric:mean_score"))
    assert window.overlay_shown()


def test_no_project_and_no_run_are_explained(qtbot, tmp_path):
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    assert "No project open" in win.viewer.notice_text()
    assert win.open_project(tmp_path / "empty", create=True)
    assert "no slides yet" in win.viewer.notice_text()
    win.close()


def test_a_project_without_runs_says_to_train(window_on, synthetic_slide, tmp_path):
    from cdfis_desktop.core.slides import open_slide
    from cdfis_desktop.core.storage import Project

    with open_slide(synthetic_slide.slide_path) as slide, Project.create(tmp_path / "p") as project:
        width, height = slide.dimensions
        project.add_slide(
            synthetic_slide.slide_path,
            fingerprint=slide.fingerprint(),
            width=width,
            height=height,
            mpp=slide.mpp,
        )
    win = window_on(tmp_path / "p")
    assert "No training run yet" in win.viewer.notice_text()


def test_annotation_outlines_and_their_toggle(window, qtbot, multi_project):
    assert window.state.slide_id == multi_project.trained[0]  # the slide with annotations
    qtbot.waitUntil(lambda: window.viewer.annotation_classes() != [], timeout=10_000)
    assert window.viewer.annotation_classes() == ["Stroma", "Tumor"]
    assert window.viewer.annotations_visible()
    window.annotations_action.trigger()
    assert not window.viewer.annotations_visible()
    window.minimap_action.trigger()
    assert not window.viewer.minimap.isVisible()
    window.minimap_action.trigger()
    assert window.viewer.minimap.isVisible()
