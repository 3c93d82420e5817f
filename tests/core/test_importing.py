"""``import_slides`` on a generated slide: annotations, labels CSV, class maps, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import shapely

from cdfis_desktop.core.config import TilingConfig
from cdfis_desktop.core.errors import AnnotationError, LabelsError, SlideOpenError
from cdfis_desktop.core.importing import import_slides
from cdfis_desktop.core.slides import open_slide
from cdfis_desktop.core.storage.project import Project
from cdfis_desktop.core.tiling.annotations import load_annotations, slide_annotations_path
from cdfis_desktop.core.training.datasets import SlidePatchDataset

TILING = TilingConfig(patch_px=64, mpp=2.0, min_tissue=0.3, min_label_coverage=0.5)


@pytest.fixture()
def slide_copy(synthetic_slide, tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    slide = Path(shutil.copy(synthetic_slide.slide_path, folder / "case1.tiff"))
    notes = Path(shutil.copy(synthetic_slide.annotations_path, folder / "case1.geojson"))
    return slide, notes


def test_import_with_annotations_labels_by_coverage(
    slide_copy: tuple[Path, Path], tmp_path: Path
) -> None:
    slide, notes = slide_copy
    progress = []
    with Project.open(tmp_path / "p", create=True) as project:
        summary = import_slides(
            project, [slide], annotations=[notes], tiling=TILING, progress=progress.append
        )
        assert project.class_names() == ["Stroma", "Tumor"]
        (record,) = project.slides()
        assert record.group == "case1" and record.mpp == pytest.approx(0.5)
        table = project.patches()
        assert len(table) == summary.patch_count > 20
        assert set(summary.per_class()) <= {-1, 0, 1} and summary.per_class().get(1, 0) > 0
        # every label agrees with a direct coverage computation on the same polygons
        geometries = load_annotations(notes).geometries
        for i in range(0, len(table), 7):
            box = shapely.box(
                table.l0_x[i],
                table.l0_y[i],
                table.l0_x[i] + table.l0_size[i],
                table.l0_y[i] + table.l0_size[i],
            )
            cover = [box.intersection(geometries[n]).area / box.area for n in ("Stroma", "Tumor")]
            expected = int(np.argmax(cover)) if max(cover) >= 0.5 else -1
            assert table.label[i] == expected
        assert progress[-1].done == progress[-1].total == 1
        # the annotation file is kept in the project, for the viewer's outlines
        kept = slide_annotations_path(project.folder, record.id, slide)
        assert kept == project.folder / "annotations" / f"slide-{record.id}.geojson"
        assert kept.read_bytes() == notes.read_bytes()
        notes.unlink()
        assert slide_annotations_path(project.folder, record.id, slide) == kept
        notes.write_bytes(kept.read_bytes())
        # the same slide again is skipped, not duplicated
        again = import_slides(project, [slide], annotations=[notes], tiling=TILING)
        assert again.slides == [] and "already in the project" in again.skipped[0]
        assert "total: 0 slide(s)" in again.lines()[-2]


def test_class_map_with_exclude_drops_patches(
    slide_copy: tuple[Path, Path], tmp_path: Path
) -> None:
    slide, notes = slide_copy
    with Project.open(tmp_path / "p", create=True) as project:
        summary = import_slides(
            project,
            [slide],
            annotations=[notes],
            tiling=TILING,
            class_map={"Tumor": 0, "Stroma": -2},
        )
        assert summary.slides[0].excluded > 0
        assert set(project.patches().label.tolist()) <= {-1, 0}
        assert project.class_names() == ["Tumor"]


def test_labels_csv_gives_the_patches(slide_copy: tuple[Path, Path], tmp_path: Path) -> None:
    slide, _ = slide_copy
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text(
        "x,y,width,height,label\n0,0,256,256,Tumor\n512,256,256,256,Normal\n", encoding="utf-8"
    )
    with Project.open(tmp_path / "p", create=True) as project:
        import_slides(project, [slide], labels_csv=csv_path, tiling=TILING)
        table = project.patches()
        assert table.l0_x.tolist() == [0, 512] and table.l0_size.tolist() == [256, 256]
        assert [project.class_names()[v] for v in table.label] == ["Tumor", "Normal"]
        # the registered patches train through the slide dataset (lazy read, then disk cache)
        dataset = SlidePatchDataset.from_project(project, input_px=32, preload=False)
        image, label, patch_id = dataset[1]
        assert image.shape == (3, 32, 32) and (label, patch_id) == (
            int(table.label[1]),
            int(table.id[1]),
        )
        with open_slide(slide) as reader:
            expected = reader.read_region_at_mpp(512, 256, 32, 32, 0.5 * 256 / 32)
        assert np.array_equal(dataset.image_uint8(1), expected.transpose(2, 0, 1))
        dataset.preload()  # decodes every patch once into the project's disk cache
        assert len(list(project.cache_dir.glob("patches-v2-32px-*.npy"))) == 1
        assert np.array_equal(dataset.image_uint8(1), expected.transpose(2, 0, 1))
    outside = tmp_path / "outside.csv"
    outside.write_text("x,y,label\n90000,0,1\n", encoding="utf-8")
    with Project.open(tmp_path / "q", create=True) as project:
        with pytest.raises(LabelsError, match="outside the slide"):
            import_slides(project, [slide], labels_csv=outside, tiling=TILING)
        assert project.slides() == []


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_bad_input_writes_nothing(slide_copy: tuple[Path, Path], tmp_path: Path) -> None:
    slide, notes = slide_copy
    far = {
        "type": "Feature",
        "properties": {"classification": {"name": "T"}},
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[1e6, 1e6], [1e6 + 9, 1e6], [1e6, 1e6 + 9], [1e6, 1e6]]],
        },
    }
    unit = {
        "type": "Feature",
        "properties": {"classification": {"name": "T"}},
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[0.1, 0.1], [0.9, 0.1], [0.5, 0.9], [0.1, 0.1]]],
        },
    }
    empty = tmp_path / "empty.tiff"
    empty.write_bytes(b"")
    empty_csv = tmp_path / "l.csv"
    empty_csv.write_bytes(b"")
    cases = [
        (dict(slide_paths=[tmp_path / "none.svs"]), SlideOpenError, "none.svs"),
        (dict(slide_paths=[empty]), SlideOpenError, "empty.tiff"),
        (dict(slide_paths=[tmp_path]), SlideOpenError, "folder"),
        (
            dict(slide_paths=[slide], annotations=[_write(tmp_path / "case1.json", far)]),
            AnnotationError,
            "outside the slide",
        ),
        (
            dict(slide_paths=[slide], annotations=[_write(tmp_path / "u.json", unit)]),
            AnnotationError,
            "normalised",
        ),
        (
            dict(slide_paths=[slide], annotations=[tmp_path / "case1.xml"]),
            AnnotationError,
            "no such",
        ),
        (
            dict(
                slide_paths=[slide, slide_copy_2(slide)],
                annotations=[notes, tmp_path / "other.geojson"],
            ),
            AnnotationError,
            "matches 0",
        ),
        (dict(slide_paths=[slide], labels_csv=empty_csv), LabelsError, "empty"),
        (
            dict(slide_paths=[slide], annotations=[notes], labels_csv=tmp_path / "l.csv"),
            LabelsError,
            "not both",
        ),
    ]
    with Project.open(tmp_path / "p", create=True) as project:
        for kwargs, error, message in cases:
            with pytest.raises(error, match=message):
                import_slides(project, tiling=TILING, **kwargs)
            assert project.slides() == [] and project.class_names() == []


def slide_copy_2(slide: Path) -> Path:
    return Path(shutil.copy(slide, slide.with_name("case2.tiff")))


def _two_slides(folder: Path) -> list[tuple[Path, Path]]:
    """Two small tile-bank slides (pink tissue in the middle) and their annotations."""
    from cdfis_desktop.core.slides.tile_bank_tiff import write_tile_bank_tiff

    bank = [
        np.full((256, 256, 3), 240, np.uint8),
        np.full((256, 256, 3), (225, 140, 185), np.uint8),
    ]

    def tile_ids(level: int, cols: int, rows: int) -> np.ndarray:
        ids = np.zeros((rows, cols), np.int64)
        ids[rows // 4 : rows - rows // 4, cols // 4 : cols - cols // 4] = 1
        return ids

    square = shapely.geometry.mapping(shapely.box(512, 512, 1536, 1024))
    feature = {
        "type": "Feature",
        "geometry": square,
        "properties": {"classification": {"name": "Tumor"}},
    }
    pairs = []
    for name in ("case1", "case2"):
        slide = write_tile_bank_tiff(
            folder / f"{name}.tiff", (2048, 2048), 0.5, tile_ids, bank.__getitem__, description=name
        )
        notes = folder / f"{name}.geojson"
        notes.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
        pairs.append((slide, notes))
    return pairs


@pytest.mark.parametrize("stage", ["detecting tissue", "labelling", "storing"])
def test_cancel_inside_a_slide_stops_before_it_is_registered(tmp_path: Path, stage: str) -> None:
    """A cancel during one slide's stages (a 100k px slide takes ~10 s of CPU) stops at the
    next stage, and nothing of that slide is stored; the finished slide before it stays."""
    from cdfis_desktop.core.progress import Cancelled, CancelToken

    pairs = _two_slides(tmp_path)
    cancel = CancelToken()
    messages = []

    def progress(report) -> None:
        messages.append(report.message)
        if report.message.startswith(f"case2.tiff: {stage}"):
            cancel.cancel()

    with Project.open(tmp_path / "p", create=True) as project:
        with pytest.raises(Cancelled):
            import_slides(
                project,
                [slide for slide, _ in pairs],
                annotations=dict(pairs),
                tiling=TILING,
                progress=progress,
                cancel=cancel,
            )
        assert [Path(s.path).name for s in project.slides()] == ["case1.tiff"]
        assert set(project.patches().slide_id.tolist()) == {project.slides()[0].id}
    assert any(m.startswith("case1.tiff: storing") for m in messages)
    assert messages[-1].startswith(f"case2.tiff: {stage}")


_KILLED_IMPORT = """
import os, sys
from sqlalchemy import event
from cdfis_desktop.core.config import TilingConfig
from cdfis_desktop.core.importing import import_slides
from cdfis_desktop.core.storage.project import Project

