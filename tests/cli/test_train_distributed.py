"""Data-parallel training with two CPU processes (gloo) launched by torchrun."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from cdfis_desktop.cli.main import main
from cdfis_desktop.core.storage import Project
from cdfis_desktop.core.training.checkpoints import load_checkpoint


@pytest.mark.slow
def test_two_gloo_processes_train_one_run(tmp_path: Path, synthetic_slide) -> None:
    folder = tmp_path / "project"
    assert main(["import", "--project", str(folder), str(synthetic_slide.slide_path),
                 "--annotations", str(synthetic_slide.annotations_path),
                 "--patch-px", "32", "--mpp", "2.0"]) == 0  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "cdfis_desktop", "train", "--project", str(folder), "--steps", "4",
         "--batch", "8", "--input-px", "32", "--device", "cpu"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("run 1 finished: 4 steps") == 1  # only rank 0 prints
    with Project.open(folder) as project:
        runs = project.runs()
        assert [r.status for r in runs] == ["finished"]  # one run, written once
        n_train = runs[0].n_train
        with sqlite3.connect(project.db_path) as conn:
            rows = conn.execute(
                "SELECT block + step_offset, patch_id, times_chosen FROM history"
            ).fetchall()
        checkpoint = load_checkpoint(Path(project.latest_checkpoint(1).path))
    chosen_per_step = Counter()
    for step, _, chosen in rows:
        chosen_per_step[step] += chosen
    # both ranks' draws: 2 x batch 8 chosen per step, from disjoint shards of the training set
    assert chosen_per_step == {1: 16, 2: 16, 3: 16, 4: 16}
    assert len(rows) == 4 * 16 and n_train > 16
    ranks = checkpoint["ranks"]
    assert len(ranks) == 2
    assert ranks[0]["weights_sha1"] == ranks[1]["weights_sha1"]
    assert ranks[0]["sampler"]["dataset_size"] + ranks[1]["sampler"]["dataset_size"] == n_train
