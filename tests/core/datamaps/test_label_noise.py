"""Flipped labels are found by the area under the margin: a small but real training run
(real steps, real store), scored against the chance of a random ranking."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from cdfis_desktop.core.config import RunConfig, SamplerConfig
from cdfis_desktop.core.experiments.label_noise import flip_labels, recovery_by_epoch
from cdfis_desktop.core.training.engine import Trainer
from cdfis_desktop.core.training.reports import RunStarted

sys.path.insert(0, str(Path(__file__).parents[1] / "training"))
from synthetic_project import make_project  # noqa: E402


def _hypergeometric_tail(hits: int, k: int, positives: int, total: int) -> float:
    """P(at least ``hits`` positives among ``k`` drawn at random without replacement)."""
    return sum(
        math.comb(positives, h) * math.comb(total - positives, k - h)
        for h in range(hits, min(k, positives) + 1)
    ) / math.comb(total, k)


def test_flip_labels_is_seeded_and_changes_exactly_the_chosen_entries() -> None:
    labels = np.arange(40) % 3
    noisy, flipped = flip_labels(labels, np.arange(10, 40), 0.2, 3, seed=4)
    again, same = flip_labels(labels, np.arange(10, 40), 0.2, 3, seed=4)
    assert flipped.tolist() == same.tolist() and np.array_equal(noisy, again)
    assert len(flipped) == 6 and flipped.min() >= 10
    changed = np.flatnonzero(noisy != labels)
    assert changed.tolist() == flipped.tolist()


@pytest.mark.slow
def test_aum_ranks_flipped_labels_first(tmp_path: Path) -> None:
    project, dataset = make_project(tmp_path / "p", n_per_group=48, n_groups=4, px=32, seed=1)
    config = RunConfig(
        sampler=SamplerConfig(rule="uniform"), batch_size=16, epochs=6, input_px=32,
        device="cpu", augment=False, val_groups=("patient-3",), seed=0,
    )  # fmt: skip
    train = np.flatnonzero(dataset.patch_ids < dataset.patch_ids[3 * 48])  # patients 0-2
    noisy, flipped = flip_labels(dataset.labels, train, 0.1, 2, seed=0)
    reports = list(Trainer(project, dataset=dataset.relabelled(noisy)).iter_run(config))
    started = reports[0]
    assert isinstance(started, RunStarted) and started.n_train == len(train)
    rows = recovery_by_epoch(
        project, started.run_id, dataset.patch_ids[train], dataset.patch_ids[flipped]
    )
    assert [r.epochs for r in rows] == list(range(1, 7))
    final = rows[-1]
    hits = round(final.precision["aum"] * final.k)
    chance = _hypergeometric_tail(hits, final.k, final.k, len(train))
    assert chance < 1e-6, (final, chance)  # a random ranking almost never does this well
    assert final.precision["aum"] >= 0.8, rows  # the goal, at this small scale
    project.close()
