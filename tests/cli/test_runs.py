"""``cdfis runs``: table and JSON output on a real project; bad folders exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cdfis_desktop.cli.main import main
from cdfis_desktop.core.config import RunConfig, SamplerConfig
from cdfis_desktop.core.storage import Project


@pytest.fixture
def project_with_runs(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    with Project.create(folder) as project:
        done = project.create_run(
            RunConfig(batch_size=128, seed=4, sampler=SamplerConfig(rule="cdf", mode="history")),
            n_train=10,
            device="cpu",
            name="cdf-h",
        )
        project.log_metrics(done, 100, 0, 12.0, val_accuracy=0.8125)
        project.set_run_status(done, "finished")
        project.create_run(RunConfig(seed=1), n_train=10, device="cpu")
    return folder  # the second run was left running by a closed project: interrupted


def test_runs_table(project_with_runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--project", str(project_with_runs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["ID", "NAME", "STATUS", "SAMPLER"]
    assert lines[1].split()[:4] == ["2", "-", "interrupted", "uniform/presample/loss"]
    assert lines[2].split()[:6] == ["1", "cdf-h", "finished", "cdf/history/loss", "4", "100"]
    assert "0.8125" in lines[2]


def test_runs_json(project_with_runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--project", str(project_with_runs), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in runs] == ["interrupted", "finished"]
    assert runs[1]["best_val_accuracy"] == 0.8125 and runs[1]["steps"] == 100
    assert runs[1]["config"]["batch_size"] == 128 and runs[1]["duration_s"] >= 0


def test_runs_empty_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Project.create(tmp_path / "p").close()
    assert main(["runs", "--project", str(tmp_path / "p")]) == 0
    assert "no runs" in capsys.readouterr().out


def test_runs_on_a_folder_that_is_not_a_project(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cdfis_desktop.cli.main", "runs", "--project", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "not a cdfis project" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_upgrade_at_open_shows_its_progress_on_stderr(
    project_with_runs: Path, capsys: pytest.CaptureFixture[str], as_version_5
) -> None:
    import sqlite3

    assert main(["runs", "--project", str(project_with_runs)]) == 0
    assert capsys.readouterr().err == ""  # nothing to upgrade or check: silent
    conn = sqlite3.connect(project_with_runs / "project.db")
    with conn:
        as_version_5(conn)
    conn.close()
    assert main(["runs", "--project", str(project_with_runs)]) == 0
    captured = capsys.readouterr()
    progress = [line for line in captured.err.splitlines() if line.startswith("[")]
    assert progress, captured.err  # "[done/total] message" lines of the backup and migration
    assert "cdf-h" in captured.out
