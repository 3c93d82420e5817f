"""The paper's evaluation on a project: validation accuracy against training wall time,
uniform vs top-k vs CDF (presample) vs CDF (history), several seeds, side by side.

Every sampler trains the same model on the same data with the same seeds (so the same
initial weights and the same patient split per seed); runs are interleaved (seed by seed,
all samplers) so slow phases of a noisy machine hit every sampler alike. Every run is an
ordinary run of the project's store, so the GUI and the reports show it.

Wall time is the engine's training time (evaluation excluded; CUDA synchronised before
the clock is read). *Time to target* for one run is the wall time of the first validation
at which its accuracy is at least the target; the default target is uniform's mean final
validation accuracy. A run's *final accuracy* is the mean of its last
:data:`FINAL_VALIDATIONS` validations, so one noisy validation cannot decide it. The ratio to uniform is taken per seed (paired), and its 95 %
confidence interval is a percentile bootstrap over seeds (10,000 resamples, fixed seed).

Outputs (written atomically into ``out_dir``): ``results.csv`` (one row per validation:
:data:`RESULT_COLUMNS`), ``summary.csv`` (one row per sampler: :data:`SUMMARY_COLUMNS`) and
``comparison.png`` (accuracy vs wall time, mean and min-max band over seeds).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cdfis_desktop.core.config import RunConfig, SamplerConfig
from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.progress import CancelToken
from cdfis_desktop.core.reporting.files import atomic_output, ensure_folder
from cdfis_desktop.core.storage import Project
from cdfis_desktop.core.training.datasets import PatchDataset

SAMPLER_PRESETS: dict[str, dict[str, str]] = {
    "uniform": {"rule": "uniform", "mode": "presample"},
    "topk": {"rule": "topk", "mode": "presample"},
    "cdf-presample": {"rule": "cdf", "mode": "presample"},
    "cdf-history": {"rule": "cdf", "mode": "history"},
}
RESULT_COLUMNS = ("sampler", "seed", "run_id", "step", "wall_s", "val_accuracy", "val_loss")
SUMMARY_COLUMNS = (
    "sampler", "seeds", "final_accuracy_mean", "final_accuracy_std", "target_accuracy",
    "seeds_reaching_target", "time_to_target_mean_s", "ratio_to_uniform_mean",
    "ratio_ci95_low", "ratio_ci95_high",
)  # fmt: skip
BOOTSTRAP_RESAMPLES = 10_000
FINAL_VALIDATIONS = 3


@dataclass(frozen=True)
class CurvePoint:
    """One validation of one run: ``wall_s`` training seconds so far (evaluation excluded)."""

    sampler: str
    seed: int
    run_id: int
    step: int
    wall_s: float
    val_accuracy: float
    val_loss: float


@dataclass(frozen=True)
class SamplerSummary:
    """Per sampler over seeds. Times in seconds; ``ratio_*`` = time to target divided by
    uniform's for the same seed (nan when uniform is not compared or no seed reached)."""

    sampler: str
    seeds: int
    final_accuracy_mean: float
    final_accuracy_std: float
    target_accuracy: float
    seeds_reaching_target: int
    time_to_target_mean_s: float
    ratio_to_uniform_mean: float
    ratio_ci95_low: float
    ratio_ci95_high: float


