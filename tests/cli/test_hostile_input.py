"""Issue 16: hostile input through the CLI. Every case ends in exit 0 or 2 with one clear
line, writes nothing half-way, and leaves no stray file. Run in-process through ``main``,
except where the old behaviour was a hang or a broken pipe (a subprocess bounds those)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cdfis_desktop.cli.main import main
from cdfis_desktop.core.slides import write_pyramidal_tiff
from cdfis_desktop.core.storage import Project


def cdfis(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """Run ``cdfis ARGS`` in this process: (exit status, stdout, stderr)."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error_line(err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), err
    assert "Traceback" not in err and "unexpected error" not in err
    for word in words:
        assert word in lines[-1], lines[-1]


def write_sparse_tiff(path: Path, width: int, height: int, tile_px: int | None) -> Path:
    """A little-endian TIFF declaring ``width`` x ``height`` RGB px whose tiles (or single
    strip) hold no data: a few hundred bytes however large it claims to be."""
    if tile_px:
        n = -(-width // tile_px) * -(-height // tile_px)
        layout = [(322, 4, 1, tile_px), (323, 4, 1, tile_px), (324, 4, n, None), (325, 4, n, None)]
    else:
        n = 1
        layout = [(273, 4, 1, 0), (278, 4, 1, height), (279, 4, 1, 0)]
    entries = sorted(
        [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 3, None), (259, 3, 1, 1),
         (262, 3, 1, 2), (277, 3, 1, 3), (284, 3, 1, 1), *layout]
    )  # fmt: skip
    data_at = 8 + 2 + 12 * len(entries) + 4
    blobs = b""
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        if value is not None:
            field = struct.pack("<H" if kind == 3 else "<I", value).ljust(4, b"\0")
        else:
            payload = struct.pack("<3H", 8, 8, 8) if tag == 258 else bytes(4 * n)
            field = struct.pack("<I", data_at + len(blobs))
            blobs += payload
        ifd += struct.pack("<HHI", tag, kind, count) + field
    path.write_bytes(b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + blobs)
    return path


