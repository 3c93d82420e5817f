"""Patch sets -> mosaic slides: layout, pixel fidelity, labels, and bad input (real IDC too)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cdfis_desktop.core.errors import LabelsError
from cdfis_desktop.core.importing import import_patch_set
from cdfis_desktop.core.slides import open_slide
from cdfis_desktop.core.storage.project import Project
from cdfis_desktop.core.tiling.patchsets import read_patch_set


def _make_set(root: Path, rows: list[tuple[str, str, int, int, int, int, int]]) -> Path:
    rng = np.random.default_rng(3)
    for name, _, _, _, _, width, height in rows:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        # smooth, distinct per patch: a colour plus a gradient (what JPEG keeps well)
        ramp = np.add.outer(np.arange(height), np.arange(width))[..., None] * 2
        image = np.clip(rng.integers(40, 180, 3) + ramp, 0, 255).astype(np.uint8)
        Image.fromarray(image).save(root / name)
    path = root / "labels.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "patient", "x", "y", "label", "width", "height"])
        writer.writerows(rows)
    return path


ROWS = [
    ("p1/a.png", "p1", 0, 0, 0, 20, 20),
    ("p1/b.png", "p1", 20, 0, 1, 20, 20),
    ("p1/c.png", "p1", 0, 20, 1, 20, 12),
    ("p2/d.png", "p2", 300, 300, 0, 20, 20),
]


def test_read_patch_set_groups_by_patient(tmp_path: Path) -> None:
    patch_set = read_patch_set(_make_set(tmp_path, ROWS), tmp_path)
    assert patch_set.group_column == "patient"
    assert [g.name for g in patch_set.groups] == ["p1", "p2"]
    assert patch_set.groups[0].size_px == (40, 32)
    assert patch_set.groups[0].label.tolist() == [0, 1, 1]


def test_import_patch_set_registers_mosaics_with_labels(tmp_path: Path) -> None:
    csv_path = _make_set(tmp_path / "set", ROWS)
    with Project.open(tmp_path / "project", create=True) as project:
        summary = import_patch_set(
            project, csv_path, tmp_path / "set", mpp=4.0, class_map={"normal": 0, "tumour": 1}
        )
        assert [s.patches for s in summary.slides] == [3, 1]
        assert summary.per_class() == {0: 2, 1: 2}
        assert project.class_names() == ["normal", "tumour"]
        slides = project.slides()
        assert [s.group for s in slides] == ["p1", "p2"] and slides[0].mpp == pytest.approx(4.0)
        table = project.patches(slide_id=slides[0].id)
        assert table.l0_x.tolist() == [0, 20, 0] and table.l0_size.tolist() == [20, 20, 20]
        assert table.source.tolist() == ["p1/a.png", "p1/b.png", "p1/c.png"]
        with open_slide(slides[0].path) as reader:
            assert reader.dimensions == (40, 32)
            region = reader.read_region(20, 0, 0, 20, 20)
        original = np.asarray(Image.open(tmp_path / "set" / "p1" / "b.png"))
        other = np.asarray(Image.open(tmp_path / "set" / "p1" / "a.png"))
        assert np.abs(region.astype(int) - original.astype(int)).mean() < 3  # JPEG q95
        assert np.abs(region.astype(int) - other.astype(int)).mean() > 10  # not its neighbour
        # importing the same groups again skips them: nothing is written twice
        again = import_patch_set(project, csv_path, tmp_path / "set")
        assert again.slides == [] and len(again.skipped) == 2
        assert "already imported" in again.skipped[0]
        assert len(project.slides()) == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda root, p: p.write_text("file,x,y\na.png,1,2\n"), "missing column"),
        (lambda root, p: (root / "p1" / "a.png").unlink(), "does not exist"),
        (lambda root, p: (root / "p1" / "a.png").write_bytes(b"xx"), "not a readable image"),
        (
            lambda root, p: p.write_text(
                p.read_text().replace("p1/b.png,p1,20,0,1,20,20", "p1/b.png,p1,20,0,1,20,19")
            ),
            "height 19",
        ),
        (
            lambda root, p: p.write_text(p.read_text().replace("p2,300,300", "p2,9000000,300")),
            "spans",
        ),
    ],
)
def test_bad_patch_sets_write_nothing(tmp_path: Path, change, message: str) -> None:
    root = tmp_path / "set"
    csv_path = _make_set(root, ROWS)
    change(root, csv_path)
    with Project.open(tmp_path / "project", create=True) as project:
        with pytest.raises(LabelsError, match=message):
            import_patch_set(project, csv_path, root)
        assert project.slides() == [] and project.class_names() == []
    assert not any((tmp_path / "project" / "slides").glob("*.tiff"))


def test_bad_group_column_and_root(tmp_path: Path) -> None:
    csv_path = _make_set(tmp_path, ROWS)
    with pytest.raises(LabelsError, match="no column 'ward'"):
        read_patch_set(csv_path, tmp_path, group_by="ward")
    with pytest.raises(LabelsError, match="no such folder"):
        read_patch_set(csv_path, tmp_path / "missing")


@pytest.mark.realdata
def test_idc_patches_of_two_patients(real_data: Path, tmp_path: Path) -> None:
    idc = real_data / "patches" / "idc"
    with (idc / "labels.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["patient"] in ("8863", "8957")]
    subset = tmp_path / "subset.csv"
    with subset.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with Project.open(tmp_path / "project", create=True) as project:
        summary = import_patch_set(project, subset, idc, group_by="patient")
        assert summary.patch_count == len(rows)
        expected = {
            p: sorted(int(r["label"]) for r in rows if r["patient"] == p) for p in ("8863", "8957")
        }
        errors = []
        for slide in project.slides():
            table = project.patches(slide_id=slide.id)
            assert sorted(table.label.tolist()) == expected[slide.group]
            by_xy = {(int(r["x"]), int(r["y"])): r for r in rows if r["patient"] == slide.group}
            with open_slide(slide.path) as reader:
                assert reader.mpp == pytest.approx(4.0) and reader.format == "generic-tiff"
                for i in range(0, len(table), 25):
                    row = by_xy[(int(table.l0_x[i]), int(table.l0_y[i]))]
                    assert int(table.label[i]) == int(row["label"])
                    original = np.asarray(Image.open(idc / row["file"]).convert("RGB")).astype(int)
                    h, w = original.shape[:2]
                    region = reader.read_region(int(table.l0_x[i]), int(table.l0_y[i]), 0, w, h)
                    errors.append(np.abs(region.astype(int) - original).mean())
        # JPEG q95 tiles with 2x2 chroma subsampling: ~5 of 255 levels on real tissue (measured
        # 4.6); neighbouring IDC patches differ by ~44
        assert np.mean(errors) < 8.0, np.mean(errors)


@pytest.mark.parametrize("stopped", ["after the mosaic was written", "before the patches"])
def test_a_rerun_finishes_an_interrupted_import(tmp_path: Path, stopped: str) -> None:
    """The states a killed ``import-patches`` leaves: group p1 done; p2's mosaic written
    but not registered (or registered without its patches); scratch of the dead process.
    Before: the rerun refused ("p2.tiff already exists ... delete that slide first") and no
    command could delete it."""
    import subprocess
    import sys

    from cdfis_desktop.core.scratch import host_tag
    from cdfis_desktop.core.tiling.patchsets import write_mosaic

    csv_path = _make_set(tmp_path / "set", ROWS)
    first_only = tmp_path / "first.csv"
    first_only.write_text("\n".join(csv_path.read_text().splitlines()[:4]) + "\n")
    with Project.open(tmp_path / "project", create=True) as project:
        import_patch_set(project, first_only, tmp_path / "set")
        p2 = read_patch_set(csv_path, tmp_path / "set").groups[1]
        target = project.slides_dir / "p2.tiff"
        write_mosaic(p2, target, 4.0)
        if stopped == "before the patches":
            with open_slide(target) as reader:
                project.add_slide(
                    target, fingerprint=reader.fingerprint(), width=reader.dimensions[0],
                    height=reader.dimensions[1], mpp=reader.mpp, group="p2",
                )  # fmt: skip
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        child.wait()
        tag = f"cdfis-{host_tag()}-{child.pid}"
        (project.slides_dir / f".p2.tiff.{tag}.k3j5h7.tmp").write_bytes(b"half a tiff")
        (project.slides_dir / f".pyramid-{tag}-q8w9e0").mkdir()

        summary = import_patch_set(project, csv_path, tmp_path / "set")

        assert [Path(s.path).name for s in summary.slides] == ["p2.tiff"]
        assert "already imported" in summary.skipped[0] and "p2.tiff" in summary.notes[0]
        slides = project.slides()
        assert [s.group for s in slides] == ["p1", "p2"]
        assert [len(project.patches(slide_id=s.id)) for s in slides] == [3, 1]
        assert sorted(p.name for p in project.slides_dir.iterdir()) == ["p1.tiff", "p2.tiff"]
