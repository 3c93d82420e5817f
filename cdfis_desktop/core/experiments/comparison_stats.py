"""The statistics of a sampler comparison (pure numpy; no training, no files).

Inputs are :class:`RunCurve` values: one run's validations after training started
(the validation before the first step is left out: a target met before training means
nothing), sampled on the same grid of training seconds for every sampler.

- **Smoother** (:func:`smooth`): the running median of k (default 5) consecutive
  validations, centred (near the first and last validation: the median of the k nearest).
  A median, because up to (k - 1) / 2 lucky (or unlucky) validations in a row can never
  move it: the smoothed curve is at or above a level only where most of the k
  neighbouring validations are. Centred, because on a curve that rises steadily it
  returns the curve itself, so it adds no lag and a sampler twice as fast keeps a time
  ratio of exactly 0.5; only the points near the ends see their inner neighbours. The
  price: crediting a validation uses the (k - 1) / 2 after it.
- **Plateau** (:func:`plateau`): the mean of a run's validations in the last
  :data:`PLATEAU_SHARE` of the budget.
- **Target** (:func:`choose_target`): given, or ``fraction`` (0.99) x the mean of
  uniform's plateaus. Refused when at or below the majority-class baseline.
- **Time to target** (:func:`judge`): the training time of the first validation whose
  smoothed value reaches the target. A run that never does is **censored**: its time is
  the budget (a lower bound of the true time) and it is counted as not reached.
- **Paired ratio**: per seed, a sampler's time divided by uniform's for the same seed;
  summed up as the geometric mean (mean of log ratios), with a paired percentile
  bootstrap 95 % interval over seeds (:func:`bootstrap_mean_ci` on the logs, 10,000
  resamples, fixed seed) and the exact two-sided Wilcoxon signed-rank p-value of the log
  ratios (:func:`signed_rank_p`). With n seeds the smallest possible p is 2 / 2^n
  (0.0625 for 5), and a bootstrap over fewer than :data:`FEW_SEEDS` seeds means little.
- **Fixed budget**: test metrics at shares of the budget, the paired difference to
  uniform per seed, its mean and bootstrap interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.training.metrics import average_ranks

REFERENCE = "uniform"
SMOOTHING_WINDOW = 5
PLATEAU_SHARE = 0.25
BOOTSTRAP_RESAMPLES = 10_000
FEW_SEEDS = 5
_TOLERANCE = 1e-12


@dataclass(frozen=True)
class RunCurve:
    """One run's validations after training started, in order (arrays of length t >= 1).

    ``wall_s`` training seconds (evaluation excluded); ``steps``, ``forwarded``,
    ``backpropagated``: steps done, rows sent through the model (scoring included) and
    rows trained on, up to that validation; ``values``: the target metric on the
    validation set. ``switch_s``: training time importance sampling switched on (inf:
    never; nan: uniform, which has nothing to switch). ``test``: budget share -> (test balanced accuracy, test AUC).
    """

    sampler: str
    seed: int
    wall_s: np.ndarray
    steps: np.ndarray
    forwarded: np.ndarray
    backpropagated: np.ndarray
    values: np.ndarray
    switch_s: float
    test: dict[float, tuple[float, float]]


@dataclass(frozen=True)
class RunOutcome:
    """One run judged against the target. ``time_s``, ``steps``, ``forwarded``,
    ``backpropagated``: at the first validation whose smoothed value reached the target, or
    (censored, ``reached`` False) the budget and the counts at the last validation.
    ``before_switch``: reached before importance sampling switched on (the run was still
    uniform then, so its time says nothing about the sampler)."""

    sampler: str
    seed: int
    reached: bool
    time_s: float
    steps: int
    forwarded: int
    backpropagated: int
    plateau: float
    before_switch: bool


@dataclass(frozen=True)
class PairedEstimate:
    """A per-seed paired statistic against uniform: ``estimate`` (geometric mean of ratios,
    or mean of differences), its 95 % bootstrap interval, the signed-rank p-value and the
    number of seeds paired. nan where nothing could be paired."""

    estimate: float
    ci95_low: float
    ci95_high: float
    p_value: float
    pairs: int


@dataclass(frozen=True)
class SamplerSummary:
    """One sampler over its seeds (one row of summary.csv). Ratios are per seed to uniform;
    ``test_*`` at the full budget, ``*_diff`` paired differences to uniform."""

    sampler: str
    seeds: int
    seeds_reaching_target: int
    seeds_reaching_before_switch: int
    plateau_mean: float
    plateau_std: float
    time_to_target_geomean_s: float
    ratio: PairedEstimate
    steps_to_target_mean: float
    samples_forwarded_to_target_mean: float
    samples_backpropagated_to_target_mean: float
    samples_forwarded_ratio_geomean: float
    samples_backpropagated_ratio_geomean: float
    warmup_share_mean: float
    test_balanced_accuracy_mean: float
    test_auc_mean: float
    test_balanced_accuracy_diff: PairedEstimate
    test_auc_diff: PairedEstimate


@dataclass(frozen=True)
class FixedBudgetRow:
    """Test metrics of one sampler at one share of the budget (one row of fixed_budget.csv):
    means over seeds and the paired differences to uniform."""

    sampler: str
    budget_share: float
    seeds: int
    test_balanced_accuracy_mean: float
    test_auc_mean: float
    balanced_accuracy_diff: PairedEstimate
    auc_diff: PairedEstimate


@dataclass(frozen=True)
class Target:
    """The level timed: ``value`` of ``metric``; ``rule`` says where it came from;
    ``baseline`` the majority-class score; ``uniform_plateau`` / ``uniform_earlier`` the
    mean of uniform's validations in the last and the second-to-last quarter of the
    budget (nan without uniform): their difference tells whether uniform had plateaued."""

    metric: str
    value: float
    rule: str
    baseline: float
    uniform_plateau: float
    uniform_earlier: float


@dataclass(frozen=True)
class ComparisonSummary:
    """Everything the outputs need: the target, each run's outcome, each sampler's summary
    and the fixed-budget view."""

    target: Target
    budget_s: float
    outcomes: list[RunOutcome]
    samplers: list[SamplerSummary]
    fixed_budget: list[FixedBudgetRow]


def smooth(values: np.ndarray, window: int = SMOOTHING_WINDOW) -> np.ndarray:
    """Centred running median of ``window`` (odd) values of ``values float[t]`` (the
    ``window`` nearest near the ends; the median of all when t < window). Removes any run
    of up to (window - 1) / 2 spikes; leaves a monotone run unchanged except near its ends."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"the smoothing window must be odd and positive (got {window})")
    values = np.asarray(values, dtype=np.float64)
    n, half = values.size, window // 2
    if n < window:
        return np.full(n, np.median(values)) if n else values.copy()
    centre = np.clip(np.arange(n), half, n - 1 - half)
    return np.median(values[centre[:, None] + np.arange(-half, half + 1)], axis=1)


