"""The comparison's statistics on synthetic curves whose answers are known."""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pytest

from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.experiments.comparison_stats import (
    RunCurve,
    bootstrap_mean_ci,
    choose_target,
    judge,
    paired,
    signed_rank_p,
    smooth,
    summarise,
)
from cdfis_desktop.core.training.metrics import majority_baseline

BUDGET_S = 100.0
SHARES = (0.25, 0.5, 1.0)
GRID = np.arange(1, 41) * 2.5  # a validation every 2.5 % of the budget


def learning_curve(t: np.ndarray, speed: float) -> np.ndarray:
    """Balanced accuracy rising from 0.5 to 0.9; ``speed`` 2 = the same curve twice as fast."""
    return 0.5 + 0.4 * (1.0 - np.exp(-speed * t / 20.0))


def curve(
    sampler: str,
    seed: int,
    values: np.ndarray,
    *,
    switch_s: float = math.nan,
    test: dict[float, tuple[float, float]] | None = None,
    grid: np.ndarray = GRID,
) -> RunCurve:
    steps = np.arange(1, len(values) + 1) * 10
    return RunCurve(
        sampler,
        seed,
        grid[: len(values)],
        steps,
        steps * 64,
        steps * 64,
        values,
        switch_s,
        test or {},
    )


@pytest.mark.parametrize("window", [3, 5])
def test_smoother_removes_a_single_spike_and_keeps_a_rising_curve(window: int) -> None:
    rising = learning_curve(GRID, 1.0)
    half = window // 2
    assert np.array_equal(smooth(rising, window)[half:-half], rising[half:-half])
    # without the spikes, no smoothed value moves by more than a few steps of the curve
    steps = np.max(np.abs(np.diff(rising))) * half + 1e-12
    for where in (0, 7, len(GRID) - half):  # inside and at both ends
        for sign in (1, -1):  # a spike up and a dip down, half runs in a row
            spiky = rising.copy()
            spiky[where : where + half] += sign * 0.3
            smoothed = smooth(spiky, window)
            assert rising.min() <= smoothed.min() and smoothed.max() <= rising.max()
            assert np.max(np.abs(smoothed - smooth(rising, window))) <= steps


@pytest.mark.parametrize("window", [3, 5])
def test_a_few_lucky_validations_do_not_reach_the_target(window: int) -> None:
    lucky = window // 2  # fewer than half the window
    values = np.full(len(GRID), 0.6)
    values[5 : 5 + lucky] = 0.95
    outcome = judge(curve("topk", 0, values), target=0.8, budget_s=BUDGET_S, window=window)
    assert not outcome.reached and outcome.time_s == BUDGET_S
    values[5 + lucky] = 0.95  # one more: reached at the first of them
    outcome = judge(curve("topk", 0, values), target=0.8, budget_s=BUDGET_S, window=window)
    assert outcome.reached and outcome.time_s == GRID[5]


@pytest.mark.parametrize("seeds", [5, 8])
def test_a_sampler_twice_as_fast_has_a_ratio_of_one_half(seeds: int) -> None:
    rng = np.random.default_rng(seeds)
    fine = np.arange(1, 401) * 0.25  # validations every 0.25 % of the budget
    curves = []
    for seed in range(seeds):
        # each seed has its own pace; the fast sampler is exactly twice the uniform one
        pace = rng.uniform(1.5, 2.5)
        noise = rng.normal(0.0, 0.01, fine.size)
        curves.append(curve("uniform", seed, learning_curve(fine, pace) + noise, grid=fine))
        curves.append(curve("fast", seed, learning_curve(fine, 2 * pace) + noise, grid=fine))
    target = choose_target(curves, "balanced_accuracy", 0.5, BUDGET_S)
    summary = {s.sampler: s for s in summarise(curves, target, BUDGET_S, SHARES).samplers}
    fast = summary["fast"]
    assert fast.seeds_reaching_target == seeds
    # crossings are read at validations, 0.25 s apart: a few % of the fast time
    assert fast.ratio.estimate == pytest.approx(0.5, abs=0.03)
    assert fast.ratio.ci95_low <= 0.53 and fast.ratio.ci95_high < 0.6
    assert fast.ratio.p_value == pytest.approx(2 / 2**seeds)  # every seed faster
    assert summary["uniform"].ratio.estimate == pytest.approx(1.0)


