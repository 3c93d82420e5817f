"""The Qt-free state model: coherent selection rules and change events."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from cdfis_desktop.gui.state import AppState


def _slides(*ids: int) -> list[SimpleNamespace]:
    return [SimpleNamespace(id=i, name=f"s{i}") for i in ids]


def _runs(*ids: int) -> list[SimpleNamespace]:
    return [SimpleNamespace(id=i, status="finished") for i in ids]


@pytest.fixture
def state() -> tuple[AppState, list[tuple[str, object]]]:
    model = AppState()
    seen: list[tuple[str, object]] = []
    for name in ("project", "slide", "run", "epoch", "patch"):
        getattr(model.events, name).connect(lambda value, n=name: seen.append((n, value)))
    return model, seen


def test_a_project_selects_its_first_slide_and_newest_run(state) -> None:
    model, seen = state
    project = object()
    model.set_project(project, _slides(4, 5), _runs(9, 7))
    assert (model.slide_id, model.run_id, model.patch_id, model.epoch) == (4, 9, None, None)
    assert seen == [("project", project), ("slide", 4), ("run", 9)]


def test_a_patch_on_another_slide_switches_the_slide_first(state) -> None:
    model, seen = state
    model.set_project(object(), _slides(4, 5), _runs(9))
    model.select_patch(11)
    seen.clear()
    model.select_patch(30, slide_id=5)
    assert (model.slide_id, model.patch_id) == (5, 30)
    assert seen == [("patch", None), ("slide", 5), ("patch", 30)]
    model.set_slide(4)  # a new slide clears the patch
    assert model.patch_id is None


def test_events_fire_only_on_change_and_runs_reset_the_epoch(state) -> None:
    model, seen = state
    model.set_project(object(), _slides(4), _runs(9, 7))
    model.set_epoch(2)
    seen.clear()
    model.set_epoch(2)
    model.set_slide(4)
    assert seen == []
    model.set_run(7)
    assert model.epoch is None and seen == [("epoch", None), ("run", 7)]


def test_catalogue_changes_keep_a_selection_that_still_exists(state) -> None:
    model, _ = state
    model.set_project(object(), _slides(4, 5), _runs(9, 7))
    model.set_slide(5)
    model.set_slides(_slides(4, 5, 6))
    assert model.slide_id == 5
    model.set_slides(_slides(6))
    assert model.slide_id == 6
    model.set_runs(_runs(10, 9, 7), select=10)
    assert model.run_id == 10
    model.set_runs(_runs(9, 7))
    assert model.run_id == 9
    with pytest.raises(ValueError, match="not in the project"):
        model.set_slide(99)


def test_closing_the_project_clears_everything(state) -> None:
    model, _ = state
    model.set_project(object(), _slides(4), _runs(9))
    model.select_patch(3)
    model.set_project(None)
    assert (model.project, model.slide_id, model.run_id, model.patch_id) == (None, None, None, None)


def test_the_state_module_imports_without_qt() -> None:
    code = (
        "import sys\n"
        "import cdfis_desktop.gui.state\n"
        "print([m for m in sys.modules if m.startswith(('PySide6', 'shiboken6', 'pyqtgraph'))])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr
