"""``cdfis demo``: it refuses before training when the app cannot open on the display it
was given, and on a project that already holds a finished demo run it trains nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cdfis_desktop.cli.main import main


def test_demo_stops_before_training_when_the_app_cannot_open(tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "DISPLAY": ":987"}  # no such display
    env.pop("WAYLAND_DISPLAY", None)
    folder = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "cdfis_desktop", "demo", "--project", str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith("error: the desktop app cannot open here: ")
    assert "--no-gui" in result.stderr
    assert not folder.exists()  # nothing was generated or trained


def test_demo_on_a_trained_demo_project_opens_it_without_training(
    trained_project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cdfis_desktop.core.config import RunConfig
    from cdfis_desktop.core.demo.project import DEMO_RUN_NAME
    from cdfis_desktop.core.storage import Project

    folder = tmp_path / "demo"
    shutil.copytree(trained_project.folder, folder)
    with Project.open(folder) as project:
        run_id = project.create_run(RunConfig(), n_train=1, name=DEMO_RUN_NAME)
        project.set_run_status(run_id, "finished")
        runs_before = len(project.runs())
    report = folder / f"report-run-{run_id}.pdf"
    report.write_bytes(b"%PDF- the report of the earlier demo")
    assert main(["demo", "--project", str(folder), "--no-gui"]) == 0
    out = capsys.readouterr().out
    assert f"demo run {run_id} is already trained (--retrain to train again)" in out
    assert f"report:  {report}" in out
    with Project.open(folder) as project:
        assert len(project.runs()) == runs_before
    assert report.read_bytes() == b"%PDF- the report of the earlier demo"
