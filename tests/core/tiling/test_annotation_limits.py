"""Annotation limits: progress in-process and from the child process, the same result
either way, and the size limits named with the variable that raises them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cdfis_desktop.core.errors import AnnotationError
from cdfis_desktop.core.tiling import annotation_limits
from cdfis_desktop.core.tiling.annotations import load_annotations


def geojson(path: Path, rings: list[list[list[float]]]) -> Path:
    features = [
        {"type": "Feature", "properties": {"classification": {"name": "Tumor"}},
         "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}}
        for ring in rings
    ]  # fmt: skip
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def crossing_ring(seed: int, vertices: int) -> list[list[float]]:
    """A ring of random points: it crosses itself many times (needs repair)."""
    return np.random.default_rng(seed).uniform(0, 1000, (vertices, 2)).round(1).tolist()


def test_small_work_runs_here_and_reports_progress(tmp_path: Path) -> None:
    square = [[0, 0], [100, 0], [100, 100], [0, 100]]
    bow_tie = [[200, 200], [300, 300], [300, 200], [200, 300]]
    updates = []
    result = load_annotations(
        geojson(tmp_path / "a.geojson", [square, bow_tie]), progress=updates.append
    )
    assert [(u.done, u.total) for u in updates][-1] == (3, 3)
    assert result.polygon_count == 2 and any("repaired" in n for n in result.notes)


def test_large_work_runs_in_a_child_with_progress_and_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = geojson(tmp_path / "b.geojson", [crossing_ring(1, 70), crossing_ring(2, 8)])
    updates = []
    in_child = load_annotations(path, progress=updates.append)
    assert updates and updates[-1].done == updates[-1].total == 3
    assert "b.geojson" in updates[0].message
    monkeypatch.setattr(annotation_limits, "INLINE_REPAIR_WORK", 10**9)  # now in-process
    here = load_annotations(path)
    assert in_child.notes == here.notes and in_child.polygon_count == here.polygon_count
    assert in_child.geometries["Tumor"].equals(here.geometries["Tumor"])


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("CDFIS_ANNOTATION_MAX_VERTICES", "100", "more than 100 vertices"),
        ("CDFIS_ANNOTATION_MAX_BYTES", "1000", "more than the 1,000 bytes"),
        ("CDFIS_ANNOTATION_TIMEOUT_S", "soon", "is not a positive number"),
    ],
)
def test_limits_name_the_variable_that_raises_them(
    tmp_path, monkeypatch, variable, value, words
) -> None:
    path = geojson(tmp_path / "c.geojson", [crossing_ring(3, 120)])
    monkeypatch.setenv(variable, value)
    with pytest.raises(AnnotationError) as caught:
        load_annotations(path)
    assert variable in str(caught.value) and words in str(caught.value)
