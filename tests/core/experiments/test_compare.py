"""``cdfis compare`` core: sampler presets, time to target, paired ratios, outputs."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest

from cdfis_desktop.core.config import RunConfig, SamplerConfig
from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.experiments.compare import (
    SUMMARY_COLUMNS,
    CurvePoint,
    parse_samplers,
    run_comparison,
    sampler_config,
    summarise,
    time_to_target,
    write_outputs,
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


def test_time_to_target_is_the_first_validation_reaching_it() -> None:
    wall = np.array([0.0, 1.0, 2.0, 3.0])
    assert time_to_target(wall, np.array([0.5, 0.7, 0.9, 0.8]), 0.8) == 2.0
    assert np.isnan(time_to_target(wall, np.array([0.5, 0.6, 0.7, 0.7]), 0.8))


def _points(sampler: str, seed: int, wall: list[float], acc: list[float]) -> list[CurvePoint]:
    return [
        CurvePoint(sampler, seed, 1, i, w, a, 1.0 - a)
        for i, (w, a) in enumerate(zip(wall, acc, strict=True))
    ]


def test_summary_pairs_seeds_and_uses_uniform_final_accuracy_as_target() -> None:
    points = []
    for seed in range(3):
        points += _points("uniform", seed, [0, 10, 20, 30, 40], [0.5, 0.7, 0.8, 0.8, 0.8])
        # uniform reaches the target 0.8 at 20 s, cdf-history at 5 s: ratio 0.25
        points += _points(
            "cdf-history", seed, [0, 5, 10, 15, 20 + seed], [0.5, 0.8, 0.9, 0.8, 0.85]
        )
    summary = {s.sampler: s for s in summarise(points)}
    assert summary["uniform"].target_accuracy == pytest.approx(0.8)
    assert summary["uniform"].ratio_to_uniform_mean == pytest.approx(1.0)
    assert summary["cdf-history"].time_to_target_mean_s == pytest.approx(5.0)
    assert summary["cdf-history"].ratio_to_uniform_mean == pytest.approx(0.25)
    # final accuracy: the mean of the last three validations
    assert summary["cdf-history"].final_accuracy_mean == pytest.approx((0.9 + 0.8 + 0.85) / 3)
    assert summary["cdf-history"].seeds_reaching_target == 3


def test_confidence_interval_contains_the_mean_and_widens_with_spread() -> None:
    points = []
    for seed, cdf_time in enumerate([4.0, 10.0, 16.0]):
        points += _points("uniform", seed, [0, 19, 20], [0.5, 0.8, 0.8])  # final mean 0.7
        points += _points("cdf-presample", seed, [0, cdf_time, 20], [0.5, 0.8, 0.8])
    s = {s.sampler: s for s in summarise(points)}["cdf-presample"]
    assert s.ratio_ci95_low < s.ratio_to_uniform_mean < s.ratio_ci95_high
    # per-seed ratios 4/19, 10/19, 16/19: the interval lies within their range
    assert s.ratio_ci95_low >= 4 / 19 - 1e-9 and s.ratio_ci95_high <= 16 / 19 + 1e-9


def test_summary_needs_a_target_without_uniform() -> None:
    with pytest.raises(ConfigError, match="target"):
        summarise(_points("topk", 0, [0, 1], [0.5, 0.6]))


def test_a_real_comparison_trains_stores_and_writes_outputs(tmp_path: Path) -> None:
    project, dataset = make_project(tmp_path / "project", n_per_group=16, n_groups=4, px=32)
    base = RunConfig(
        sampler=SamplerConfig(presample_ratio=2),
        batch_size=8,
        epochs=None,
        max_steps=6,
        val_every_steps=3,
        input_px=32,
        augment=False,
        checkpoint_every_steps=100,
    )
    points = run_comparison(project, base, ["uniform", "cdf-history"], seeds=2, dataset=dataset)
    runs = project.runs()
    assert len(runs) == 4 and all(r.status == "finished" for r in runs)
    assert {(p.sampler, p.seed) for p in points} == {
        (s, seed) for s in ("uniform", "cdf-history") for seed in (0, 1)
    }
    assert {p.run_id for p in points} == {r.id for r in runs}
    paths = write_outputs(tmp_path / "out", points, summarise(points))
    with paths[1].open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["sampler"] for r in rows] == ["uniform", "cdf-history"]
    assert list(rows[0]) == list(SUMMARY_COLUMNS)
    with paths[0].open() as handle:
        assert sum(1 for _ in handle) == len(points) + 1
    assert paths[2].stat().st_size > 10_000
    project.close()
