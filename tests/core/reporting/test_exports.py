"""CSV, QuPath GeoJSON and PNG exports, each parsed back and checked against the store."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import shapely

from cdfis_desktop.core.errors import ConfigError, ExportError
from cdfis_desktop.core.reporting import (
    CSV_COLUMNS,
    downsample_for,
    export_csv,
    export_geojson,
    export_png,
    patch_measurements,
)
from cdfis_desktop.core.storage import Project
from cdfis_desktop.core.tiling.annotations import load_annotations


def test_csv_has_one_row_per_patch_with_the_store_values(trained_project, tmp_path) -> None:
    target = tmp_path / "patches.csv"
    with Project.open(trained_project.folder) as project:
        count = export_csv(project, trained_project.run_id, target)
        table = patch_measurements(project, trained_project.run_id)
        names = project.class_names()
    with target.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert count == len(rows) == trained_project.n_patches
    assert tuple(rows[0]) == CSV_COLUMNS
    chosen = np.array([float(r["times_chosen"]) for r in rows])
    assert np.array_equal(chosen, table.values["times_chosen"])
    row = next(r for r in rows if r["mean_score"])
    k = table.index_of(int(row["patch_id"]))
    assert float(row["mean_score"]) == pytest.approx(table.values["mean_score"][k], rel=1e-5)
    assert row["label_name"] == (names[table.label[k]] if table.label[k] >= 0 else "")
    assert {r["slide"] for r in rows} == {"demo-1.tiff"}


def _check_qupath_structure(collection: dict) -> None:
    assert collection["type"] == "FeatureCollection"
    for feature in collection["features"]:
        assert feature["type"] == "Feature" and isinstance(feature["id"], str)
        ring = feature["geometry"]["coordinates"][0]
        assert feature["geometry"]["type"] == "Polygon" and ring[0] == ring[-1]
        properties = feature["properties"]
        assert properties["objectType"] == "tile"
        if "classification" in properties:
            colour = properties["classification"]["color"]
            assert isinstance(properties["classification"]["name"], str)
            assert len(colour) == 3 and all(0 <= c <= 255 for c in colour)
        assert all(
            isinstance(v, (int, float)) and not isinstance(v, bool)
            for v in properties["measurements"].values()
        )


def test_geojson_round_trip_gives_the_same_geometry_and_values(trained_project, tmp_path) -> None:
    with Project.open(trained_project.folder) as project:
        paths = export_geojson(project, trained_project.run_id, tmp_path / "geo")
        slides = project.slides()
        table = patch_measurements(project, trained_project.run_id, slides[0].id)
        names = project.class_names()
    assert [p.name for p in paths] == [f"demo-1-{s.id}.geojson" for s in slides]
    collection = json.loads(paths[0].read_text(encoding="utf-8"))
    _check_qupath_structure(collection)
    assert len(collection["features"]) == len(table)
    for feature in collection["features"]:
        k = table.index_of(int(feature["properties"]["measurements"]["patch_id"]))
        x, y, size = table.l0_x[k], table.l0_y[k], table.l0_size[k]
        assert shapely.geometry.shape(feature["geometry"]).equals(
            shapely.box(x, y, x + size, y + size)
        )
        measurements = feature["properties"]["measurements"]
        assert measurements["times_chosen"] == table.values["times_chosen"][k]
        assert np.isnan(table.values["mean_score"][k]) == ("mean_score" not in measurements)
    # our own annotation importer reads it back: per class, the union of its patches
    loaded = load_annotations(paths[0])
    for label, name in enumerate(names):
        mine = table.label == label
        expected = shapely.union_all(
            shapely.box(
                table.l0_x[mine],
                table.l0_y[mine],
                table.l0_x[mine] + table.l0_size[mine],
                table.l0_y[mine] + table.l0_size[mine],
            )
        )
        assert loaded.geometries[name].symmetric_difference(expected).area == 0


def test_geojson_pattern_and_bad_pattern(trained_project, tmp_path) -> None:
    with Project.open(trained_project.folder) as project:
        paths = export_geojson(
            project,
            trained_project.run_id,
            tmp_path / "out" / "{slide_id}-run.geojson",
            slide_ids=[2],
        )
        assert paths == [tmp_path / "out" / "2-run.geojson"]
        with pytest.raises(ConfigError, match="same file"):
            export_geojson(project, trained_project.run_id, tmp_path / "{slide:.4}.geojson")
        with pytest.raises(ConfigError, match="no slide with id 9"):
            export_geojson(project, trained_project.run_id, tmp_path, slide_ids=[9])


def test_png_export_writes_overlay_composite_and_legend(trained_project, tmp_path) -> None:
    from matplotlib.image import imread

    with Project.open(trained_project.folder) as project:
        slide = project.slides()[0]
        paths = export_png(
            project,
            trained_project.run_id,
            tmp_path / "{slide_id}",
            downsample_of={slide.id: downsample_for(slide, max_px=256)},
        )
    assert [p.name for p in paths] == [
        "1-favour-overlay.png",
        "1-favour-on-slide.png",
        "1-favour-legend.png",
    ]
    overlay, on_slide = imread(paths[0]), imread(paths[1])
    assert overlay.shape == (192, 256, 4) and on_slide.shape[:2] == (192, 256)
    assert 0 < np.mean(overlay[:, :, 3] > 0) <= 1  # painted where patches are
    assert np.std(on_slide[:, :, :3]) > 0.05  # the slide shows under the overlay
    assert imread(paths[2]).shape[2] == 4


def test_unwritable_output_is_an_export_error(trained_project, tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with Project.open(trained_project.folder) as project:
        with pytest.raises(ExportError, match="cannot write"):
            export_csv(project, trained_project.run_id, tmp_path / "missing" / "x.csv")
        with pytest.raises(ExportError, match="not a folder|cannot write"):
            export_geojson(project, trained_project.run_id, blocker)


def test_downsample_for_needs_one_known_resolution(trained_project) -> None:
    with Project.open(trained_project.folder) as project:
        slide = project.slides()[0]
    assert downsample_for(slide, max_px=1024) == 2.0
    assert downsample_for(slide, mpp=2.0) == pytest.approx(4.0, rel=1e-3)
    with pytest.raises(ConfigError, match="exactly one"):
        downsample_for(slide)
    with pytest.raises(ConfigError, match="finer"):
        downsample_for(slide, mpp=0.1)
