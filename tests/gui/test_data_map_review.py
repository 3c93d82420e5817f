"""The data map and the review queue in the main window, with real widgets on a real
engine-trained project: scatter <-> slide <-> gallery linking and keyboard triage."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import Qt

from cdfis_desktop.core.storage import Project
from cdfis_desktop.gui.main_window import MainWindow


@pytest.fixture
def window(window_on, gui_project, qtbot):
    win = window_on(gui_project.folder)
    qtbot.waitUntil(lambda: win.review.data_map_view.ids.size > 0, timeout=20_000)
    return win


def _centre(win: MainWindow, patch_id: int) -> tuple[float, float]:
    table = win.patches.patches
    row = int(np.flatnonzero(table.id == patch_id)[0])
    size = float(table.l0_size[row])
    return float(table.l0_x[row]) + size / 2, float(table.l0_y[row]) + size / 2


def test_scatter_selection_outlines_patches_on_the_slide(window, gui_project, screenshot_dir):
    view = window.review.data_map_view
    trained = set(view.ids.tolist())
    assert trained and trained <= set(gui_project.patch_ids.tolist())
    selected = view.select_in(-1.0, -1.0, 2.0, 2.0)  # everything
    assert set(selected.tolist()) == trained
    assert window.review.slide_selection.count == len(trained)
    high = view.select_in(-1.0, 0.9, 2.0, 2.0)  # confident patches only
    confident = {i for i, y in zip(view.ids.tolist(), view._y.tolist(), strict=True) if y >= 0.9}
    assert set(high.tolist()) == confident
    assert window.review.slide_selection.count == len(confident)
    window.bottom_tabs.setCurrentWidget(view)
    window.grab().save(str(screenshot_dir / "data_map.png"))


def test_one_point_goes_to_its_patch_and_slide_clicks_mark_the_scatter(window, qtbot):
    view = window.review.data_map_view
    patch_id = int(view.ids[len(view.ids) // 2])
    view._select(np.array([patch_id]))  # what a click on the point emits
    rect = window.viewer.highlighted_rect()
    x, y = _centre(window, patch_id)
    assert rect is not None and rect.contains(x, y)
    assert window.patch_details.patch_id == patch_id
    other = int(view.ids[0])
    window.viewer.position_clicked.emit(*_centre(window, other))
    k = int(np.flatnonzero(view.ids == other)[0])
    assert view.marked() == pytest.approx((view._x[k], view._y[k]))


def test_gallery_activation_marks_the_scatter(window, qtbot):
    qtbot.waitUntil(lambda: bool(window.gallery.all_stats()), timeout=10_000)
    view = window.review.data_map_view
    stat = next(s for s in window.gallery.all_stats() if s.patch_id in set(view.ids.tolist()))
    window.gallery.patch_activated.emit(stat)
    k = int(np.flatnonzero(view.ids == stat.patch_id)[0])
    assert view.marked() == pytest.approx((view._x[k], view._y[k]))


def test_the_order_box_rebuilds_the_queue_in_the_chosen_ranking(window, qtbot):
    panel = window.review.review_panel
    assert panel.queue is not None and panel.queue.ranking == "aum"
    aum = [e.scores["aum"] for e in panel.queue.entries]
    assert aum == sorted(aum)
    panel.order.setCurrentIndex(panel.order.findData("final_loss"))  # what a pick emits
    qtbot.waitUntil(lambda: panel.queue.ranking == "final_loss", timeout=20_000)
    losses = [e.scores["final_loss"] for e in panel.queue.entries]
    assert losses == sorted(losses, reverse=True) and losses != sorted(losses)
    assert panel.index == 0 and panel.entry is panel.queue.entries[0]


def test_keyboard_triage_stores_decisions_and_follows_on_the_slide(
    window, qtbot, gui_project, screenshot_dir
):
    panel = window.review.review_panel
    queue = panel.queue
    assert queue is not None and panel.index == 0 and queue.entries[0].rank == 1
    qtbot.waitUntil(panel.context_shown, timeout=10_000)
    first, second, third = (e.patch_id for e in queue.entries[:3])
    assert window.state.patch_id != first  # loading the queue changed no selection
    panel.setFocus()
    qtbot.keyClick(panel, Qt.Key.Key_Right)
    qtbot.keyClick(panel, Qt.Key.Key_Left)
    x, y = _centre(window, first)
    assert window.state.patch_id == first  # moving in the queue drives the slide
    assert window.viewer.highlighted_rect().contains(x, y)
    window.bottom_tabs.setCurrentWidget(panel)
    window.grab().save(str(screenshot_dir / "review_queue.png"))
    qtbot.keyClick(panel, Qt.Key.Key_C)
    assert panel.index == 1 and panel.entry.patch_id == second
    qtbot.keyClick(panel, Qt.Key.Key_R)
    qtbot.keyClick(panel, Qt.Key.Key_P)
    assert panel.index == 3
    qtbot.keyClick(panel, Qt.Key.Key_Left)
    qtbot.keyClick(panel, Qt.Key.Key_U)  # takes the pen exclusion of the third back
    assert panel.entry.patch_id == third and panel.entry.decision == ""
    with Project.open(gui_project.folder) as project:
        every = project.review_decisions()
        in_force = project.review_decisions(in_force_at=math.inf)
        labels = dict(
            zip(project.patches().id.tolist(), project.patches().label.tolist(), strict=True)
        )
    assert every.action.tolist() == ["confirm", "relabel", "exclude"]
    assert every.reason.tolist()[2] == "pen" and not np.isnan(every.undone_at[2])
    assert dict(zip(in_force.patch_id.tolist(), in_force.action.tolist(), strict=True)) == {
        first: "confirm",
        second: "relabel",
    }
    assert in_force.label[in_force.patch_id == second][0] == 1 - labels[second]
    assert set(every.run_id.tolist()) == {gui_project.run_id}


def test_a_refused_decision_shows_a_dialog(window, qtbot):
    panel = window.review.review_panel
    qtbot.keyClick(panel, Qt.Key.Key_U)  # nothing to undo on a fresh patch
    assert window.errors.shown and "nothing to undo" in window.errors.shown[-1].message
    assert panel.index == 0 and window.errors.shown[-1].user_error
    window.errors.close_all()


def test_the_neighbourhood_view_draws_the_annotation_outlines(window, qtbot):
    """The queue's context image shows the slide's annotation outlines (class colours)
    once the slide controller has read them; the slide follows the queue."""
    panel = window.review.review_panel
    qtbot.waitUntil(panel.context_shown, timeout=10_000)
    entry = panel.entry  # the first entry, shown without moving the slide
    qtbot.waitUntil(lambda: bool(panel._outlines.get(entry.slide_id)), timeout=10_000)
    qtbot.waitUntil(panel.context_shown, timeout=10_000)
    outlined = panel.context_image.pixmap().toImage()
    panel.set_outlines(entry.slide_id, [])
    plain = panel.context_image.pixmap().toImage()
    assert outlined.size() == plain.size()
    a = np.array([[outlined.pixel(x, y) for x in range(0, 240, 2)] for y in range(0, 240, 2)])
    b = np.array([[plain.pixel(x, y) for x in range(0, 240, 2)] for y in range(0, 240, 2)])
    assert (a != b).sum() > 10  # the outlines cross the 5-patch neighbourhood


def test_outlines_of_a_slide_not_shown_are_read_on_request(window_on, multi_project, qtbot):
    """The review queue's entry may lie on another slide than the viewer's: that slide's
    outlines are read on request, without moving the viewer."""
    win = window_on(multi_project.folder)
    annotated = multi_project.trained[0]
    win.state.set_slide(multi_project.imported_later)
    answers: dict[int, list] = {}
    win.slides.outlines_shown.connect(
        lambda slide_id, outlines: answers.update({slide_id: outlines})
    )
    win.slides.request_outlines(annotated)
    qtbot.waitUntil(lambda: bool(answers.get(annotated)), timeout=10_000)
    assert "Tumor" in {name for name, _path, _color in answers[annotated]}
    assert win.state.slide_id == multi_project.imported_later  # the viewer did not move


def test_a_real_click_on_a_point_selects_its_patch(window, qtbot):
    from PySide6.QtCore import QPointF

    view = window.review.data_map_view
    window.bottom_tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.plot.isVisible(), timeout=5000)
    k = len(view.ids) // 3
    box = view.plot.getPlotItem().getViewBox()
    scene = box.mapViewToScene(QPointF(view._x[k], view._y[k]))
    where = view.plot.mapFromScene(scene)
    with qtbot.waitSignal(view.patches_selected, timeout=5000) as blocker:
        qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=where)
    (ids,) = blocker.args
    assert ids.size == 1
    j = int(np.flatnonzero(view.ids == ids[0])[0])  # the clicked point, or one under it
    assert abs(view._x[j] - view._x[k]) < 0.02 and abs(view._y[j] - view._y[k]) < 0.05


def test_the_hidden_data_map_hands_its_points_over_when_first_shown(window, qtbot):
    view = window.review.data_map_view

    def drawn() -> int:
        return sum(len(item.getData()[0]) for item in view.scatters.values())

    if view.isVisible():
        window.bottom_tabs.setCurrentIndex(0)
    view.set_data_map(window.review.review_panel.queue.data_map)  # a map arrives, tab hidden
    assert not view.isVisible() and drawn() == 0 and view.ids.size > 0
    window.bottom_tabs.setCurrentWidget(view)
    qtbot.waitUntil(view.isVisible, timeout=5000)
    assert drawn() == view.ids.size
