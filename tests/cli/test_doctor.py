"""``cdfis doctor``: the report's sections, its exit status, and the checks it makes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cdfis_desktop.cli.main import main


def test_doctor_reports_every_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert main(["doctor", "--json", "--project", str(tmp_path / "new")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["qt"]["platform"] == "offscreen" and report["qt"]["problem"] is None
    assert report["openslide"]["library"]  # the OpenSlide C library's version
    assert report["torch"]["version"] and isinstance(report["torch"]["cuda_available"], bool)
    assert report["project"] == {
        "path": str((tmp_path / "new").resolve()),
        "exists": False,
        "is_project": False,
        "writable": True,
        "problem": None,
    }
    assert report["problems"] == []
    assert list(tmp_path.iterdir()) == []  # the write check leaves nothing behind


def test_doctor_names_each_problem_and_exits_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.delenv("DISPLAY", raising=False)
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert main(["doctor", "--project", str(a_file / "project")]) == 3
    out = capsys.readouterr().out
    problems = [line for line in out.splitlines() if line.startswith("problem:")]
    assert len(problems) == 2
    assert "desktop app:" in problems[0]
    assert "project folder:" in problems[1] and "is not a folder" in problems[1]
