"""``cdfis slides remove``: a slide goes with its patches and history, runs stay, its
mosaic file goes when the project owns it, and nothing is removed while a run trains."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from cdfis_desktop.cli.main import main
from cdfis_desktop.core.config import RunConfig
from cdfis_desktop.core.storage import Project


def copy_of(trained_project, tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    shutil.copytree(trained_project.folder, folder)
    return folder


def test_removing_a_slide_removes_its_history_and_keeps_the_rest(
    trained_project, tmp_path, capsys
) -> None:
    folder = copy_of(trained_project, tmp_path)
    with Project.open(folder) as project:
        kept = project.slide_measurements(trained_project.run_id, 1)
        gone_ids = project.patches(slide_id=2).id
        user_file = project.slides()[1].file
    assert main(["slides", "remove", "--project", str(folder), "2"]) == 0
    out = capsys.readouterr().out
    assert f"removed slide 2 (demo-1.tiff) with {gone_ids.size} patches" in out
    assert "mosaic" not in out and user_file.exists()  # the user's slide file is untouched
    with Project.open(folder) as project:
        assert [s.id for s in project.slides()] == [1]
        assert len(project.runs()) == 2
        assert project.patch_history(trained_project.run_id, int(gone_ids[0])).step.size == 0
        after = project.slide_measurements(trained_project.run_id, 1)
        assert np.array_equal(after.times_chosen, kept.times_chosen)
        assert np.array_equal(after.score_sum, kept.score_sum)
    assert main(["check", "--project", str(folder)]) == 0


def test_a_mosaic_owned_by_the_project_is_deleted_with_its_slide(tmp_path, capsys) -> None:
    root = tmp_path / "set"
    rows = [("a/1.png", "a", 0, 0, 1), ("b/2.png", "b", 0, 0, 0)]
    for name, *_ in rows:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((16, 16, 3), 120, np.uint8)).save(root / name)
    with (root / "labels.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([["file", "patient", "x", "y", "label"], *rows])
    project = tmp_path / "p"
    args = ["import-patches", "--project", str(project), "--csv", str(root / "labels.csv")]
    assert main([*args, "--root", str(root)]) == 0
    assert main(["slides", "remove", "--project", str(project), "a.tiff"]) == 0
    assert "its mosaic file was deleted" in capsys.readouterr().out
    assert sorted(p.name for p in (project / "slides").iterdir()) == ["b.tiff"]
    assert main([*args, "--root", str(root)]) == 0  # and it can be imported again
    assert sorted(p.name for p in (project / "slides").iterdir()) == ["a.tiff", "b.tiff"]


def test_nothing_is_removed_while_a_run_trains(trained_project, tmp_path, capsys) -> None:
    folder = copy_of(trained_project, tmp_path)
    with Project.open(folder) as trainer:  # holds the new run's writer lock, as training does
        run_id = trainer.create_run(RunConfig(), n_train=10, device="cpu")
        assert main(["slides", "remove", "--project", str(folder), "1"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and f"run {run_id} is being trained" in err
        assert len(trainer.slides()) == 2


def test_an_unknown_slide_is_named_with_the_choices(trained_project, capsys) -> None:
    assert main(["slides", "remove", "--project", str(trained_project.folder), "7"]) == 2
    err = capsys.readouterr().err
    assert "no slide" in err and "1 (demo-1.tiff), 2 (demo-1.tiff)" in err
    assert main(["slides", "remove", "--project", str(trained_project.folder), "demo-1"]) == 2
    assert "2 slides" in capsys.readouterr().err