project = Project.open(sys.argv[1], create=True)

def die_before_the_patches(conn, cursor, statement, *args):
    if statement.lstrip().upper().startswith("INSERT INTO PATCHES"):
        os._exit(137)  # as a kill -9 between registering the slide and storing its patches

event.listen(project.engine, "before_cursor_execute", die_before_the_patches)
import_slides(project, [sys.argv[2]], annotations=[sys.argv[3]],
              tiling=TilingConfig(patch_px=64, mpp=2.0, min_tissue=0.3, min_label_coverage=0.5))
"""


def test_rerun_finishes_an_import_killed_between_slide_and_patches(
    slide_copy: tuple[Path, Path], tmp_path: Path
) -> None:
    """A real process killed after registering the slide and before its patches: the
    rerun redoes that slide (with a note) instead of skipping it as already imported."""
    import subprocess
    import sys

    slide, notes = slide_copy
    folder = tmp_path / "p"
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_IMPORT, str(folder), str(slide), str(notes)],
        capture_output=True,
        text=True,
    )
    assert killed.returncode == 137, killed.stderr
    with Project.open(folder) as project:
        assert len(project.slides()) == 1 and len(project.patches()) == 0  # the half import
        summary = import_slides(project, [slide], annotations=[notes], tiling=TILING)
        assert len(summary.slides) == 1 and summary.skipped == []
        assert any("interrupted import; redone" in n for n in summary.notes)
        assert len(project.slides()) == 1
        assert len(project.patches()) == summary.slides[0].patches > 0
        again = import_slides(project, [slide], annotations=[notes], tiling=TILING)
        assert again.slides == [] and "already in the project" in again.skipped[0]
