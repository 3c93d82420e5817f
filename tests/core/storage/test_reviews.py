"""Review decisions: non-destructive overrides with who/when/why, in force by time, undo."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cdfis_desktop.core.errors import ReviewError
from cdfis_desktop.core.storage import Project, ReviewInput


def _in_force(project: Project, t: float) -> dict[int, tuple[str, int]]:
    table = project.review_decisions(in_force_at=t)
    return {
        int(p): (str(a), int(lab))
        for p, a, lab in zip(table.patch_id, table.action, table.label, strict=True)
    }


def test_decisions_are_kept_with_who_when_why_and_the_original_label(
    project: Project, slide_patches
) -> None:
    _, ids = slide_patches
    a, b, c = (int(i) for i in ids[:3])  # labels 0, 1, 0
    written = project.add_review_decisions(
        [
            ReviewInput(a, "relabel", "ana", label=1, reason="looks tumour", run_id=None),
            ReviewInput(b, "exclude", "ben", reason="pen"),
            ReviewInput(c, "confirm", "ana"),
        ],
        now=100.0,
    )
    assert len(written) == 3
    table = project.review_decisions()
    assert table.patch_id.tolist() == [a, b, c]
    assert table.action.tolist() == ["relabel", "exclude", "confirm"]
    assert table.label.tolist() == [1, -1, 0] and table.original_label.tolist() == [0, 1, 0]
    assert table.reviewer.tolist() == ["ana", "ben", "ana"]
    assert table.reason.tolist() == ["looks tumour", "pen", ""]
    assert table.decided_at.tolist() == [100.0] * 3 and np.isnan(table.undone_at).all()
    assert project.patches().label[:3].tolist() == [0, 1, 0]  # never changed


def test_in_force_follows_time_undo_and_ignores_skips(project: Project, slide_patches) -> None:
    _, ids = slide_patches
    a = int(ids[0])
    project.add_review_decisions([ReviewInput(a, "relabel", "ana", label=1)], now=100.0)
    project.add_review_decisions([ReviewInput(a, "exclude", "ana", reason="blur")], now=200.0)
    project.add_review_decisions([ReviewInput(a, "skip", "ben")], now=250.0)
    assert _in_force(project, 50.0) == {}
    assert _in_force(project, 150.0) == {a: ("relabel", 1)}
    assert _in_force(project, 260.0) == {a: ("exclude", -1)}
    undone = project.add_review_decisions([ReviewInput(a, "undo", "ana")], now=300.0)
    table = project.review_decisions()
    assert table.action[table.id == undone[0]].tolist() == ["skip"]  # the latest one
    project.add_review_decisions([ReviewInput(a, "undo", "ana")], now=310.0)
    assert _in_force(project, 260.0) == {a: ("exclude", -1)}  # as it was then
    assert _in_force(project, math.inf) == {a: ("relabel", 1)}
    project.add_review_decisions([ReviewInput(a, "undo", "ana")], now=320.0)
    assert _in_force(project, math.inf) == {}
    assert len(project.review_decisions()) == 3  # nothing deleted


@pytest.mark.parametrize(
    ("decision", "message"),
    [
        (ReviewInput(10_000, "confirm", "ana"), "no such patch"),
        (ReviewInput(1, "delete", "ana"), "unknown decision"),
        (ReviewInput(1, "relabel", "ana"), "needs a new label"),
        (ReviewInput(1, "relabel", "ana", label=7), "needs a new label"),
        (ReviewInput(1, "relabel", "ana", label=0), "use confirm"),
        (ReviewInput(1, "exclude", "ana", reason="dust"), "needs a reason"),
        (ReviewInput(1, "confirm", " "), "no reviewer"),
        (ReviewInput(1, "undo", "ana"), "nothing to undo"),
    ],
)
def test_a_bad_decision_stores_none_of_its_batch(
    project: Project, slide_patches, decision: ReviewInput, message: str
) -> None:
    _, ids = slide_patches
    assert int(ids[0]) == 1
    good = ReviewInput(int(ids[1]), "confirm", "ana")
    with pytest.raises(ReviewError, match=message) as info:
        project.add_review_decisions([good, decision])
    assert "decision 2" in str(info.value)
    assert len(project.review_decisions()) == 0


def test_deleting_a_slide_deletes_its_decisions(project: Project, slide_patches) -> None:
    slide_id, ids = slide_patches
    project.add_review_decisions([ReviewInput(int(ids[0]), "confirm", "ana")])
    project.delete_slide(slide_id)
    assert len(project.review_decisions()) == 0
