"""``cdfis compare`` end to end on a small generated patch set: real import (one mosaic
slide per patient), real training steps, real files; and its refusals (exit 2, one line)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cdfis_desktop.cli.main import main
from cdfis_desktop.core.experiments.compare import SAMPLER_PRESETS, WARMUP_RUN_NAME, parse_samplers
from cdfis_desktop.core.experiments.comparison_outputs import SUMMARY_COLUMNS
from cdfis_desktop.core.reporting.comparisons import stored_comparisons
from cdfis_desktop.core.storage import Project

N_PATIENTS = 10
PER_PATIENT = 12
FAST = ("--batch", "8", "--input-px", "32", "--device", "cpu", "--presample", "2")


@pytest.fixture(scope="module")
def patient_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 patients of 12 patches (32 px PNGs, class 1 redder than class 0): patient p0 is
    all class 0, p1 all class 1, the others half and half. Imported with import-patches."""
    root = tmp_path_factory.mktemp("patches")
    rng = np.random.default_rng(0)
    rows = []
    for patient in range(N_PATIENTS):
        for k in range(PER_PATIENT):
            label = {0: 0, 1: 1}.get(patient, k % 2)
            colour = np.array([200 + 40 * label, 150, 190 - 20 * label], dtype=float)
            pixels = np.clip(rng.normal(colour, 20, size=(32, 32, 3)), 0, 255).astype(np.uint8)
            name = f"p{patient}/{k}.png"
            (root / f"p{patient}").mkdir(exist_ok=True)
            Image.fromarray(pixels).save(root / name)
            rows.append([name, f"p{patient}", (k % 4) * 32, (k // 4) * 32, label, 32, 32])
    with (root / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "patient", "x", "y", "label", "width", "height"])
        writer.writerows(rows)
    folder = tmp_path_factory.mktemp("project") / "idc"
    code = main(
        [
            "import-patches",
            "--project",
            str(folder),
            "--csv",
            str(root / "labels.csv"),
            "--root",
            str(root),
            "--class-map",
            "normal=0,tumour=1",
        ]
    )
    assert code == 0
    return folder


def test_compare_runs_every_sampler_and_seed_and_writes_its_files(
    patient_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "compare",
            "--project",
            str(patient_project),
            "--samplers",
            "uniform,cdf-history",
            "--seeds",
            "2",
            "--time-budget",
            "0.5",
            "--val-fraction",
            "0.2",
            "--test-fraction",
            "0.2",
            "--val-cadence",
            "0.25",
            "--warmup-run",
            "0.2",
            "--target-accuracy",
            "0.75",
            "--out",
            str(out),
            *FAST,
        ]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    for name in ("results.csv", "runs.csv", "summary.csv", "fixed_budget.csv", "summary.md"):
        assert (out / name).stat().st_size > 0
    assert (out / "comparison.png").stat().st_size > 10_000
    with (out / "summary.csv").open() as handle:
        summary = list(csv.DictReader(handle))
    assert list(summary[0]) == list(SUMMARY_COLUMNS)
    assert [row["sampler"] for row in summary] == ["uniform", "cdf-history"]
    assert all(row["seeds"] == "2" for row in summary)
    with (out / "runs.csv").open() as handle:
        runs = list(csv.DictReader(handle))
    assert sorted((r["sampler"], r["seed"]) for r in runs) == [
        ("cdf-history", "0"),
        ("cdf-history", "1"),
        ("uniform", "0"),
        ("uniform", "1"),
    ]
    with (out / "results.csv").open() as handle:
        results = list(csv.DictReader(handle))
    for run in runs:  # the test set was scored at the full budget of every run
        tested = [r for r in results if r["run_id"] == run["run_id"] and r["test_share"]]
        assert "1" in {r["test_share"] for r in tested}
    summary_md = (out / "summary.md").read_text()
    assert "## Conclusion" in summary_md and "Only 2 seed(s)" in summary_md
    assert "Protocol overhead" in summary_md
    with Project.open(patient_project) as project:
        stored = {r.id: r for r in project.runs()}
    warm_up = [r for r in stored.values() if r.name == WARMUP_RUN_NAME]
    assert len(warm_up) == 1 and warm_up[0].id not in {int(r["run_id"]) for r in runs}
    assert all(stored[int(r["run_id"])].status == "finished" for r in runs)
    (kept,) = stored_comparisons(patient_project)
    assert set(kept.run_ids) == {int(r["run_id"]) for r in runs}
    assert kept.summary_text() == summary_md


def test_all_means_every_preset() -> None:
    assert parse_samplers("all") == list(SAMPLER_PRESETS)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--val-groups", "p0", "--test-fraction", "0.2"], "validation set (1 patient(s)) has no"),
        (["--test-groups", "p1"], "test set (1 patient(s)) has no patch of class(es) 0"),
        (["--val-groups", "p77"], "validation patient(s) p77 have no labelled patches"),
        (["--val-groups", "p2", "--test-groups", "p2"], "given for both validation and test"),
        (["--val-groups", "p2", "--val-fraction", "0.3"], "by name or by share, not both"),
        (["--target-accuracy", "0.5"], "at or below the 0.5000 a model scores"),
        (["--target-metric", "accuracy", "--target-accuracy", "0.4"], "majority class"),
        (["--val-fraction", "0.5", "--test-fraction", "0.5"], "leave no patient"),
        (["--samplers", "uniform,best"], "unknown sampler(s) best"),
        (["--val-every", "3"], "leave out --val-every"),
    ],
)
def test_bad_options_are_one_line_errors_before_training(
    patient_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args, message
) -> None:
    with Project.open(patient_project) as project:
        runs_before = len(project.runs())
    code = main(
        [
            "compare",
            "--project",
            str(patient_project),
            "--time-budget",
            "1",
            "--out",
            str(tmp_path / "out"),
            *FAST,
            *args,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error:") and message in err, err
    assert not (tmp_path / "out").exists()
    with Project.open(patient_project) as project:
        assert len(project.runs()) == runs_before  # nothing trained


def test_a_time_budget_is_required(patient_project: Path, capsys) -> None:
    assert main(["compare", "--project", str(patient_project), "--steps", "3", *FAST]) == 2
    assert "needs --time-budget" in capsys.readouterr().err
