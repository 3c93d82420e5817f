"""Review decisions change what the next run trains on (by default), as of its start."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from cdfis_desktop.core.config import RunConfig
from cdfis_desktop.core.storage import ReviewInput
from cdfis_desktop.core.training.engine import Trainer
from cdfis_desktop.core.training.prepare import prepare_data

from .synthetic_project import make_project


def _used(data) -> dict[int, int]:
    """patch id -> label of every patch the run trains or validates on."""
    rows = np.concatenate([data.train_indices, data.val_indices])
    return dict(
        zip(data.dataset.patch_ids[rows].tolist(), data.dataset.labels[rows].tolist(), strict=True)
    )


def test_relabel_and_exclude_apply_as_of_the_runs_start(tmp_path: Path) -> None:
    project, dataset = make_project(tmp_path / "p", n_per_group=8, n_groups=2, px=32)
    relabelled, excluded, confirmed = (int(i) for i in dataset.patch_ids[:3])  # labels 0, 1, 0
    project.add_review_decisions(
        [
            ReviewInput(relabelled, "relabel", "ana", label=1),
            ReviewInput(excluded, "exclude", "ana", reason="artefact"),
            ReviewInput(confirmed, "confirm", "ana"),
        ],
        now=1000.0,
    )
    config = RunConfig(batch_size=4, input_px=32, device="cpu")
    before = _used(prepare_data(project, RunConfig(batch_size=4, review_as_of=999.0), dataset))
    assert before[relabelled] == 0 and excluded in before
    after = _used(prepare_data(project, RunConfig(batch_size=4, review_as_of=1000.0), dataset))
    assert after[relabelled] == 1 and excluded not in after and after[confirmed] == 0
    assert len(after) == len(before) - 1
    ignored = prepare_data(
        project, RunConfig(batch_size=4, use_review=False, review_as_of=1e12), dataset
    )
    assert _used(ignored) == before
    assert dataset.labels[0] == 0  # the caller's dataset is not changed
    started = time.time()
    reports = list(Trainer(project, dataset=dataset).iter_run(config))
    stored = project.run(reports[-1].run_id).config
    assert stored["use_review"] is True and started <= stored["review_as_of"] <= time.time()
    project.close()
