"""Annotation parsing: QuPath GeoJSON and ASAP XML, repairs, and each bad-input case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cdfis_desktop.core.errors import AnnotationError
from cdfis_desktop.core.tiling.annotations import (
    UNCLASSIFIED,
    check_annotation_bounds,
    load_annotations,
)


def _square(x: float, y: float, s: float) -> list[list[float]]:
    return [[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]]


def _feature(geometry: dict, name: str | None) -> dict:
    properties: dict = {"objectType": "annotation"}
    if name is not None:
        properties["classification"] = {"name": name, "color": [255, 0, 0]}
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def _write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_geojson_polygon_with_hole_multipolygon_and_collection(tmp_path: Path) -> None:
    with_hole = {"type": "Polygon", "coordinates": [_square(0, 0, 100), _square(25, 25, 50)]}
    multi = {"type": "MultiPolygon", "coordinates": [[_square(200, 0, 10)], [_square(300, 0, 10)]]}
    collection = {
        "type": "GeometryCollection",
        "geometries": [
            {"type": "Polygon", "coordinates": [_square(400, 0, 20)]},
            {"type": "Point", "coordinates": [5, 5]},
        ],
    }
    path = _write_json(
        tmp_path / "a.geojson",
        {
            "type": "FeatureCollection",
            "features": [
                _feature(with_hole, "Tumor"),
                _feature(multi, "Normal"),
                _feature(collection, "Tumor"),
                _feature({"type": "LineString", "coordinates": [[0, 0], [5, 5]]}, "Tumor"),
                _feature({"type": "Polygon", "coordinates": [_square(600, 0, 10)]}, None),
            ],
        },
    )
    annotations = load_annotations(path)
    assert annotations.class_names == sorted(["Tumor", "Normal", UNCLASSIFIED])
    assert annotations.geometries["Tumor"].area == pytest.approx(100 * 100 - 50 * 50 + 400)
    assert annotations.geometries["Normal"].area == pytest.approx(200)
    assert annotations.polygon_count == 4
    assert any("point/line" in note for note in annotations.notes)


def test_geojson_bare_feature_list_and_overlaps_are_merged(tmp_path: Path) -> None:
    square = {"type": "Polygon", "coordinates": [_square(0, 0, 10)]}
    shifted = {"type": "Polygon", "coordinates": [_square(5, 0, 10)]}
    path = _write_json(tmp_path / "list.json", [_feature(square, "T"), _feature(shifted, "T")])
    annotations = load_annotations(path)
    assert annotations.geometries["T"].area == pytest.approx(150)  # union, not 200


def test_self_intersecting_polygon_is_repaired_with_a_note(tmp_path: Path) -> None:
    bow_tie = {"type": "Polygon", "coordinates": [[[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]]]}
    path = _write_json(
        tmp_path / "bow.geojson",
        {"type": "FeatureCollection", "features": [_feature(bow_tie, "T")]},
    )
    annotations = load_annotations(path)
    assert annotations.geometries["T"].is_valid
    assert annotations.geometries["T"].area == pytest.approx(50)
    assert any("repaired" in note and "Self-intersection" in note for note in annotations.notes)


ASAP = """<?xml version="1.0"?>
<ASAP_Annotations>
  <Annotations>
    <Annotation Name="Annotation 0" Type="Polygon" PartOfGroup="Tumor" Color="#F4FA58">
      <Coordinates>
        <Coordinate Order="2" X="100" Y="100" />
        <Coordinate Order="0" X="0" Y="0" />
        <Coordinate Order="1" X="100" Y="0" />
        <Coordinate Order="3" X="0" Y="100" />
      </Coordinates>
    </Annotation>
    <Annotation Name="Annotation 1" Type="Polygon" PartOfGroup="_2" Color="#64FE2E">
      <Coordinates>
        <Coordinate Order="0" X="10,5" Y="10" />
        <Coordinate Order="1" X="20" Y="10" />
        <Coordinate Order="2" X="20" Y="20" />
      </Coordinates>
    </Annotation>
    <Annotation Name="dots" Type="Dot" PartOfGroup="None">
      <Coordinates><Coordinate Order="0" X="1" Y="1" /></Coordinates>
    </Annotation>
  </Annotations>
  <AnnotationGroups><Group Name="Tumor" PartOfGroup="None" /></AnnotationGroups>
