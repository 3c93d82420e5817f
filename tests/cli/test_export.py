"""``cdfis export`` in each format; bad input exits 2 with one ``error:`` line."""

from __future__ import annotations

import csv
import json

import pytest

from cdfis_desktop.cli.main import main
from cdfis_desktop.core.storage import Project


def _export(project_folder, *args: str) -> int:
    return main(["export", "--project", str(project_folder), *args])


def test_csv_export(trained_project, tmp_path, capsys) -> None:
    target = tmp_path / "patches.csv"
    assert _export(trained_project.folder, "--run", "1", "--format", "csv", "-o", str(target)) == 0
    with target.open(newline="", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == trained_project.n_patches
    assert f"{trained_project.n_patches} patches of run 1" in capsys.readouterr().out


def test_geojson_export_one_file_per_slide(trained_project, tmp_path) -> None:
    code = _export(trained_project.folder, "--format", "geojson", "-o", str(tmp_path / "geo"))
    assert code == 0
    files = sorted((tmp_path / "geo").iterdir())
    assert [f.name for f in files] == ["demo-1-1.geojson", "demo-1-2.geojson"]
    assert json.loads(files[0].read_text())["type"] == "FeatureCollection"


def test_png_export_at_a_resolution(trained_project, tmp_path) -> None:
    code = _export(
        trained_project.folder,
        "--format",
        "png",
        "--slide",
        "1",
        "--mpp",
        "8",
        "--metric",
        "mean_score",
        "-o",
        str(tmp_path / "png"),
    )
    assert code == 0
    names = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert names == [
        "demo-1-mean_score-legend.png",
        "demo-1-mean_score-on-slide.png",
        "demo-1-mean_score-overlay.png",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--run", "7", "--format", "csv", "-o", "x.csv"], "has no run 7"),
        (["--format", "csv", "-o", "missing/x.csv"], "cannot write"),
        (["--format", "png", "--slide", "5", "-o", "png"], "no slide with id 5"),
        (["--format", "png", "--colormap", "rainbow", "-o", "png"], "unknown colormap"),
    ],
)
def test_bad_input_exits_2(trained_project, tmp_path, capsys, monkeypatch, args, message) -> None:
    monkeypatch.chdir(tmp_path)
    assert _export(trained_project.folder, *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and message in err[-1]


def test_no_runs_exits_2(tmp_path, capsys) -> None:
    Project.create(tmp_path / "empty").close()
    assert _export(tmp_path / "empty", "--format", "csv", "-o", str(tmp_path / "x.csv")) == 2
    assert "has no runs yet" in capsys.readouterr().err
