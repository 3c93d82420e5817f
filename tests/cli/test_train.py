"""``cdfis train`` end to end: a real project imported from the synthetic slide, real steps."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cdfis_desktop.cli.main import main
from cdfis_desktop.core.storage import Project

TRAIN = ("--batch", "8", "--input-px", "32", "--device", "cpu")


@pytest.fixture
def slide_project(tmp_path: Path, synthetic_slide) -> Path:
    """The synthetic slide imported as 32 px patches at 2 µm/px (about 100 patches)."""
    folder = tmp_path / "project"
    code = main(
        [
            "import", "--project", str(folder), str(synthetic_slide.slide_path),
            "--annotations", str(synthetic_slide.annotations_path),
            "--patch-px", "32", "--mpp", "2.0",
        ]
    )  # fmt: skip
    assert code == 0
    return folder


def test_train_records_a_finished_run(slide_project: Path, capsys) -> None:
    code = main(["train", "--project", str(slide_project), "--steps", "3", "--sampler", "cdf",
                 "--presample", "2", *TRAIN])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "run 1 finished: 3 steps" in out and "warning: the project has a single" in out
    with Project.open(slide_project) as project:
        summary = project.run(1)
        assert summary.status == "finished" and summary.sampler == "cdf/presample/loss"
        patches = project.patches()
        labelled = set(patches.id[patches.label >= 0].tolist())
        with sqlite3.connect(project.db_path) as conn:
            recorded = {r[0] for r in conn.execute("SELECT patch_id FROM history WHERE run_id = 1")}
            steps = {
                r[0]
                for r in conn.execute("SELECT block + step_offset FROM history WHERE run_id = 1")
            }
            predicted = {r[0] for r in conn.execute("SELECT patch_id FROM predictions")}
        assert recorded and recorded <= labelled and steps == {1, 2, 3}
        assert predicted == labelled


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--resume", "1", "--sampler", "cdf"], "drop --sampler"),
        (["--presample", "0.5", "--sampler", "cdf"], "presample ratio must be >= 1"),
        (["--resume", "7"], "no run with id 7"),
        (["--batch", "100000", "--input-px", "32"], "batch size 100000"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--warmup", "sometimes"], "unknown warm-up rule"),
    ],
)
def test_bad_options_are_one_line_errors(slide_project: Path, capsys, args, message) -> None:
    code = main(["train", "--project", str(slide_project), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error:") and message in err


def test_a_folder_that_is_not_a_project_is_refused(tmp_path: Path, capsys) -> None:
    assert main(["train", "--project", str(tmp_path)]) == 2
    assert "is not a cdfis project" in capsys.readouterr().err


@pytest.mark.slow
def test_ctrl_c_stops_gracefully_and_the_run_resumes(slide_project: Path, capsys) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "cdfis_desktop", "train", "--project", str(slide_project),
         "--steps", "12", *TRAIN],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("validation at step 0"):
            process.send_signal(signal.SIGINT)
            break
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert f"cdfis train --project {slide_project.resolve()} --resume 1" in out
    with Project.open(slide_project) as project:
        assert project.run(1).status == "cancelled"
        stopped_at = project.latest_checkpoint(1).step
    assert stopped_at < 12
    assert main(["train", "--project", str(slide_project), "--resume", "1"]) == 0
    assert f"resumed at step {stopped_at}" in capsys.readouterr().out
    with Project.open(slide_project) as project:
        summary = project.run(1)
        assert summary.status == "finished" and summary.steps == 12
        with sqlite3.connect(project.db_path) as conn:
            steps = np.array(
                [r[0] for r in conn.execute("SELECT DISTINCT block + step_offset FROM history")]
            )
    assert sorted(steps.tolist()) == list(range(1, 13))


def test_train_with_a_preset_and_an_override(slide_project: Path, capsys) -> None:
    code = main(["train", "--project", str(slide_project), "--steps", "2", "--preset",
                 "cdf-history", "--floor", "0.2", *TRAIN])  # fmt: skip
    assert code == 0, capsys.readouterr().out
    with Project.open(slide_project) as project:
        summary = project.run(1)
        assert summary.sampler == "cdf/history/loss"
        assert summary.config["sampler"]["floor"] == 0.2


def test_without_sampler_options_train_uses_the_default_preset(slide_project: Path, capsys) -> None:
    """No --preset/--sampler/--mode: the best-measured preset with its measured settings;
    --sampler uniform alone: plain uniform, not the preset."""
    from cdfis_desktop.core.demo.project import demo_run_config

    assert main(["train", "--project", str(slide_project), "--steps", "2", *TRAIN]) == 0
    assert main(["train", "--project", str(slide_project), "--steps", "2", "--sampler",
                 "uniform", *TRAIN]) == 0  # fmt: skip
    capsys.readouterr()
    with Project.open(slide_project) as project:
        default, uniform = project.run(1), project.run(2)
    assert default.sampler == "cdf/prune/loss"
    assert default.config["sampler"]["floor"] == 0.1
    assert default.config["sampler"]["warmup"] == "epochs:1"
    assert demo_run_config().sampler.mode == "prune"  # the demo and the form agree
    assert uniform.sampler.startswith("uniform/")


def test_an_unknown_preset_is_refused(slide_project: Path, capsys) -> None:
    assert main(["train", "--project", str(slide_project), "--preset", "best"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown sampler preset 'best'") and err.count("\n") == 1