</ASAP_Annotations>
"""


def test_asap_xml_orders_coordinates_and_cuts_camelyon_exclusions(tmp_path: Path) -> None:
    path = tmp_path / "slide.xml"
    path.write_text(ASAP, encoding="utf-8")
    annotations = load_annotations(path)
    # Camelyon16: the _2 (exclusion) triangle is cut out of the tumour, not a class
    assert set(annotations.geometries) == {"Tumor"}
    triangle = 0.5 * (20 - 10.5) * 10  # 10,5 read with a decimal comma
    # ordered coordinates make a square (unordered ones a bow tie of half the area)
    assert annotations.geometries["Tumor"].area == pytest.approx(100 * 100 - triangle)
    assert any("Dot" in note for note in annotations.notes)
    assert any("cut" in note and "Tumor" in note for note in annotations.notes)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.geojson", "", "empty"),
        ("blank.xml", "  \n", "empty"),
        ("broken.geojson", '{"type": "FeatureCollection", "features": [', "not valid JSON"),
        ("broken.xml", "<ASAP_Annotations><Annotations>", "not valid XML"),
        ("other.xml", "<svg></svg>", "not <ASAP_Annotations>"),
        (
            "points.geojson",
            json.dumps(_feature({"type": "Point", "coordinates": [1, 2]}, "T")),
            "no polygon",
        ),
        ("weird.geojson", json.dumps({"type": "Topology"}), "unknown GeoJSON type"),
        (
            "ring.geojson",
            json.dumps(_feature({"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}, "T")),
            "unreadable geometry",
        ),
        ("notes.txt", "hello", "unknown annotation format"),
    ],
)
def test_bad_files_raise_annotation_error_naming_the_file(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(AnnotationError, match=message) as info:
        load_annotations(path)
    assert str(path) in str(info.value)


def test_missing_file_folder_and_binary_file(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match="no such annotation file"):
        load_annotations(tmp_path / "nope.geojson")
    with pytest.raises(AnnotationError, match="is a folder"):
        load_annotations(tmp_path)
    binary = tmp_path / "x.geojson"
    binary.write_bytes(b"\xff\xfe\x00\x81\x90")
    with pytest.raises(AnnotationError, match="not a text file"):
        load_annotations(binary)


def test_bounds_check_rejects_outside_and_normalised_coordinates(tmp_path: Path) -> None:
    outside = _write_json(
        tmp_path / "out.geojson",
        _feature({"type": "Polygon", "coordinates": [_square(5000, 5000, 100)]}, "T"),
    )
    with pytest.raises(AnnotationError, match="outside the slide"):
        check_annotation_bounds(load_annotations(outside), 1000, 800)
    unit = _write_json(
        tmp_path / "unit.geojson",
        _feature({"type": "Polygon", "coordinates": [_square(0.1, 0.1, 0.5)]}, "T"),
    )
    with pytest.raises(AnnotationError, match="normalised"):
        check_annotation_bounds(load_annotations(unit), 1000, 800)
    inside = _write_json(
        tmp_path / "in.geojson",
        _feature({"type": "Polygon", "coordinates": [_square(900, 700, 500)]}, "T"),
    )
    check_annotation_bounds(load_annotations(inside), 1000, 800)  # partly inside: accepted


def test_annotations_found_beside_a_slide_imported_before_copies_were_kept(
    tmp_path: Path,
) -> None:
    from cdfis_desktop.core.tiling.annotations import slide_annotations_path

    slide = tmp_path / "case.svs"
    slide.write_bytes(b"")
    assert slide_annotations_path(tmp_path / "project", 3, slide) is None
    beside = tmp_path / "case.xml"
    beside.write_text("<ASAP_Annotations/>")
    assert slide_annotations_path(tmp_path / "project", 3, slide) == beside
