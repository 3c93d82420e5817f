"""``cdfis compare`` core: sampler presets, run order, and a real comparison on a small
project (real store, real training steps, in-memory images)."""

from __future__ import annotations

import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from cdfis_desktop.core.config import RunConfig, SamplerConfig
from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.experiments.compare import (
    WARMUP_RUN_NAME,
    Protocol,
    judge_comparison,
    parse_samplers,
    run_comparison,
    run_order,
    sampler_config,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from synthetic_project import make_project  # noqa: E402


def test_parse_samplers_accepts_presets_and_rejects_the_rest() -> None:
    assert parse_samplers("uniform, cdf,cdf-history") == ["uniform", "cdf-presample", "cdf-history"]
    with pytest.raises(ConfigError, match="unknown sampler"):
        parse_samplers("uniform,best")
    with pytest.raises(ConfigError, match="twice"):
        parse_samplers("topk,topk")


def test_sampler_config_keeps_the_shared_settings() -> None:
    base = SamplerConfig(presample_ratio=4, floor=0.1, warmup="epochs:1")
    history = sampler_config("cdf-history", base)
    assert (history.rule, history.mode, history.floor, history.warmup) == (
        "cdf",
        "history",
        0.1,
        "epochs:1",
    )
    assert sampler_config("uniform", base).warmup == "none"


def test_run_order_is_a_seeded_permutation_that_changes_with_the_seed() -> None:
    samplers = ["uniform", "topk", "cdf-presample", "cdf-history"]
    orders = [run_order(samplers, 0, seed) for seed in range(40)]
    assert all(sorted(o) == sorted(samplers) for o in orders)
    assert orders == [run_order(samplers, 0, seed) for seed in range(40)]  # reproducible
    first = Counter(o[0] for o in orders)
    assert set(first) == set(samplers) and max(first.values()) < 20  # uniform not always first


def test_a_real_comparison_trains_on_one_split_and_scores_the_test_set(tmp_path: Path) -> None:
    project, dataset = make_project(tmp_path / "project", n_per_group=8, n_groups=8, px=32)
    base = RunConfig(
        sampler=SamplerConfig(presample_ratio=2, warmup="steps:1"),
        batch_size=8,
        epochs=None,
        time_budget_s=0.3,
        input_px=32,
        augment=False,
        checkpoint_every_steps=1000,
        device="cpu",
    )
    protocol = Protocol(
        samplers=("uniform", "cdf-presample"),
        seeds=2,
        val=0.25,
        test=0.25,
        val_cadence=0.25,
        warmup_run_share=0.2,
        target_value=0.6,
    )
    runs = run_comparison(project, base, protocol, dataset=dataset)
    stored = project.runs()
    assert [r.name for r in stored].count(WARMUP_RUN_NAME) == 1
    assert len(stored) == 5 and all(r.status == "finished" for r in stored)
    assert {(r.sampler, r.seed) for r in runs.runs} == {
        (s, seed) for s in ("uniform", "cdf-presample") for seed in (0, 1)
    }
    # one split for every run: 2 validation and 2 test patients, both classes in each
    split = runs.split.patients
    assert (len(split.train), len(split.val), len(split.test)) == (4, 2, 2)
    assert all(len(runs.split.class_counts[role]) == 2 for role in ("train", "val", "test"))
    for record in runs.runs:
        config = RunConfig.from_dict(project.run(record.run_id).config)
        assert (config.val_groups, config.test_groups) == (split.val, split.test)
        assert config.val_every_s == pytest.approx(0.075)
        mine = [p for p in runs.points if p.run_id == record.run_id]
        assert 1.0 in {p.test_share for p in mine}  # scored at the full budget
        assert mine[-1].samples_backpropagated == 8 * mine[-1].step
        if record.sampler == "uniform":
            assert math.isnan(record.switch_s)
        else:  # warm-up steps:1 -> importance sampling on after the first step
            assert record.switch_s > 0
    assert runs.baseline == 0.5  # balanced accuracy of a constant predictor
    summary = judge_comparison(runs)
    assert summary.target.value == 0.6 and len(summary.outcomes) == 4
    project.close()


def test_bad_protocols_are_refused_before_training(tmp_path: Path) -> None:
    project, dataset = make_project(tmp_path / "project", n_per_group=8, n_groups=6, px=32)
    base = RunConfig(epochs=None, time_budget_s=1.0, input_px=32, batch_size=8, device="cpu")
    cases = [
        (Protocol(samplers=("uniform",), seeds=1, target_value=0.5), "majority class"),
        (
            Protocol(samplers=("uniform",), seeds=1, val=("patient-0",), test=("patient-0",)),
            "both validation and test",
        ),
        (Protocol(samplers=("uniform",), seeds=1, val_cadence=0.5), "cadence"),
        (Protocol(samplers=("uniform",), seeds=1, smoothing_window=4), "odd"),
    ]
    for protocol, message in cases:
        with pytest.raises(ConfigError, match=message):
            run_comparison(project, base, protocol, dataset=dataset)
    with pytest.raises(ConfigError, match="time budget"):
        run_comparison(project, RunConfig(epochs=2), Protocol(("uniform",), 1), dataset=dataset)
    assert project.runs() == []
    project.close()


def test_the_single_class_refusal_names_the_set(tmp_path: Path) -> None:
    from cdfis_desktop.core.training.splits import three_way_split

    groups = np.repeat(["a", "b", "c", "d", "e"], 4)
    labels = np.array([0, 0, 0, 0] + [0, 1] * 8)  # patient a holds class 0 only
    with pytest.raises(ConfigError, match="validation set .* no patch of class"):
        three_way_split(groups, labels, ("a",), 0.2, seed=0)
    with pytest.raises(ConfigError, match="test set .* no patch of class"):
        three_way_split(groups, labels, 0.2, ("a",), seed=0)
    split = three_way_split(groups, labels, 0.2, 0.2, seed=0)
    assert "a" in split.train  # drawn sets avoid the single-class patient


def test_cancel_stops_the_comparison_and_keeps_the_finished_runs(tmp_path: Path) -> None:
    from cdfis_desktop.core.progress import Cancelled, CancelToken

    project, dataset = make_project(tmp_path / "project", n_per_group=8, n_groups=6, px=32)
    base = RunConfig(epochs=None, time_budget_s=0.1, input_px=32, batch_size=8, device="cpu",
                     augment=False, checkpoint_every_steps=1000)  # fmt: skip
    cancel = CancelToken()

    def on_run(sampler: str, seed: int, run_id: int) -> None:
        if seed == 1:
            cancel.cancel()

    protocol = Protocol(("uniform",), seeds=2, val=0.2, test=0.2, warmup_run_share=0.0)
    with pytest.raises(Cancelled):
        run_comparison(project, base, protocol, dataset=dataset, on_run=on_run, cancel=cancel)
    assert [r.status for r in sorted(project.runs(), key=lambda r: r.id)] == [
        "finished",
        "cancelled",
    ]
    project.close()