def parse_samplers(text: str) -> list[str]:
    """``"uniform,cdf-history"`` -> names; ``cdf`` means ``cdf-presample``. ConfigError for
    unknown or repeated names."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    names = ["cdf-presample" if name == "cdf" else name for name in names]
    unknown = [name for name in names if name not in SAMPLER_PRESETS]
    if unknown or not names:
        raise ConfigError(
            f"unknown sampler(s) {', '.join(unknown) or '(none given)'}; choose from "
            f"{', '.join(SAMPLER_PRESETS)}"
        )
    if len(set(names)) != len(names):
        raise ConfigError(f"a sampler is listed twice in {text!r}")
    return names


def sampler_config(name: str, base: SamplerConfig) -> SamplerConfig:
    """``base`` (presample ratio, floor, warm-up, weighting, metric) with the preset's rule
    and mode. Uniform ignores the warm-up, which only delays importance sampling."""
    preset = SAMPLER_PRESETS[name]
    config = replace(base, rule=preset["rule"], mode=preset["mode"])
    return replace(config, warmup="none") if name == "uniform" else config


def run_comparison(
    project: Project,
    base: RunConfig,
    samplers: Sequence[str],
    seeds: int,
    *,
    dataset: PatchDataset | None = None,
    on_run: Callable[[str, int, int], None] | None = None,
    cancel: CancelToken | None = None,
) -> list[CurvePoint]:
    """Train ``base`` once per (seed, sampler), seeds ``base.seed .. base.seed+seeds-1``.

    ``dataset``: an explicit dataset of the project's patches shared by every run (default:
    each run reads the project's labelled patches, through the project's patch cache).

    ``on_run(sampler, seed, run_id)`` is called in this thread when each run starts.
    Raises :class:`ConfigError` for a bad configuration (before anything trains) and
    :class:`~cdfis_desktop.core.progress.Cancelled` when ``cancel`` is set (the run in
    progress is stored as cancelled).
    """
    from cdfis_desktop.core.progress import Cancelled
    from cdfis_desktop.core.training.engine import Trainer
    from cdfis_desktop.core.training.reports import EpochReport, RunStarted

    if seeds < 1:
        raise ConfigError(f"seeds must be at least 1 (got {seeds})")
    configs = {name: sampler_config(name, base.sampler) for name in samplers}
    for sampler in configs.values():
        replace(base, sampler=sampler).validate()
    cancel = cancel or CancelToken()
    points: list[CurvePoint] = []
    for seed in range(base.seed, base.seed + seeds):
        for name in samplers:
            cancel.raise_if_cancelled()
            config = replace(base, sampler=configs[name], seed=seed)
            trainer = Trainer(project, dataset=dataset, run_name=f"compare {name} seed {seed}")
            run_id = -1
            for report in trainer.iter_run(config, cancel):
                if isinstance(report, RunStarted):
                    run_id = report.run_id
                    if on_run is not None:
                        on_run(name, seed, run_id)
                elif isinstance(report, EpochReport):
                    points.append(
                        CurvePoint(name, seed, run_id, report.step, report.wall_s,
                                   report.val_accuracy, report.val_loss)
                    )  # fmt: skip
            if cancel.cancelled:
                raise Cancelled()
    return points


def time_to_target(wall_s: np.ndarray, accuracy: np.ndarray, target: float) -> float:
    """Wall time of the first validation with ``accuracy >= target`` (nan if none).
    ``wall_s``, ``accuracy``: float[t] in validation order."""
    hit = np.flatnonzero(np.asarray(accuracy) >= target - 1e-12)
    return float(np.asarray(wall_s)[hit[0]]) if hit.size else float("nan")


def summarise(
    points: Sequence[CurvePoint], target_accuracy: float | None = None
) -> list[SamplerSummary]:
    """Per-sampler summaries (see :class:`SamplerSummary`). ``target_accuracy`` None =
    uniform's mean final accuracy (ConfigError when uniform was not compared)."""
    runs = _runs(points)
    finals = {key: float(acc[-FINAL_VALIDATIONS:].mean()) for key, (_, acc) in runs.items()}
    samplers = list(dict.fromkeys(p.sampler for p in points))
    if target_accuracy is None:
        if "uniform" not in samplers:
            raise ConfigError("give --target-accuracy: uniform is not among the samplers")
        target_accuracy = float(np.mean([a for (s, _), a in finals.items() if s == "uniform"]))
    times = {key: time_to_target(wall, acc, target_accuracy) for key, (wall, acc) in runs.items()}
    summaries = []
    for name in samplers:
        seeds = sorted(seed for (s, seed) in runs if s == name)
        final = np.array([finals[(name, seed)] for seed in seeds])
        reached = np.array([times[(name, seed)] for seed in seeds])
        ratios = np.array(
            [_ratio(times[(name, seed)], times[("uniform", seed)]) for seed in seeds
             if ("uniform", seed) in times]
        )  # fmt: skip
        ratios = ratios[np.isfinite(ratios)]
        low, high = _bootstrap_ci(ratios)
        summaries.append(
            SamplerSummary(
                sampler=name,
                seeds=len(seeds),
                final_accuracy_mean=float(final.mean()),
                final_accuracy_std=float(final.std(ddof=1)) if len(final) > 1 else 0.0,
                target_accuracy=target_accuracy,
                seeds_reaching_target=int(np.isfinite(reached).sum()),
                time_to_target_mean_s=_nanmean(reached),
                ratio_to_uniform_mean=_nanmean(ratios),
                ratio_ci95_low=low,
                ratio_ci95_high=high,
            )
        )
    return summaries