def test_exactly_twice_as_fast_on_grid_points_gives_exactly_one_half() -> None:
    curves = []
    for seed in range(5):
        cross = 8 + 2 * seed  # uniform crosses 0.8 at validation `cross`, fast at cross / 2
        uniform = np.where(np.arange(len(GRID)) + 1 >= cross, 0.85, 0.6)
        fast = np.where(np.arange(len(GRID)) + 1 >= cross // 2, 0.85, 0.6)
        curves += [curve("uniform", seed, uniform), curve("fast", seed, fast)]
    result = summarise(curves, _target(0.8), BUDGET_S, SHARES)
    fast = next(s for s in result.samplers if s.sampler == "fast")
    assert fast.ratio.estimate == pytest.approx(0.5, rel=1e-12)
    assert fast.samples_backpropagated_ratio_geomean == pytest.approx(0.5, rel=1e-12)


def test_censored_runs_are_counted_and_timed_at_the_budget() -> None:
    curves = []
    for seed in range(5):
        curves.append(curve("uniform", seed, learning_curve(GRID, 1.0)))
        slow = learning_curve(GRID, 1.0) if seed < 2 else np.full(len(GRID), 0.6)
        curves.append(curve("cdf-presample", seed, slow))
    result = summarise(curves, _target(0.8), BUDGET_S, SHARES)
    presample = next(s for s in result.samplers if s.sampler == "cdf-presample")
    assert presample.seeds == 5 and presample.seeds_reaching_target == 2
    censored = [o for o in result.outcomes if o.sampler == "cdf-presample" and not o.reached]
    assert [o.seed for o in censored] == [2, 3, 4]
    assert all(o.time_s == BUDGET_S for o in censored)
    # the censored seeds stay in the ratio (at the budget), they are not dropped
    uniform_time = next(o.time_s for o in result.outcomes if o.sampler == "uniform")
    expected = np.exp(np.mean(np.log([1, 1, *(3 * [BUDGET_S / uniform_time])])))
    assert presample.ratio.estimate == pytest.approx(expected)
    assert presample.ratio.pairs == 5


def test_ratios_are_paired_by_seed_not_by_position() -> None:
    # seed 0 is a hard seed for everyone, seed 1 an easy one: paired, the sampler is
    # always 0.8 x uniform; unpaired means would mix the seeds' paces
    uniform = {0: 80.0, 1: 10.0, 2: 40.0}
    sampler = {1: 8.0, 0: 64.0, 2: 32.0}
    estimate = paired(sampler, uniform, log_ratio=True)
    assert estimate.estimate == pytest.approx(0.8)
    assert (estimate.ci95_low, estimate.ci95_high) == pytest.approx((0.8, 0.8))
    # a seed uniform did not run cannot be paired
    sampler[3] = 1.0
    assert paired(sampler, uniform, log_ratio=True).pairs == 3


def test_run_outcomes_pair_seeds_through_the_summary() -> None:
    curves = []
    for seed, (u, s) in enumerate([(20, 10), (12, 12), (30, 15)]):  # validation indices
        curves.append(curve("uniform", seed, np.where(np.arange(40) >= u, 0.85, 0.6)))
        curves.append(curve("cdf-history", seed, np.where(np.arange(40) >= s, 0.85, 0.6)))
    curves.reverse()  # order of the curves must not matter
    result = summarise(curves, _target(0.8), BUDGET_S, SHARES)
    history = next(s for s in result.samplers if s.sampler == "cdf-history")
    expected = np.exp(np.mean(np.log([GRID[10] / GRID[20], 1.0, GRID[15] / GRID[30]])))
    assert history.ratio.estimate == pytest.approx(expected)


def test_a_target_at_or_below_the_majority_baseline_is_refused() -> None:
    labels = np.array([0] * 80 + [1] * 20)
    assert majority_baseline("accuracy", labels) == pytest.approx(0.8)
    assert majority_baseline("balanced_accuracy", labels) == pytest.approx(0.5)
    assert majority_baseline("auc", labels) == pytest.approx(0.5)
    flat = [curve("uniform", 0, np.full(40, 0.78))]
    with pytest.raises(ConfigError, match="majority class"):
        choose_target(flat, "accuracy", majority_baseline("accuracy", labels), BUDGET_S)
    with pytest.raises(ConfigError, match="majority class"):
        choose_target(flat, "accuracy", 0.8, BUDGET_S, value=0.8)
    target = choose_target(flat, "accuracy", 0.5, BUDGET_S)
    assert target.value == pytest.approx(0.99 * 0.78)


def test_the_default_target_is_a_fraction_of_uniforms_plateau() -> None:
    curves = [curve("uniform", s, np.linspace(0.5, 0.9, 40) + 0.01 * s) for s in range(3)]
    target = choose_target(curves, "balanced_accuracy", 0.5, BUDGET_S, fraction=0.95)
    last_quarter = GRID >= 75
    plateau = np.mean(
        [(np.linspace(0.5, 0.9, 40) + 0.01 * s)[last_quarter].mean() for s in range(3)]
    )
    assert target.uniform_plateau == pytest.approx(plateau)
    assert target.value == pytest.approx(0.95 * plateau)
    assert target.uniform_earlier < target.uniform_plateau  # the curve was still rising
    with pytest.raises(ConfigError, match="uniform is not among"):
        choose_target([curve("topk", 0, np.full(40, 0.8))], "auc", 0.5, BUDGET_S)


def test_signed_rank_p_matches_the_exact_distribution() -> None:
    # all 5 positive: only 1 of 32 sign patterns is as extreme on each side
    assert signed_rank_p(np.array([0.1, 0.2, 0.3, 0.4, 0.5])) == pytest.approx(2 / 32)
    d = np.array([0.5, -0.1, 0.3, 0.2, -0.4, 0.6])
    # brute force over all sign patterns with the same magnitudes
    ranks = np.argsort(np.argsort(np.abs(d))) + 1
    observed = ranks[d > 0].sum()
    sums = [
        sum(r for r, s in zip(ranks, signs, strict=True) if s)
        for signs in product([0, 1], repeat=d.size)
    ]
    lower = np.mean(np.array(sums) <= observed)
    upper = np.mean(np.array(sums) >= observed)
    assert signed_rank_p(d) == pytest.approx(min(1.0, 2 * min(lower, upper)))
    assert signed_rank_p(np.zeros(4)) == 1.0


def test_bootstrap_interval_narrows_with_more_seeds() -> None:
    rng = np.random.default_rng(0)
    few = rng.normal(0.0, 1.0, 5)
    many = rng.normal(0.0, 1.0, 80)
    few_low, few_high = bootstrap_mean_ci(few)
    many_low, many_high = bootstrap_mean_ci(many)
    assert few_low < few.mean() < few_high
    assert many_high - many_low < few_high - few_low


def test_fixed_budget_differences_are_paired_per_share() -> None:
    curves = []
    for seed in range(5):
        base = 0.7 + 0.02 * seed
        curves.append(
            curve(
                "uniform", seed, np.full(40, 0.85), test={s: (base + 0.1 * s, 0.8) for s in SHARES}
            )
        )
        curves.append(
            curve(
                "topk",
                seed,
                np.full(40, 0.85),
                test={s: (base + 0.1 * s - 0.05, 0.82) for s in SHARES},
            )
        )
    result = summarise(curves, _target(0.8), BUDGET_S, SHARES)
    topk = [f for f in result.fixed_budget if f.sampler == "topk"]
    assert [f.budget_share for f in topk] == list(SHARES)
    for row in topk:
        assert row.balanced_accuracy_diff.estimate == pytest.approx(-0.05)
        assert row.auc_diff.estimate == pytest.approx(0.02)
    summary = next(s for s in result.samplers if s.sampler == "topk")
    assert summary.test_balanced_accuracy_mean == pytest.approx(0.74 + 0.1 - 0.05)


def test_reaching_the_target_before_the_switch_is_flagged() -> None:
    values = np.where(np.arange(40) >= 4, 0.85, 0.6)
    early = judge(curve("cdf-history", 0, values, switch_s=50.0), 0.8, BUDGET_S)
    late = judge(curve("cdf-history", 0, values, switch_s=5.0), 0.8, BUDGET_S)
    never = judge(curve("cdf-history", 0, values, switch_s=math.inf), 0.8, BUDGET_S)
    assert early.before_switch and never.before_switch and not late.before_switch
    curves = [curve("uniform", 0, values), curve("topk", 0, values, switch_s=math.inf),
              curve("cdf-history", 0, values, switch_s=25.0)]  # fmt: skip
    shares = {s.sampler: s.warmup_share_mean for s in
              summarise(curves, _target(0.8), BUDGET_S, SHARES).samplers}  # fmt: skip
    assert math.isnan(shares["uniform"]) and shares["topk"] == 1.0
    assert shares["cdf-history"] == 0.25


def _target(value: float):  # noqa: ANN202 - a Target for tests with a fixed level
    from cdfis_desktop.core.experiments.comparison_stats import Target

    return Target("balanced_accuracy", value, "given", 0.5, math.nan, math.nan)