def plateau(
    wall_s: np.ndarray,
    values: np.ndarray,
    budget_s: float,
    share: float = PLATEAU_SHARE,
    end_share: float = 1.0,
) -> float:
    """Mean of ``values`` validated in [(end_share - share) x budget, end_share x budget)
    (the last window also takes the validations at or past the budget); the last value
    before that window ends when it holds none."""
    wall_s, values = np.asarray(wall_s), np.asarray(values, dtype=np.float64)
    start, end = (end_share - share) * budget_s, end_share * budget_s
    inside = (wall_s >= start) & ((wall_s < end) | (end_share >= 1.0))
    if inside.any():
        return float(values[inside].mean())
    before = np.flatnonzero(wall_s < end)
    return float(values[before[-1]]) if before.size else float("nan")


def choose_target(
    curves: Sequence[RunCurve],
    metric: str,
    baseline: float,
    budget_s: float,
    *,
    value: float | None = None,
    fraction: float = 0.99,
) -> Target:
    """The target (see the module docstring). Raises :class:`ConfigError` when no value is
    given and uniform was not compared, or when the target is at or below ``baseline``."""
    uniform = [c for c in curves if c.sampler == REFERENCE]
    late = [plateau(c.wall_s, c.values, budget_s) for c in uniform]
    earlier = [plateau(c.wall_s, c.values, budget_s, end_share=1 - PLATEAU_SHARE) for c in uniform]
    uniform_plateau = float(np.mean(late)) if late else float("nan")
    uniform_earlier = float(np.mean(earlier)) if earlier else float("nan")
    if value is None:
        if not uniform:
            raise ConfigError("give --target-accuracy: uniform is not among the samplers")
        value = fraction * uniform_plateau
        rule = f"{fraction:g} x uniform's plateau {uniform_plateau:.4f}"
    else:
        rule = "given"
    check_target(value, metric, baseline)
    return Target(metric, float(value), rule, baseline, uniform_plateau, uniform_earlier)


