"""The sampler comparison (``cdfis compare``): does importance sampling save training time?

How the runs are made (this module; the statistics are in :mod:`.comparison_stats`, the
files in :mod:`.comparison_outputs`):

1. **Split by patient**, once, the same for every sampler and seed
   (:func:`~cdfis_desktop.core.training.splits.three_way_split`, seeded by the base seed,
   stratified by each patient's share of the rarest class): training, validation and test
   patients. The validation set drives the curves and the target (and the warm-up rules
   that read the held-out loss); the test set is scored only at fixed shares of the budget
   (:attr:`Protocol.budget_shares`). A validation or test set lacking a class is refused.
2. **Baseline**: the validation set's majority-class score of the target metric; a given
   target at or below it is refused before anything trains.
3. **Runs**: every sampler trains the same model with the same data and seeds (same
   initial weights per seed), for the same budget of training seconds (evaluation
   excluded), validating each time the training time passes a multiple of
   ``val_cadence x budget`` (the same instants for every sampler, whatever its step cost).
   One short uniform run first warms the process up (thread pools, allocator, caches) and
   is discarded; then, per seed, the samplers run in a seeded random order, so no sampler
   always runs first or last on a machine that drifts.
4. Each run is an ordinary run of the project's store (the GUI and the reports show it);
   its curve, costs (steps, samples forwarded, samples back-propagated), the training time
   at which importance sampling switched on and its test metrics come back in
   :class:`ComparisonRuns`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from cdfis_desktop.core.config import RunConfig, SamplerConfig
from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.experiments.comparison_stats import (
    REFERENCE,
    SMOOTHING_WINDOW,
    ComparisonSummary,
    RunCurve,
    check_target,
    choose_target,
    summarise,
)
from cdfis_desktop.core.progress import CancelToken
from cdfis_desktop.core.sampling.presets import SAMPLER_PRESETS, preset_config
from cdfis_desktop.core.storage import Project
from cdfis_desktop.core.training.datasets import PatchDataset
from cdfis_desktop.core.training.metrics import BASELINE_METRICS, class_counts, majority_baseline
from cdfis_desktop.core.training.splits import GroupSplit

WARMUP_RUN_NAME = "compare warm-up (discarded)"


def parse_samplers(text: str) -> list[str]:
    """``"uniform,cdf-history"`` -> names; ``cdf`` means ``cdf-presample``; ``all`` means
    every preset. ConfigError for unknown or repeated names."""
    if text.strip() == "all":
        return list(SAMPLER_PRESETS)
    names = [name.strip() for name in text.split(",") if name.strip()]
    names = ["cdf-presample" if name == "cdf" else name for name in names]
    unknown = [name for name in names if name not in SAMPLER_PRESETS]
    if unknown or not names:
        raise ConfigError(
            f"unknown sampler(s) {', '.join(unknown) or '(none given)'}; choose from "
            f"{', '.join(SAMPLER_PRESETS)} or all"
        )
    if len(set(names)) != len(names):
        raise ConfigError(f"a sampler is listed twice in {text!r}")
    return names


def sampler_config(name: str, base: SamplerConfig) -> SamplerConfig:
    """``base`` (presample ratio, floor, warm-up, weighting, metric) with the preset's
    fields (see :mod:`cdfis_desktop.core.sampling.presets`)."""
    return preset_config(name, base)


@dataclass(frozen=True)
class Protocol:
    """How a comparison is run and judged.

    ``val`` / ``test``: the patients (names) or the share of all patients (0-1) for
    validation and test. ``target_metric``: one of ``balanced_accuracy``, ``accuracy``,
    ``auc`` (validation set). ``target_value``: the level to time (None: ``target_fraction``
    x uniform's plateau). ``val_cadence``: share of the budget between validations (at
    most 0.25). ``budget_shares``: shares of the budget at which the test set is scored
    (the full budget always included). ``warmup_run_share``: budget of the discarded
    warm-up run, as a share of the budget (0: none). ``smoothing_window``: validations per
    running median (odd).
    """

    samplers: tuple[str, ...]
    seeds: int
    val: tuple[str, ...] | float = 0.2
    test: tuple[str, ...] | float = 0.2
    target_metric: str = "balanced_accuracy"
    target_value: float | None = None
    target_fraction: float = 0.99
    val_cadence: float = 0.025
    budget_shares: tuple[float, ...] = (0.25, 0.5, 1.0)
    warmup_run_share: float = 0.1
    smoothing_window: int = SMOOTHING_WINDOW

    def validate(self) -> None:
        if self.seeds < 1:
            raise ConfigError(f"seeds must be at least 1 (got {self.seeds})")
        if not self.samplers:
            raise ConfigError("no samplers to compare")
        if self.target_metric not in BASELINE_METRICS:
            raise ConfigError(
                f"unknown target metric {self.target_metric!r}; choose one of: "
                f"{', '.join(BASELINE_METRICS)}"
            )
        if not 0.0 < self.target_fraction <= 1.0:
            raise ConfigError(f"the target fraction must be in (0, 1] (got {self.target_fraction})")
        if not 0.0 < self.val_cadence <= 0.25:
            raise ConfigError(
                f"the validation cadence must be in (0, 0.25] of the budget (got {self.val_cadence})"
            )
        if not self.budget_shares or max(self.budget_shares) != 1.0 or min(self.budget_shares) <= 0:
            raise ConfigError(
                f"budget shares must be in (0, 1] and include 1 (got {self.budget_shares})"
            )
        if self.smoothing_window < 1 or self.smoothing_window % 2 == 0:
            raise ConfigError(
                f"the smoothing window must be an odd number of validations (got "
                f"{self.smoothing_window})"
            )
        if not 0.0 <= self.warmup_run_share <= 1.0:
            raise ConfigError(
                f"the warm-up run share must be in [0, 1] (got {self.warmup_run_share})"
            )


@dataclass(frozen=True)
class CurvePoint:
    """One validation of one run (one row of results.csv). ``wall_s``: training seconds so
    far (evaluation excluded); ``samples_*``: rows forwarded (scoring included) / trained on
    so far; ``val_*``: validation metrics. ``test_share``: the budget share this validation
    scored the test set for (nan: not scored), with its ``test_*`` metrics (else nan)."""

    sampler: str
    seed: int
    run_id: int
    step: int
    wall_s: float
    samples_forwarded: int
    samples_backpropagated: int
    val_loss: float
    val_accuracy: float
    val_balanced_accuracy: float
    val_auc: float
    test_share: float = math.nan
    test_accuracy: float = math.nan
    test_balanced_accuracy: float = math.nan
    test_auc: float = math.nan


@dataclass(frozen=True)
class RunRecord:
    """One run of the comparison: ``order`` its position among its seed's runs (0 = first);
    ``switch_s`` the training time importance sampling switched on (inf: never; nan:
    uniform, which has nothing to switch);
    ``train_s`` its training seconds; ``elapsed_s`` its whole wall time (set-up and
    evaluation included)."""

    sampler: str
    seed: int
    order: int
    run_id: int
    switch_s: float
    train_s: float
    elapsed_s: float


@dataclass(frozen=True)
class SplitInfo:
    """The split used: patients per set, and per set the patch count per class."""

    patients: GroupSplit
    class_counts: dict[str, dict[int, int]]


@dataclass(frozen=True)
class ComparisonRuns:
    """What the runs produced. ``baseline``: the validation set's majority-class score of
    the target metric; ``warmup_run_s``: wall time of the discarded warm-up run;
    ``split_s``: seconds spent splitting (part of the protocol's overhead)."""

    protocol: Protocol
    base: RunConfig
    budget_s: float
    split: SplitInfo
    baseline: float
    points: list[CurvePoint]
    runs: list[RunRecord]
    warmup_run_s: float
    split_s: float


def run_comparison(
    project: Project,
    base: RunConfig,
    protocol: Protocol,
    *,
    dataset: PatchDataset | None = None,
    on_run: Callable[[str, int, int], None] | None = None,
    cancel: CancelToken | None = None,
) -> ComparisonRuns:
    """Train every sampler of ``protocol`` once per seed ``base.seed .. base.seed+seeds-1``
    for ``base.time_budget_s`` training seconds.

    ``dataset``: an explicit dataset of the project's patches (default: the project's
    labelled patches, read once and shared by every run). ``on_run(sampler, seed, run_id)``
    is called in this thread when each run starts (``sampler`` = ``"warm-up"`` for the
    discarded run). Raises :class:`ConfigError` for a bad configuration, split or target
    (before anything trains) and :class:`~cdfis_desktop.core.progress.Cancelled` when
    ``cancel`` is set (the run in progress is stored as cancelled).
    """
    from cdfis_desktop.core.training.prepare import project_dataset, usable_patches
    from cdfis_desktop.core.training.splits import three_way_split

    protocol.validate()
    budget_s = base.time_budget_s
    if budget_s is None or base.epochs is not None or base.max_steps is not None:
        raise ConfigError(
            "a comparison needs a time budget (--time-budget) and no other stopping rule"
        )
    if base.val_every_steps is not None:
        raise ConfigError(
            "a comparison validates at fixed training times (a share of the budget), "
            "not every N steps; leave out --val-every"
        )
    dataset = project_dataset(project, base) if dataset is None else dataset
    started = time.perf_counter()
    patches = usable_patches(project, dataset)
    patients = three_way_split(
        patches.groups, patches.labels, protocol.val, protocol.test, base.seed
    )
    split_s = time.perf_counter() - started
    sets = {"train": patients.train, "val": patients.val, "test": patients.test}
    labels_of = {role: patches.labels[np.isin(patches.groups, list(m))] for role, m in sets.items()}
    split = SplitInfo(patients, {role: class_counts(lab) for role, lab in labels_of.items()})
    baseline = majority_baseline(protocol.target_metric, labels_of["val"])
    if protocol.target_value is not None:
        check_target(protocol.target_value, protocol.target_metric, baseline)
    shared = replace(
        base,
        val_groups=patients.val,
        test_groups=patients.test,
        test_at_s=tuple(share * budget_s for share in sorted(protocol.budget_shares)),
        val_every_s=protocol.val_cadence * budget_s,
    )
    configs = {
        name: replace(shared, sampler=sampler_config(name, base.sampler))
        for name in protocol.samplers
    }
    for config in configs.values():
        config.validate()
    cancel = cancel or CancelToken()
    warmup_run_s = 0.0
    if protocol.warmup_run_share > 0:
        warm = replace(
            configs.get(REFERENCE, next(iter(configs.values()))),
            test_at_s=None,
            time_budget_s=protocol.warmup_run_share * budget_s,
        )
        started = time.perf_counter()
        _train(
            project, dataset, warm, "warm-up", WARMUP_RUN_NAME, budget_s, protocol, on_run, cancel
        )
        warmup_run_s = time.perf_counter() - started
    points: list[CurvePoint] = []
    runs: list[RunRecord] = []
    for seed in range(base.seed, base.seed + protocol.seeds):
        for position, name in enumerate(run_order(protocol.samplers, base.seed, seed)):
            cancel.raise_if_cancelled()
            config = replace(configs[name], seed=seed)
            started = time.perf_counter()
            run_id, run_points, train_s = _train(
                project,
                dataset,
                config,
                name,
                f"compare {name} seed {seed}",
                budget_s,
                protocol,
                on_run,
                cancel,
            )
            points += run_points
            switch_s = math.nan if name == REFERENCE else _switch_s(project, run_id)
            runs.append(
                RunRecord(
                    name, seed, position, run_id, switch_s, train_s, time.perf_counter() - started
                )
            )
    return ComparisonRuns(
        protocol, base, budget_s, split, baseline, points, runs, warmup_run_s, split_s
    )


def run_order(samplers: Sequence[str], base_seed: int, seed: int) -> list[str]:
    """The order in which ``samplers`` run for ``seed``: a permutation seeded by
    (``base_seed``, ``seed``), so it differs between seeds and repeats between calls."""
    permutation = np.random.default_rng((base_seed, seed)).permutation(len(samplers))
    return [samplers[int(i)] for i in permutation]


def run_curves(runs: ComparisonRuns) -> list[RunCurve]:
    """The runs' validations after training started, as the statistics take them; in the
    order of the protocol's samplers, then by seed."""
    metric = f"val_{runs.protocol.target_metric}"
    rank = {name: i for i, name in enumerate(runs.protocol.samplers)}
    curves = []
    for record in sorted(runs.runs, key=lambda r: (rank[r.sampler], r.seed)):
        mine = [p for p in runs.points if p.run_id == record.run_id and p.step > 0]
        tested = {
            p.test_share: (p.test_balanced_accuracy, p.test_auc)
            for p in mine
            if math.isfinite(p.test_share)
        }
        curves.append(
            RunCurve(
                sampler=record.sampler,
                seed=record.seed,
                wall_s=np.array([p.wall_s for p in mine]),
                steps=np.array([p.step for p in mine]),
                forwarded=np.array([p.samples_forwarded for p in mine]),
                backpropagated=np.array([p.samples_backpropagated for p in mine]),
                values=np.array([getattr(p, metric) for p in mine]),
                switch_s=record.switch_s,
                test=tested,
            )
        )
    return curves


def judge_comparison(runs: ComparisonRuns) -> ComparisonSummary:
    """Choose the target and judge every run (see :mod:`.comparison_stats`). Raises
    :class:`ConfigError` when the target is at or below the baseline, or when no target
    was given and uniform was not compared."""
    protocol = runs.protocol
    curves = run_curves(runs)
    target = choose_target(
        curves,
        protocol.target_metric,
        runs.baseline,
        runs.budget_s,
        value=protocol.target_value,
        fraction=protocol.target_fraction,
    )
    return summarise(
        curves, target, runs.budget_s, sorted(protocol.budget_shares), protocol.smoothing_window
    )


def _train(
    project: Project,
    dataset: PatchDataset,
    config: RunConfig,
    sampler: str,
    run_name: str,
    budget_s: float,
    protocol: Protocol,
    on_run: Callable[[str, int, int], None] | None,
    cancel: CancelToken,
) -> tuple[int, list[CurvePoint], float]:
    """One run; its id, its validations and its training seconds. Raises
    :class:`~cdfis_desktop.core.progress.Cancelled` when ``cancel`` stopped it."""
    from cdfis_desktop.core.progress import Cancelled
    from cdfis_desktop.core.training.engine import Trainer
    from cdfis_desktop.core.training.reports import EpochReport, RunFinished, RunStarted

    trainer = Trainer(project, dataset=dataset, run_name=run_name)
    run_id, train_s = -1, 0.0
    points: list[CurvePoint] = []
    for report in trainer.iter_run(config, cancel):
        if isinstance(report, RunStarted):
            run_id = report.run_id
            if on_run is not None:
                on_run(sampler, config.seed, run_id)
        elif isinstance(report, EpochReport):
            test = report.test
            share = math.nan
            if test is not None:  # the largest share whose test time this validation passed
                passed = [s for s in protocol.budget_shares if s * budget_s <= report.wall_s]
                share = max(passed, default=math.nan)
            points.append(
                CurvePoint(
                    sampler,
                    config.seed,
                    run_id,
                    report.step,
                    report.wall_s,
                    report.samples_forwarded,
                    report.samples_backpropagated,
                    report.val_loss,
                    report.val_accuracy,
                    report.val_balanced_accuracy,
                    report.val_auc,
                    share,
                    *(
                        (test.accuracy, test.balanced_accuracy, test.auc)
                        if test
                        else (math.nan,) * 3
                    ),
                )
            )
        elif isinstance(report, RunFinished):
            train_s = report.wall_s
    if cancel.cancelled:
        raise Cancelled()
    return run_id, points, train_s


def _switch_s(project: Project, run_id: int) -> float:
    """Training time at which run ``run_id`` switched importance sampling on (inf: never),
    read from its per-step metrics."""
    switch_step = project.run(run_id).switch_step
    if switch_step is None:
        return math.inf
    metrics = project.metrics(run_id)
    steps, wall = metrics["step"], metrics["wall_s"]
    if switch_step <= 0 or steps.size == 0:
        return 0.0
    return float(np.interp(switch_step, steps, wall))
