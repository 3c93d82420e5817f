"""Patch labels by polygon coverage, class maps, and patch CSV tables (with bad input)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely

from cdfis_desktop.core.errors import LabelsError
from cdfis_desktop.core.tiling.labels import (
    EXCLUDED,
    UNLABELLED,
    class_geometries_by_value,
    class_names_for,
    default_class_map,
    label_patches,
    parse_class_map,
    polygon_pieces,
    read_patch_table,
)


def test_coverage_threshold_exclusion_and_unlabelled() -> None:
    tumor = shapely.box(0, 0, 150, 100)  # covers patch 0 fully, patch 1 half
    normal = shapely.box(200, 0, 300, 100)  # covers patch 2 fully
    exclude = shapely.box(0, 0, 100, 100)  # on top of patch 0
    l0_x = np.array([0, 100, 200, 400])
    l0_y = np.zeros(4)
    labels = label_patches(l0_x, l0_y, 100, {1: tumor, 0: normal}, min_coverage=0.5)
    assert labels.label.tolist() == [1, 1, 0, UNLABELLED]
    assert labels.coverage.tolist() == pytest.approx([1.0, 0.5, 1.0, 0.0])
    stricter = label_patches(l0_x, l0_y, 100, {1: tumor, 0: normal}, min_coverage=0.6)
    assert stricter.label.tolist() == [1, UNLABELLED, 0, UNLABELLED]
    excluded = label_patches(
        l0_x, l0_y, 100, {1: tumor, 0: normal, EXCLUDED: exclude}, min_coverage=0.5
    )
    assert excluded.label.tolist() == [EXCLUDED, 1, 0, UNLABELLED]
    assert excluded.keep.tolist() == [False, True, True, True]


def test_vectorised_coverage_matches_a_plain_loop() -> None:
    rng = np.random.default_rng(7)
    blobs = [shapely.Point(rng.uniform(0, 2000, 2)).buffer(rng.uniform(50, 300)) for _ in range(12)]
    geometries = {
        0: shapely.union_all(blobs[:6]),
        1: shapely.union_all(blobs[6:]).difference(shapely.union_all(blobs[:6])),
    }
    l0_x = rng.uniform(0, 2000, 400)
    l0_y = rng.uniform(0, 2000, 400)
    sizes = rng.uniform(20, 120, 400)
    labels = label_patches(l0_x, l0_y, sizes, geometries, min_coverage=0.3)
    for i in range(400):
        box = shapely.box(l0_x[i], l0_y[i], l0_x[i] + sizes[i], l0_y[i] + sizes[i])
        cover = [box.intersection(geometries[v]).area / box.area for v in (0, 1)]
        best = int(np.argmax(cover))
        expected = best if cover[best] >= 0.3 else UNLABELLED
        assert labels.label[i] == expected
        assert labels.coverage[i] == pytest.approx(cover[best], abs=1e-5)


def _wiggly_outline(n: int = 6000, seed: int = 3) -> shapely.Polygon:
    """A tumour-like outline: ``n`` vertices around a wavy circle, with two holes."""
    rng = np.random.default_rng(seed)
    angle = np.linspace(0, 2 * np.pi, n, endpoint=False)
    radius = 1000 + 80 * np.sin(37 * angle) + rng.uniform(-4, 4, n)
    shell = np.c_[1500 + radius * np.cos(angle), 1500 + radius * np.sin(angle)]
    holes = [shapely.Point(cx, 1500).buffer(150, 64).exterior.coords for cx in (1200, 1800)]
    return shapely.Polygon(shell, holes)


def test_big_outlines_are_cut_into_pieces_that_tile_them() -> None:
    outline = _wiggly_outline()
    pieces = polygon_pieces(outline, max_vertices=64)
    assert len(pieces) > 100
    assert all(shapely.get_num_coordinates(p) <= 64 for p in pieces)
    assert sum(p.area for p in pieces) == pytest.approx(outline.area, rel=1e-9)  # no overlap
    assert shapely.union_all(pieces).symmetric_difference(outline).area < 1e-6 * outline.area
    # a sub-pixel shape with many vertices is kept whole instead of being cut forever
    tiny = shapely.Point(5, 5).buffer(0.3, 500)
    assert polygon_pieces(tiny, max_vertices=8) == [tiny]


def test_labels_on_a_big_outline_match_a_plain_loop() -> None:
    """Boxes cross many piece boundaries; coverage summed over pieces must stay exact."""
    outline = _wiggly_outline()
    rng = np.random.default_rng(5)
    l0_x, l0_y = rng.uniform(300, 2600, 300), rng.uniform(300, 2600, 300)
    sizes = rng.uniform(30, 400, 300)
    labels = label_patches(l0_x, l0_y, sizes, {0: outline}, min_coverage=0.5)
    for i in range(300):
        box = shapely.box(l0_x[i], l0_y[i], l0_x[i] + sizes[i], l0_y[i] + sizes[i])
        cover = box.intersection(outline).area / box.area
        assert labels.coverage[i] == pytest.approx(cover, abs=1e-6)
        assert labels.label[i] == (0 if cover >= 0.5 else UNLABELLED)


def test_no_patches_and_no_geometries() -> None:
    empty = label_patches(
        np.array([]), np.array([]), 10, {0: shapely.box(0, 0, 1, 1)}, min_coverage=0.5
    )
    assert empty.label.shape == (0,)
    none = label_patches(np.array([0.0]), np.array([0.0]), 10, {}, min_coverage=0.5)
    assert none.label.tolist() == [UNLABELLED]


def test_class_maps() -> None:
    assert default_class_map(["tumor", "Normal", "Exclusion", "stroma"]) == {
        "Normal": 0,
        "stroma": 1,
        "tumor": 2,
        "Exclusion": EXCLUDED,
    }
    mapping = parse_class_map("Tumor=1, Normal=0,Stroma=0,Fat=exclude")
    assert mapping == {"Tumor": 1, "Normal": 0, "Stroma": 0, "Fat": EXCLUDED}
    assert class_names_for(mapping) == ["Normal/Stroma", "Tumor"]
    merged, unmapped = class_geometries_by_value(
        {
            "normal": shapely.box(0, 0, 1, 1),
            "STROMA": shapely.box(1, 0, 2, 1),
            "Other": shapely.box(5, 5, 6, 6),
        },
        mapping,
    )
    assert set(merged) == {0} and merged[0].area == pytest.approx(2)
    assert unmapped == ["Other"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Tumor", "NAME=NUMBER"),
        ("Tumor=x", "not a whole number"),
        ("T=-3", "start at 0"),
        ("", "empty"),
        ("a=1,A=2", "twice"),
    ],
)
def test_bad_class_maps(text: str, message: str) -> None:
    with pytest.raises(LabelsError, match=message):
        parse_class_map(text)


def test_patch_table_reads_numbers_and_names(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("X; y ;Label\n10;20;Tumor\n30;40;normal\n\n50;60;\n", encoding="utf-8")
    table = read_patch_table(path, required=("x", "y", "label"))
    assert table.rows == 3
    assert table.numbers("x").tolist() == [10, 30, 50]
    labels, mapping = table.labels(None)
    assert mapping == {"normal": 0, "Tumor": 1}
    assert labels.tolist() == [1, 0, UNLABELLED]
    numeric = tmp_path / "n.csv"
    numeric.write_text("x,y,label\n1,2,1\n3,4,0\n", encoding="utf-8")
    values, numeric_map = read_patch_table(numeric, required=("x", "y", "label")).labels(None)
    assert values.tolist() == [1, 0] and numeric_map == {"class 0": 0, "class 1": 1}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("x,y\n1,2\n", "missing column"),
        ("x,y,label\n", "no rows"),
        ("x,y,label\n1,2\n", "has 2 cells"),
    ],
)
def test_bad_tables(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LabelsError, match=message) as info:
        read_patch_table(path, required=("x", "y", "label"))
    assert str(path) in str(info.value)


def test_bad_cells_missing_file_and_folder(tmp_path: Path) -> None:
    path = tmp_path / "cells.csv"
    path.write_text("x,y,label\n1,2,1\nabc,4,0\n", encoding="utf-8")
    with pytest.raises(LabelsError, match="row 3, column 'x': 'abc' is not a number"):
        read_patch_table(path, required=("x", "y", "label")).numbers("x")
    negative = tmp_path / "negative.csv"
    negative.write_text("x,y,label\n1,2,1\n-5,3,1\n", encoding="utf-8")
    with pytest.raises(LabelsError, match="row 3, column 'x': -5 is below 0"):
        read_patch_table(negative, required=("x", "y", "label")).numbers("x")
    names = tmp_path / "names.csv"
    names.write_text("x,y,label\n1,2,Fat\n", encoding="utf-8")
    with pytest.raises(LabelsError, match="'Fat' is not in the class map"):
        read_patch_table(names, required=("x", "y", "label")).labels({"Tumor": 1})
    with pytest.raises(LabelsError, match="no such labels file"):
        read_patch_table(tmp_path / "none.csv", required=("x",))
    with pytest.raises(LabelsError, match="is a folder"):
        read_patch_table(tmp_path, required=("x",))