def check_target(value: float, metric: str, baseline: float) -> None:
    """ConfigError when ``value`` is at or below the majority-class ``baseline`` of
    ``metric`` (or not a number): such a target is met without learning anything."""
    if not math.isfinite(value) or value <= baseline + _TOLERANCE:
        raise ConfigError(
            f"the target {metric.replace('_', ' ')} {value:.4f} is at or below the "
            f"{baseline:.4f} a model scores by always predicting the majority class; "
            "choose a higher target (or a longer budget, if uniform's plateau set it)"
        )


def judge(
    curve: RunCurve, target: float, budget_s: float, window: int = SMOOTHING_WINDOW
) -> RunOutcome:
    """Time, steps and samples to ``target`` on the curve smoothed over ``window``
    validations; censored at the budget."""
    smoothed = smooth(curve.values, window)
    hit = np.flatnonzero(smoothed >= target - _TOLERANCE)
    reached = bool(hit.size)
    at = int(hit[0]) if reached else len(smoothed) - 1
    time_s = float(curve.wall_s[at]) if reached else float(budget_s)
    return RunOutcome(
        sampler=curve.sampler,
        seed=curve.seed,
        reached=reached,
        time_s=time_s,
        steps=int(curve.steps[at]),
        forwarded=int(curve.forwarded[at]),
        backpropagated=int(curve.backpropagated[at]),
        plateau=plateau(curve.wall_s, curve.values, budget_s),
        before_switch=reached and bool(time_s < curve.switch_s),
    )


def ratio_to_uniform(o: RunOutcome, outcome: dict[tuple[str, int], RunOutcome]) -> float:
    """``o``'s time divided by the time of uniform's run of the same seed (``outcome``:
    (sampler, seed) -> outcome); nan when uniform did not run that seed."""
    uniform = outcome.get((REFERENCE, o.seed))
    return o.time_s / uniform.time_s if uniform is not None else math.nan


def geometric_mean(values: Sequence[float] | np.ndarray) -> float:
    """exp(mean(log(values))) of positive values; nan when empty."""
    values = np.asarray(values, dtype=np.float64)
    return float(np.exp(np.mean(np.log(values)))) if values.size else float("nan")


def bootstrap_mean_ci(
    values: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap 95 % interval of the mean of ``values float[n]`` (resampling the
    n entries, e.g. seeds, with replacement); nan when empty."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, (resamples, values.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def signed_rank_p(differences: np.ndarray) -> float:
    """Exact two-sided p-value of the Wilcoxon signed-rank test that ``differences float[n]``
    are symmetric around 0. Zeros are dropped; tied magnitudes share their mean rank (the
    exact null distribution is computed for those ranks). 1.0 when nothing is left."""
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.abs(d) > _TOLERANCE]
    if d.size == 0:
        return 1.0
    doubled = np.rint(2 * average_ranks(np.abs(d))).astype(np.int64)  # ties give halves
    observed = int(doubled[d > 0].sum())
    counts = np.zeros(int(doubled.sum()) + 1)
    counts[0] = 1.0
    for rank in doubled:  # distribution of the sum of a random subset of the ranks
        counts[rank:] = counts[rank:] + counts[:-rank].copy()
    probability = counts / 2.0**d.size
    lower, upper = probability[: observed + 1].sum(), probability[observed:].sum()
    return float(min(1.0, 2.0 * min(lower, upper)))


def paired(
    values: dict[int, float], reference: dict[int, float], *, log_ratio: bool
) -> PairedEstimate:
    """Pair ``values`` with ``reference`` by seed (seeds in both, finite values only) and
    sum up: the geometric mean of the ratios (``log_ratio``) or the mean difference."""
    seeds = sorted(s for s in values if s in reference)
    a = np.array([values[s] for s in seeds], dtype=np.float64)
    b = np.array([reference[s] for s in seeds], dtype=np.float64)
    if log_ratio:
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.log(a) - np.log(b)
    else:
        d = a - b
    d = d[np.isfinite(d)]
    if d.size == 0:
        nan = float("nan")
        return PairedEstimate(nan, nan, nan, nan, 0)
    low, high = bootstrap_mean_ci(d)
    back = np.exp if log_ratio else (lambda x: x)
    return PairedEstimate(
        float(back(d.mean())), float(back(low)), float(back(high)), signed_rank_p(d), int(d.size)
    )


