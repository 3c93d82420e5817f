"""Camelyon16 groups -> classes, and the real Camelyon16 XML files imported onto a generated
slide of their size (real data skipped when CDFIS_TEST_DATA is absent)."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import shapely

from cdfis_desktop.core.config import TilingConfig
from cdfis_desktop.core.errors import AnnotationError
from cdfis_desktop.core.importing import import_slides
from cdfis_desktop.core.slides.tile_bank_tiff import write_tile_bank_tiff
from cdfis_desktop.core.storage import Project
from cdfis_desktop.core.tiling.annotations import load_annotations
from cdfis_desktop.core.tiling.camelyon import TUMOR, camelyon_classes

CAMELYON_MPP = 0.243
TILE_PX = 256


def test_tumour_groups_merge_and_exclusions_are_cut_out() -> None:
    geometries = {
        "_0": shapely.box(0, 0, 100, 100),
        "_1": shapely.box(100, 0, 200, 100),
        "_2": shapely.box(50, 25, 150, 75),
        "Stroma": shapely.box(300, 0, 400, 100),
    }
    classes, notes = camelyon_classes(Path("a.xml"), geometries)
    assert set(classes) == {TUMOR, "Stroma"}
    assert classes[TUMOR].area == pytest.approx(200 * 100 - 100 * 50)
    assert not classes[TUMOR].contains(shapely.Point(100, 50))
    assert classes["Stroma"] is geometries["Stroma"]  # not Camelyon: untouched
    assert len(notes) == 1 and "5000 px²" in notes[0]


def test_group_names_match_case_insensitively() -> None:
    geometries = {"Metastasis": shapely.box(0, 0, 10, 10), "NEGATIVE": shapely.box(0, 0, 5, 10)}
    classes, _ = camelyon_classes(Path("a.xml"), geometries)
    assert set(classes) == {TUMOR} and classes[TUMOR].area == pytest.approx(50)


def test_only_exclusion_regions_is_refused() -> None:
    with pytest.raises(AnnotationError, match="only Camelyon16 exclusion regions"):
        camelyon_classes(Path("a.xml"), {"negative": shapely.box(0, 0, 10, 10)})


def test_files_without_camelyon_groups_are_unchanged() -> None:
    geometries = {"Tumor area": shapely.box(0, 0, 10, 10), "Normal": shapely.box(20, 0, 30, 10)}
    classes, notes = camelyon_classes(Path("a.xml"), geometries)
    assert classes == geometries and notes == []


# -- the real Camelyon16 files ------------------------------------------------------------


def _raw_groups(path: Path) -> dict[str, shapely.Geometry]:
    """An independent reading of an ASAP file: each annotation's points in Order as a
    polygon (made valid), united per group. Shares no code with the importer."""
    polygons: dict[str, list[shapely.Geometry]] = {}
    for annotation in ET.parse(path).getroot().iter("Annotation"):
        points = sorted(
            (int(c.get("Order")), float(c.get("X")), float(c.get("Y")))
            for c in annotation.iter("Coordinate")
        )
        polygon = shapely.make_valid(shapely.Polygon([(x, y) for _, x, y in points]))
        polygons.setdefault(annotation.get("PartOfGroup"), []).append(polygon)
    return {group: _polygonal(shapely.union_all(parts)) for group, parts in polygons.items()}


def _polygonal(geometry: shapely.Geometry) -> shapely.Geometry:
    """The polygons of ``geometry`` as one MultiPolygon (make_valid and differences leave
    stray lines; a prepared MultiPolygon answers box queries far faster than a collection)."""
    parts = [p for p in shapely.get_parts(geometry) if p.geom_type == "Polygon"]
    return shapely.MultiPolygon(parts)


def _xml(real_data: Path, name: str) -> Path:
    return real_data / "annotations" / "camelyon16" / name


@pytest.mark.realdata
def test_every_real_file_has_one_tumour_class(real_data: Path) -> None:
    files = sorted((real_data / "annotations" / "camelyon16").glob("*.xml"))
    assert len(files) == 7
    for path in files:
        annotations = load_annotations(path)
        assert annotations.class_names == [TUMOR], path.name
        assert annotations.geometries[TUMOR].area > 1e6, path.name


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["tumor_036.xml", "tumor_039.xml"])
def test_real_exclusion_regions_are_cut_out_of_the_tumour(real_data: Path, name: str) -> None:
    raw = _raw_groups(_xml(real_data, name))
    tumour = load_annotations(_xml(real_data, name)).geometries[TUMOR]
    expected = raw["metastasis"].difference(raw["negative"])
    assert tumour.symmetric_difference(expected).area < 1e-6 * expected.area
    # the cut is real: the exclusion regions lay inside the metastases
    assert raw["negative"].intersection(raw["metastasis"]).area > 1e6
    assert tumour.intersection(raw["negative"]).area < 1.0


def _blank_slide_for(annotations_path: Path, folder: Path) -> Path:
    """A generated pyramidal slide of the annotations' extent (level-0 px, Camelyon16's
    0.243 µm/px): blank glass everywhere but a flat pink "tissue" rectangle around the
    annotations (1024 px margin), so that tissue detection keeps exactly that area. Every
    tile is one of two stored tiles: the file is a few MB whatever the slide's size."""
    min_x, min_y, max_x, max_y = load_annotations(annotations_path).bounds()
    size = (math.ceil(max_x / TILE_PX + 16) * TILE_PX, math.ceil(max_y / TILE_PX + 16) * TILE_PX)
    first = (int(min_x - 1024) // TILE_PX, int(min_y - 1024) // TILE_PX)
    last = (int(max_x + 1024) // TILE_PX, int(max_y + 1024) // TILE_PX)
    bank = [
        np.full((TILE_PX, TILE_PX, 3), 245, np.uint8),
        np.zeros((TILE_PX, TILE_PX, 3), np.uint8),
    ]
    bank[1][:] = (225, 140, 185)

    def tile_ids(level: int, cols: int, rows: int) -> np.ndarray:
        ids = np.zeros((rows, cols), np.int64)
        scale = 2**level
        ids[first[1] // scale : last[1] // scale + 1, first[0] // scale : last[0] // scale + 1] = 1
        return ids

    return write_tile_bank_tiff(
        folder / f"{annotations_path.stem}.tiff",
        size,
        CAMELYON_MPP,
        tile_ids,
        bank.__getitem__,
        description=f"blank slide for {annotations_path.name}",
    )


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("name", "patch_px"),
    [
        ("tumor_039.xml", 64),  # 148 polygons, 144 of them exclusion regions; 132 px patches
        ("tumor_009.xml", 256),  # Spline annotations; 527 px patches (0.5 µm/px)
    ],
)
def test_tumour_patch_area_matches_the_polygons(
    real_data: Path, tmp_path: Path, name: str, patch_px: int
) -> None:
    xml = _xml(real_data, name)
    slide = _blank_slide_for(xml, tmp_path)
    tiling = TilingConfig(patch_px=patch_px, mpp=0.5, min_tissue=0.5, min_label_coverage=0.5)
    with Project.create(tmp_path / "project") as project:
        summary = import_slides(project, [slide], annotations=[xml], tiling=tiling)
        table = project.patches()
        assert project.class_names() == [TUMOR]
    side = int(table.l0_size[0])
    assert side == round(patch_px * 0.5 / CAMELYON_MPP)
    raw = _raw_groups(xml)
    tumour = _polygonal(raw["metastasis"].difference(raw.get("negative", shapely.Polygon())))
    # the grid covers the annotations' bounding box without a gap: all of the polygons count
    min_x, min_y, max_x, max_y = tumour.bounds
    cols = np.arange(int(min_x) // side, int(max_x) // side + 1) * side
    rows = np.arange(int(min_y) // side, int(max_y) // side + 1) * side
    present = set(zip(table.l0_x.tolist(), table.l0_y.tolist(), strict=True))
    assert all((x, y) in present for x in cols.tolist() for y in rows.tolist())
    boxes = shapely.box(table.l0_x, table.l0_y, table.l0_x + side, table.l0_y + side)
    shapely.prepare(tumour)
    is_tumour = table.label == 0
    inside = shapely.contains(tumour, boxes)
    outside = ~shapely.intersects(tumour, boxes)
    assert is_tumour[inside].all() and not is_tumour[outside].any()
    # Patches off the tumour boundary are exactly in or out; a boundary patch is labelled
    # when at least half covered, so it is off by at most half a patch either way.
    on_boundary = ~inside & ~outside
    tolerance = 0.5 * side**2 * int(on_boundary.sum())
    error = abs(int(is_tumour.sum()) * side**2 - tumour.area)
    assert error <= tolerance, (error, tolerance, summary.lines())
    if "negative" in raw:  # patches inside exclusion regions are not tumour
        shapely.prepare(raw["negative"])
        excluded = shapely.contains(raw["negative"], boxes)
        assert excluded.sum() > 10 and not is_tumour[excluded].any()