def copy_of(trained_project, tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    shutil.copytree(trained_project.folder, folder)
    return folder


# -- 3. bad input that used to exit 1 -------------------------------------------------------


def test_a_stripped_tiff_claiming_200000_px_is_refused(tmp_path, capsys) -> None:
    """Before: DecompressionBombError from Pillow, exit 1."""
    bomb = write_sparse_tiff(tmp_path / "bomb.tif", 200_000, 200_000, tile_px=None)
    code, _, err = cdfis(capsys, "info", bomb)
    assert code == 2
    assert_one_error_line(err, "pyramidal tiled TIFF")
    code, _, err = cdfis(capsys, "import", "--project", tmp_path / "p", bomb)
    assert code == 2
    assert_one_error_line(err, "bomb.tif")


def test_a_huge_single_level_slide_is_refused_before_anything_is_written(tmp_path, capsys) -> None:
    """Before: tissue detection read all of level 0 (MemoryError, exit 1)."""
    huge = write_sparse_tiff(tmp_path / "huge.tif", 200_000, 200_000, tile_px=4096)
    code, _, err = cdfis(capsys, "import", "--project", tmp_path / "p", huge)
    assert code == 2
    assert_one_error_line(err, "200,000 x 200,000 px", "CDFIS_MAX_READ_PIXELS")
    with Project.open(tmp_path / "p") as project:
        assert project.slides() == [] and project.class_names() == []


def test_the_read_limit_names_itself_and_can_be_raised(tmp_path, capsys, monkeypatch) -> None:
    """A 3000 px single-level slide under a 1 Mpx limit: refused, then imported once the
    limit is raised. Before: no limit at all (imported at once)."""
    rgb = np.full((3000, 3000, 3), 235, np.uint8)
    rgb[500:2500, 500:2500] = (180, 90, 160)
    slide = write_pyramidal_tiff(tmp_path / "flat.tiff", rgb, mpp=0.5, tile_px=4096)
    monkeypatch.setenv("CDFIS_MAX_READ_PIXELS", "1000000")
    code, _, err = cdfis(capsys, "import", "--project", tmp_path / "p", slide, "--mpp", "4")
    assert code == 2
    assert_one_error_line(err, "of level 0", "1,000,000 px", "CDFIS_MAX_READ_PIXELS")
    monkeypatch.setenv("CDFIS_MAX_READ_PIXELS", "20000000")
    code, out, err = cdfis(capsys, "import", "--project", tmp_path / "p", slide, "--mpp", "4")
    assert code == 0, err
    assert "total: 1 slide(s)" in out


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        (
            "nan.geojson",
            '{"type": "Feature", "properties": {"classification": {"name": "Tumor"}}, "geometry": '
            '{"type": "Polygon", "coordinates": [[[0, 0], [100, 0], [NaN, 100], [0, 0]]]}}',
            ("shape 1 (Tumor)", "not a finite number"),
        ),
        (
            "inf.geojson",
            '{"type": "Polygon", "coordinates": [[[0, 0], [Infinity, 0], [9, 9], [0, 0]]]}',
            ("not a finite number",),
        ),
        (
            "nan.xml",
            '<ASAP_Annotations><Annotations><Annotation PartOfGroup="Tumor" Type="Polygon">'
            '<Coordinates><Coordinate Order="0" X="0" Y="0"/><Coordinate Order="1" X="nan" '
            'Y="0"/><Coordinate Order="2" X="90" Y="90"/></Coordinates></Annotation>'
            "</Annotations></ASAP_Annotations>",
            ("shape 1 (Tumor)", "not a finite number"),
        ),
        ("deep.geojson", "[" * 200_000 + "]" * 200_000, ("nested too deeply",)),
    ],
)
def test_broken_annotations_exit_2(synthetic_slide, tmp_path, capsys, name, text, words) -> None:
    """Before: GEOSException (NaN/Infinity) and RecursionError (deep JSON), exit 1."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    code, _, err = cdfis(
        capsys, "import", "--project", tmp_path / "p", synthetic_slide.slide_path,
        "--annotations", path,
    )  # fmt: skip
    assert code == 2
    assert_one_error_line(err, *words)
    with Project.open(tmp_path / "p", create=True) as project:
        assert project.slides() == []


def test_class_names_with_dollars_are_drawn_as_written(trained_project, tmp_path, capsys) -> None:
    """Before: matplotlib read ``$_$`` as mathtext (ValueError, exit 1) in the report and
    the PNG label legend."""
    from pypdf import PdfReader

    folder = copy_of(trained_project, tmp_path)
    with Project.open(folder) as project:
        project.set_class_names(["Stroma $_$", "Tumor $x^2$"])
    code, _, err = cdfis(capsys, "report", "--project", folder, "-o", tmp_path / "r.pdf")
    assert code == 0, err
    text = "".join(page.extract_text() for page in PdfReader(tmp_path / "r.pdf").pages)
    assert "Tumor $x^2$" in text
    code, _, err = cdfis(
        capsys, "export", "--project", folder, "--format", "png", "--metric", "label",
        "--slide", "1", "--max-px", "256", "-o", tmp_path / "png",
    )  # fmt: skip
    assert code == 0, err


def test_a_server_database_url_is_refused(trained_project, tmp_path, capsys) -> None:
    """Before: ModuleNotFoundError (no PostgreSQL driver), exit 1; with a driver, a
    network connection."""
    folder = copy_of(trained_project, tmp_path)
    toml = folder / "project.toml"
    toml.write_text(
        toml.read_text() + 'database_url = "postgresql://user:pw@db.example.org/cdfis"\n'
    )
    code, _, err = cdfis(capsys, "runs", "--project", folder)
    assert code == 2
    assert_one_error_line(err, "not an SQLite file", "remove database_url")


# -- 5. a labels CSV with 1e300 -------------------------------------------------------------


def test_a_coordinate_too_large_for_an_integer_is_refused(
    synthetic_slide, tmp_path, capsys
) -> None:
    """Before: exit 0 with l0_x = -9223372036854775808 stored (the check ran after the
    overflowing cast)."""
    labels = tmp_path / "labels.csv"
    labels.write_text("x,y,label\n1e300,10,Tumor\n100,100,Stroma\n", encoding="utf-8")
    code, _, err = cdfis(
        capsys,
        "import",
        "--project",
        tmp_path / "p",
        synthetic_slide.slide_path,
        "--labels",
        labels,
    )
    assert code == 2
    assert_one_error_line(err, "outside the slide")
    with Project.open(tmp_path / "p") as project:
        assert len(project.patches()) == 0 and project.slides() == []


# -- 9. smaller cases -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["slide", "annotation", "labels"])
def test_a_fifo_is_refused_instead_of_waiting_forever(synthetic_slide, tmp_path, role) -> None:
    """Before: opening the named pipe blocked until a writer came (the subprocess timed
    out). A subprocess bounds the old hang."""
    fifo = tmp_path / {"slide": "s.svs", "annotation": "a.geojson", "labels": "l.csv"}[role]
    os.mkfifo(fifo)
    args = {
        "slide": [fifo],
        "annotation": [synthetic_slide.slide_path, "--annotations", fifo],
        "labels": [synthetic_slide.slide_path, "--labels", fifo],
    }[role]
    result = subprocess.run(
        [sys.executable, "-m", "cdfis_desktop", "import", "--project", str(tmp_path / "p"),
         *map(str, args)],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert_one_error_line(result.stderr, "named pipe")


def test_a_closed_pipe_ends_quietly(trained_project, tmp_path) -> None:
    """``cdfis runs | head``: before, BrokenPipeError and exit 1."""
    child = subprocess.Popen(
        [sys.executable, "-m", "cdfis_desktop", "runs", "--project", str(trained_project.folder)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # the reader is gone before the first line is written
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 0, err
    assert "Error" not in err


def test_a_slide_path_ending_in_dotdot_cannot_lead_out_of_the_export_folder(
    trained_project, tmp_path, capsys
) -> None:
    """Before: ``-o exp/{slide}/x.geojson`` wrote ``exp/../x.geojson``."""
    folder = copy_of(trained_project, tmp_path)
    with Project.open(folder) as project:
        slide_id = project.add_slide(
            str(tmp_path / "somewhere" / ".."), fingerprint="tampered", width=10, height=10, mpp=0.5
        )
    pattern = tmp_path / "exp" / "{slide}" / "x.geojson"
    code, out, err = cdfis(
        capsys, "export", "--project", folder, "--format", "geojson", "--slide", slide_id,
        "-o", pattern,
    )  # fmt: skip
    assert code == 0, err
    assert not (tmp_path / "x.geojson").exists()
    assert (tmp_path / "exp" / f"slide-{slide_id}" / "x.geojson").is_file()


def test_csv_export_cells_cannot_become_formulas(trained_project, tmp_path, capsys) -> None:
    """Before: slide and class names went verbatim into the CSV (live formulas)."""
    folder = copy_of(trained_project, tmp_path)
    evil_class = '=HYPERLINK("http://example.org/x")'
    with Project.open(folder) as project:
        project.set_class_names([evil_class, "+Tumor", "-1 stroma"])
        slide_id = project.add_slide(
            "/data/=cmd|' -c calc'!A0.svs", fingerprint="evil", width=512, height=512, mpp=0.5
        )
        project.add_patches(
            slide_id, l0_x=np.array([0]), l0_y=np.array([0]), l0_size=128, patch_px=64,
            mpp=1.0, label=0, tissue_fraction=1.0,
        )  # fmt: skip
    target = tmp_path / "patches.csv"
    code, _, err = cdfis(capsys, "export", "--project", folder, "--format", "csv", "-o", target)
    assert code == 0, err
    with target.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    evil = [r for r in rows if r["slide_id"] == str(slide_id)]
    assert evil[0]["slide"] == "'=cmd|' -c calc'!A0.svs"
    assert evil[0]["label_name"] == "'" + evil_class
    names = {r["label_name"] for r in rows}
    assert names <= {"'" + evil_class, "'+Tumor", "'-1 stroma", ""}
    assert all(not r["slide"].startswith(("=", "+", "-", "@")) for r in rows)
    assert any(r["favour"].startswith("-") for r in rows)  # numbers are left as numbers


def test_training_with_a_missing_slide_file_records_no_run(
    synthetic_slide, tmp_path, capsys
) -> None:
    """Before: the run was recorded, then failed at the first batch."""
    slide = tmp_path / "moved.tiff"
    shutil.copy(synthetic_slide.slide_path, slide)
    code, _, err = cdfis(
        capsys, "import", "--project", tmp_path / "p", slide, "--annotations",
        synthetic_slide.annotations_path, "--patch-px", "64", "--mpp", "2", "--min-tissue", "0.3",
    )  # fmt: skip
    assert code == 0, err
    slide.unlink()
    code, _, err = cdfis(
        capsys, "train", "--project", tmp_path / "p", "--steps", "2", "--batch", "4"
    )
    assert code == 2
    assert_one_error_line(err, "slide 1", "moved.tiff", "cdfis slides remove")
    with Project.open(tmp_path / "p") as project:
        assert project.runs() == []


def test_resuming_before_the_first_checkpoint_keeps_the_history(
    trained_project, tmp_path, capsys
) -> None:
    """Before: the resume restarted at step 0 and deleted the run's committed history."""
    from cdfis_desktop.core.config import RunConfig

    folder = copy_of(trained_project, tmp_path)
    with Project.open(folder) as project:
        run_id = project.create_run(RunConfig(batch_size=4), n_train=10, device="cpu")
        ids = project.patches().id[:8]
        with project.history_writer(run_id, flush_every_steps=2) as writer:
            for step in (1, 2, 3, 4):
                zeros = np.zeros(8, np.float32)
                writer.record(step, 0, ids, zeros + 1, zeros + 0.125, np.ones(8, int), zeros)
        project.set_run_status(run_id, "interrupted")
        before = project.patch_history(run_id, int(ids[0]))
    code, _, err = cdfis(capsys, "train", "--project", folder, "--resume", run_id)
    assert code == 2
    assert_one_error_line(err, "before its first checkpoint", "4 recorded steps")
    with Project.open(folder) as project:
        assert project.run(run_id).steps == 4
        after = project.patch_history(run_id, int(ids[0]))
        assert np.array_equal(after.step, before.step)