def summarise(
    curves: Sequence[RunCurve],
    target: Target,
    budget_s: float,
    budget_shares: Sequence[float],
    window: int = SMOOTHING_WINDOW,
) -> ComparisonSummary:
    """Judge every run against ``target`` (curves smoothed over ``window`` validations)
    and sum up per sampler (samplers in the order they first appear in ``curves``)."""
    outcomes = [judge(c, target.value, budget_s, window) for c in curves]
    by_run = {(o.sampler, o.seed): o for o in outcomes}
    curve_of = {(c.sampler, c.seed): c for c in curves}
    samplers = list(dict.fromkeys(c.sampler for c in curves))

    def per_seed(name: str, field: str) -> dict[int, float]:
        return {seed: float(getattr(o, field)) for (s, seed), o in by_run.items() if s == name}

    def test_at(name: str, share: float, which: int) -> dict[int, float]:
        return {
            seed: c.test[share][which]
            for (s, seed), c in curve_of.items()
            if s == name and share in c.test
        }

    summaries: list[SamplerSummary] = []
    fixed: list[FixedBudgetRow] = []
    full = max(budget_shares)
    for name in samplers:
        mine = [o for o in outcomes if o.sampler == name]
        plateaus = np.array([o.plateau for o in mine])
        switch = np.array([curve_of[(name, o.seed)].switch_s for o in mine])
        bal = {share: test_at(name, share, 0) for share in budget_shares}
        auc = {share: test_at(name, share, 1) for share in budget_shares}
        bal_ref = {share: test_at(REFERENCE, share, 0) for share in budget_shares}
        auc_ref = {share: test_at(REFERENCE, share, 1) for share in budget_shares}
        for share in budget_shares:
            fixed.append(
                FixedBudgetRow(
                    sampler=name,
                    budget_share=share,
                    seeds=len(bal[share]),
                    test_balanced_accuracy_mean=_mean(bal[share].values()),
                    test_auc_mean=_mean(auc[share].values()),
                    balanced_accuracy_diff=paired(bal[share], bal_ref[share], log_ratio=False),
                    auc_diff=paired(auc[share], auc_ref[share], log_ratio=False),
                )
            )
        summaries.append(
            SamplerSummary(
                sampler=name,
                seeds=len(mine),
                seeds_reaching_target=sum(o.reached for o in mine),
                seeds_reaching_before_switch=sum(o.before_switch for o in mine),
                plateau_mean=float(plateaus.mean()),
                plateau_std=float(plateaus.std(ddof=1)) if plateaus.size > 1 else 0.0,
                time_to_target_geomean_s=geometric_mean([o.time_s for o in mine]),
                ratio=paired(
                    per_seed(name, "time_s"), per_seed(REFERENCE, "time_s"), log_ratio=True
                ),
                steps_to_target_mean=_mean(o.steps for o in mine),
                samples_forwarded_to_target_mean=_mean(o.forwarded for o in mine),
                samples_backpropagated_to_target_mean=_mean(o.backpropagated for o in mine),
                samples_forwarded_ratio_geomean=paired(
                    per_seed(name, "forwarded"), per_seed(REFERENCE, "forwarded"), log_ratio=True
                ).estimate,
                samples_backpropagated_ratio_geomean=paired(
                    per_seed(name, "backpropagated"),
                    per_seed(REFERENCE, "backpropagated"),
                    log_ratio=True,
                ).estimate,
                warmup_share_mean=_mean(np.minimum(switch[~np.isnan(switch)] / budget_s, 1.0)),
                test_balanced_accuracy_mean=_mean(bal[full].values()),
                test_auc_mean=_mean(auc[full].values()),
                test_balanced_accuracy_diff=paired(bal[full], bal_ref[full], log_ratio=False),
                test_auc_diff=paired(auc[full], auc_ref[full], log_ratio=False),
            )
        )
    return ComparisonSummary(target, budget_s, outcomes, summaries, fixed)


def _mean(values: object) -> float:
    array = np.fromiter(values, dtype=np.float64)  # type: ignore[call-overload]
    array = array[np.isfinite(array)]
    return float(array.mean()) if array.size else float("nan")
