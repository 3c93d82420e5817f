"""``cdfis info``: text and JSON output, and exit status 2 with one line for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cdfis_desktop.cli.main import main

BAD_SLIDE_INPUTS = {
    "missing": "no such file",
    "folder": "is a folder",
    "empty": "is empty",
    "truncated": "truncated or damaged",
    "png": "plain PNG image",
    "text": "not in a slide format",
}


def test_info_text(synthetic_slide, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(synthetic_slide.slide_path)]) == 0
    out = capsys.readouterr().out
    assert "generic-tiff" in out and "2048 x 1536" in out and "0.5 µm/px (metadata)" in out
    assert "1: 512 x 384 px, downsample 4" in out


def test_info_json_with_override(synthetic_slide, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(synthetic_slide.slide_path), "--json", "--mpp", "0.25"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["dimensions"] == [2048, 1536]
    assert info["mpp"] == 0.25 and info["mpp_source"] == "override"
    assert [level["downsample"] for level in info["levels"]] == [1.0, 4.0, 16.0]
    assert info["associated_images"] == {} and info["warnings"] == []


@pytest.mark.parametrize("kind", sorted(BAD_SLIDE_INPUTS))
def test_info_bad_input_exits_2(kind: str, bad_slide_input) -> None:
    path = bad_slide_input(kind)
    result = subprocess.run(
        [sys.executable, "-m", "cdfis_desktop.cli.main", "info", str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert path.name in lines[0] and BAD_SLIDE_INPUTS[kind] in lines[0]


@pytest.mark.realdata
def test_info_real_slide_without_mpp(real_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = real_data / "slides" / "tcga-cr-7395-01a-01-ts1.svs"
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["mpp"] is None and info["mpp_source"] == "fallback"
    assert len(info["warnings"]) == 1 and "no resolution" in info["warnings"][0]
    assert info["associated_images"] == {"thumbnail": [956, 768]}


@pytest.mark.realdata
def test_info_on_every_real_slide(real_slide: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Compared with openslide-python's own reading of the file."""
    import openslide

    assert main(["info", str(real_slide), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    reference = openslide.OpenSlide(str(real_slide))
    assert info["format"] == openslide.OpenSlide.detect_format(str(real_slide))
    assert info["dimensions"] == list(reference.dimensions)
    assert [level["dimensions"] for level in info["levels"]] == [
        list(d) for d in reference.level_dimensions
    ]
    assert sorted(info["associated_images"]) == sorted(reference.associated_images)


@pytest.mark.realdata
def test_info_refuses_every_bad_real_file_in_one_line(
    bad_real_slide: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, phrase = bad_real_slide
    assert main(["info", str(path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1 and lines[0].startswith("error: ")
    assert path.name in lines[0] and phrase in lines[0]