def test_a_read_only_project_can_be_listed_and_exported(trained_project, tmp_path, capsys) -> None:
    """Before: 'project.db cannot be written (unable to open database file)', exit 2."""
    folder = copy_of(trained_project, tmp_path)
    with read_only(folder):
        code, out, err = cdfis(capsys, "runs", "--project", folder)
        assert code == 0, err
        assert "finished" in out
        code, _, err = cdfis(
            capsys, "export", "--project", folder, "--format", "csv", "-o", tmp_path / "out.csv"
        )
        assert code == 0, err
        code, _, err = cdfis(capsys, "train", "--project", folder, "--steps", "1")
        assert code == 2
        assert_one_error_line(err, "read-only")
    assert len((tmp_path / "out.csv").read_text().splitlines()) == trained_project.n_patches + 1


class read_only:  # noqa: N801 - used like a function
    """Make ``folder`` read-only: a read-only bind mount as root (permissions do not bind
    root), the permission bits otherwise; skips when neither works."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.mounted = False

    def __enter__(self) -> Path:
        if os.geteuid() == 0:
            steps = [
                ["mount", "--bind", str(self.folder), str(self.folder)],
                ["mount", "-o", "remount,bind,ro", str(self.folder)],
            ]
            for step in steps:
                if subprocess.run(step, capture_output=True, check=False).returncode != 0:
                    self._unmount()
                    pytest.skip("a read-only bind mount is not possible here")
                self.mounted = True
        else:
            for path in [self.folder, *self.folder.rglob("*")]:
                path.chmod(path.stat().st_mode & ~0o222)
        return self.folder

    def __exit__(self, *exc: object) -> None:
        if self.mounted:
            self._unmount()
        else:
            for path in [self.folder, *self.folder.rglob("*")]:
                path.chmod(path.stat().st_mode | 0o200)

    def _unmount(self) -> None:
        subprocess.run(["umount", str(self.folder)], capture_output=True, check=False)
        self.mounted = False


def test_a_pathological_annotation_stops_at_the_time_limit(
    synthetic_slide, tmp_path, capsys, monkeypatch
) -> None:
    """Shapes that cross themselves everywhere: make_valid would take minutes (one
    200-vertex polygon ~17 s, 2 MB of them 105 s). Before: no limit, no progress."""
    rng = np.random.default_rng(0)
    features = []
    for _ in range(3):
        ring = rng.uniform(0, 1500, (200, 2)).round(1).tolist()
        features.append(
            {"type": "Feature", "properties": {"classification": {"name": "Tumor"}},
             "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}}
        )  # fmt: skip
    path = tmp_path / "scribble.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    monkeypatch.setenv("CDFIS_ANNOTATION_TIMEOUT_S", "2")
    code, _, err = cdfis(
        capsys, "import", "--project", tmp_path / "p", synthetic_slide.slide_path,
        "--annotations", path,
    )  # fmt: skip
    assert code == 2
    assert_one_error_line(err, "longer than the limit of 2 s", "CDFIS_ANNOTATION_TIMEOUT_S")
