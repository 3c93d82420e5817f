"""``cdfis import`` and ``cdfis import-patches`` end to end, including exit 2 on bad input."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cdfis_desktop.cli.main import main
from cdfis_desktop.core.storage.project import Project


def _cdfis(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cdfis_desktop.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
    )


def test_import_prints_a_summary_per_slide_and_class(synthetic_slide, tmp_path: Path) -> None:
    result = _cdfis(
        "import",
        "--project",
        tmp_path / "p",
        synthetic_slide.slide_path,
        "--annotations",
        synthetic_slide.annotations_path,
        "--patch-px",
        "64",
        "--mpp",
        "2",
        "--min-tissue",
        "0.3",
        "--class-map",
        "Tumor=1,Stroma=0",
    )
    assert result.returncode == 0, result.stderr
    assert f"{synthetic_slide.slide_path.name}: " in result.stdout
    assert "total: 1 slide(s)" in result.stdout and "Tumor" in result.stdout
    with Project.open(tmp_path / "p") as project:
        assert project.class_names() == ["Stroma", "Tumor"]
        assert len(project.patches()) > 0


def test_import_bad_input_exits_2_with_one_line(synthetic_slide, tmp_path: Path) -> None:
    bad = tmp_path / "bad.geojson"
    bad.write_text("{", encoding="utf-8")
    for args in (
        ("import", "--project", tmp_path / "p", tmp_path / "missing.svs"),
        ("import", "--project", tmp_path / "p", synthetic_slide.slide_path, "--annotations", bad),
        ("import", "--project", tmp_path / "p", synthetic_slide.slide_path, "--class-map", "Tumor"),
        (
            "import-patches",
            "--project",
            tmp_path / "p",
            "--csv",
            tmp_path / "no.csv",
            "--root",
            tmp_path,
        ),
    ):
        result = _cdfis(*args)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith("error: ") and "Traceback" not in result.stderr


def test_import_patches_builds_mosaics(tmp_path: Path) -> None:
    root = tmp_path / "set"
    rows = [("a/1.png", "a", 0, 0, 1), ("a/2.png", "a", 16, 0, 0), ("b/3.png", "b", 32, 32, 1)]
    for name, *_ in rows:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((16, 16, 3), 120, np.uint8)).save(root / name)
    with (root / "labels.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "patient", "x", "y", "label"])
        writer.writerows(rows)
    result = _cdfis(
        "import-patches",
        "--project",
        tmp_path / "p",
        "--csv",
        root / "labels.csv",
        "--root",
        root,
        "--class-map",
        "non-IDC=0,IDC=1",
    )
    assert result.returncode == 0, result.stderr
    assert "total: 2 slide(s), 3 patches (non-IDC 1, IDC 2)" in result.stdout
    assert "[2/2]" in result.stderr
    assert sorted(p.name for p in (tmp_path / "p" / "slides").iterdir()) == ["a.tiff", "b.tiff"]
    with Project.open(tmp_path / "p") as project:  # each patch keeps its image file
        assert project.patches().source.tolist() == ["a/1.png", "a/2.png", "b/3.png"]


@pytest.mark.realdata
def test_import_every_real_slide(
    real_slide: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the generic TIFF says 352.8 µm/px (a 72 dpi default): give it a plausible one
    override = ["--slide-mpp", "4"] if real_slide.suffix == ".tiff" else []
    args = ["import", "--project", str(tmp_path / "p"), str(real_slide), "--patch-px", "64"]
    assert main([*args, "--mpp", "2", *override]) == 0
    captured = capsys.readouterr()
    assert f"{real_slide.name}: " in captured.out
    fluorescence = real_slide.suffix == ".ndpi"
    assert ("looks like a fluorescence slide" in captured.err) == fluorescence
    with Project.open(tmp_path / "p") as project:
        (slide,) = project.slides()
        assert Path(slide.path).name == real_slide.name
        assert 0 < len(project.patches())


@pytest.mark.realdata
def test_import_refuses_every_bad_real_file_and_writes_nothing(
    bad_real_slide: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, phrase = bad_real_slide
    assert main(["import", "--project", str(tmp_path / "p"), str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("error: ") and phrase in lines[-1] and path.name in lines[-1]
    with Project.open(tmp_path / "p") as project:
        assert project.slides() == [] and len(project.patches()) == 0


@pytest.mark.realdata
def test_import_refuses_patches_blown_up_from_a_wrong_mpp(
    real_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = real_data / "slides" / "generic-boxes-4levels.tiff"
    assert main(["import", "--project", str(tmp_path / "p"), str(path)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "352.778 µm/px (metadata)" in error and "--slide-mpp" in error


def test_import_says_when_no_patch_has_enough_tissue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cdfis_desktop.core.slides.tile_bank_tiff import write_tile_bank_tiff

    glass = np.full((256, 256, 3), 242, np.uint8)
    blank = write_tile_bank_tiff(
        tmp_path / "blank.tiff",
        (4096, 4096),
        0.5,
        lambda lv, c, r: np.zeros((r, c), int),
        lambda i: glass,
    )
    args = ["import", "--project", str(tmp_path / "p"), str(blank)]
    assert main([*args, "--patch-px", "64", "--mpp", "2"]) == 0
    err = capsys.readouterr().err
    assert "blank.tiff: no patch has 50% tissue by the brightfield rule (0.0% of the slide" in err
    assert main([*args, "--stain", "phase-contrast"]) == 2
    assert "unknown stain 'phase-contrast'" in capsys.readouterr().err