def write_outputs(
    out_dir: Path, points: Sequence[CurvePoint], summaries: Sequence[SamplerSummary]
) -> list[Path]:
    """Write results.csv, summary.csv and comparison.png into ``out_dir``; their paths."""
    ensure_folder(out_dir)
    results, summary, plot = (out_dir / name for name in
                              ("results.csv", "summary.csv", "comparison.png"))  # fmt: skip
    with atomic_output(results) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(RESULT_COLUMNS)
        for p in points:
            writer.writerow([p.sampler, p.seed, p.run_id, p.step, f"{p.wall_s:.3f}",
                             f"{p.val_accuracy:.5f}", f"{p.val_loss:.5f}"])  # fmt: skip
    with atomic_output(summary) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(SUMMARY_COLUMNS)
        for s in summaries:
            writer.writerow([_cell(getattr(s, column)) for column in SUMMARY_COLUMNS])
    _plot(plot, points, summaries)
    return [results, summary, plot]


def summary_lines(summaries: Sequence[SamplerSummary]) -> list[str]:
    """A plain-text table for the terminal."""
    if not summaries:
        return []
    lines = [
        f"target accuracy {summaries[0].target_accuracy:.4f}",
        f"{'sampler':<14} {'final accuracy':>17} {'reached':>8} {'time to target':>15} "
        f"{'ratio to uniform (95% CI)':>27}",
    ]
    for s in summaries:
        ratio = (
            f"{s.ratio_to_uniform_mean:.2f} ({s.ratio_ci95_low:.2f}-{s.ratio_ci95_high:.2f})"
            if np.isfinite(s.ratio_to_uniform_mean) else "-"
        )  # fmt: skip
        time_text = (
            f"{s.time_to_target_mean_s:.1f} s" if np.isfinite(s.time_to_target_mean_s) else "-"
        )
        lines.append(
            f"{s.sampler:<14} {s.final_accuracy_mean:>8.4f} +- {s.final_accuracy_std:.4f} "
            f"{s.seeds_reaching_target:>4}/{s.seeds:<3} {time_text:>15} {ratio:>27}"
        )
    return lines


def _runs(points: Sequence[CurvePoint]) -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]:
    """(sampler, seed) -> (wall_s float[t], accuracy float[t]) in validation order."""
    grouped: dict[tuple[str, int], list[CurvePoint]] = {}
    for p in points:
        grouped.setdefault((p.sampler, p.seed), []).append(p)
    return {
        key: (np.array([p.wall_s for p in rows]), np.array([p.val_accuracy for p in rows]))
        for key, rows in grouped.items()
    }


def _bootstrap_ci(values: np.ndarray) -> tuple[float, float]:
    """Percentile bootstrap 95 % interval of the mean of ``values`` (nan when empty)."""
    if values.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(0)
    means = values[rng.integers(0, values.size, (BOOTSTRAP_RESAMPLES, values.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def _ratio(time_s: float, uniform_s: float) -> float:
    """``time_s / uniform_s``; nan when uniform's time is 0 (target met before training)."""
    return time_s / uniform_s if uniform_s > 0 else float("nan")


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _cell(value: object) -> object:
    return f"{value:.5f}" if isinstance(value, float) else value


def _plot(path: Path, points: Sequence[CurvePoint], summaries: Sequence[SamplerSummary]) -> None:
    """Accuracy vs training wall time: each sampler's mean over seeds on a common time grid
    (each run's curve held constant between validations), with its min-max band."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    runs = _runs(points)
    figure = Figure(figsize=(8, 4.8), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    end = max(wall[-1] for wall, _ in runs.values())
    grid = np.linspace(0.0, end, 200)
    for s in summaries:
        curves = []
        for (name, _seed), (wall, acc) in runs.items():
            if name != s.sampler:
                continue
            position = np.searchsorted(wall, grid, side="right") - 1
            curve = np.where(position >= 0, acc[np.clip(position, 0, None)], np.nan)
            curve[grid > wall[-1]] = np.nan
            curves.append(curve)
        stack = np.ma.masked_invalid(np.vstack(curves))
        mean, low, high = (v.filled(np.nan) for v in (stack.mean(0), stack.min(0), stack.max(0)))
        (line,) = axes.plot(grid, mean, label=s.sampler)
        axes.fill_between(grid, low, high, color=line.get_color(), alpha=0.18)
    target = summaries[0].target_accuracy
    axes.axhline(target, color="0.4", linestyle="--", linewidth=1, label=f"target {target:.3f}")
    seeds = len({p.seed for p in points})
    axes.set(xlabel="training wall time (s, evaluation excluded)", ylabel="validation accuracy",
             title=f"Validation accuracy vs training time (mean, min-max of {seeds} seeds)")  # fmt: skip
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    with atomic_output(path) as tmp:
        figure.savefig(tmp, format="png")
