"""summary.md of a sampler comparison: the conclusion in words with its numbers, the
set-up, the tables (time to target, cost, fixed budget, runs) and how it was measured,
including the protocol's own overhead. A sampler is called faster (slower) than uniform
only when the 95 % interval of its time ratio lies below (above) 1 and p < 0.05.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from cdfis_desktop.core.experiments.compare import ComparisonRuns
from cdfis_desktop.core.experiments.comparison_stats import (
    FEW_SEEDS,
    PLATEAU_SHARE,
    REFERENCE,
    ComparisonSummary,
    PairedEstimate,
    SamplerSummary,
    ratio_to_uniform,
)

_SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class Overhead:
    """Seconds the protocol itself cost (splitting, statistics, files and plot) against the
    training seconds it measured (all runs, the discarded warm-up run excluded)."""

    split_s: float
    statistics_s: float
    outputs_s: float
    training_s: float

    @property
    def share(self) -> float:
        total = self.split_s + self.statistics_s + self.outputs_s
        return total / self.training_s if self.training_s > 0 else math.nan


def conclusion(runs: ComparisonRuns, summary: ComparisonSummary) -> list[str]:
    """The conclusion in words, one sentence (or short paragraph) per line."""
    target = summary.target
    by_name = {s.sampler: s for s in summary.samplers}
    metric = _metric_name(target.metric)
    lines = [
        f"Target: validation {metric} {target.value:.3f} ({target.rule}); always predicting "
        f"the majority class scores {target.baseline:.3f}."
    ]
    seeds = runs.protocol.seeds
    if seeds < FEW_SEEDS:
        lines.append(
            f"Only {seeds} seed(s): the intervals and p-values below mean little (the "
            f"smallest p-value {seeds} paired seeds can give is {2 / 2**seeds:.3g})."
        )
    faster, slower = [], []
    for s in summary.samplers:
        if s.sampler == REFERENCE:
            lines.append(
                f"uniform reached its own target in {s.seeds_reaching_target} of {s.seeds} "
                f"seeds; at the full budget its test balanced accuracy was "
                f"{s.test_balanced_accuracy_mean:.3f} and its test AUC {s.test_auc_mean:.3f}."
            )
            continue
        verdict = _verdict(s.ratio)
        if verdict == "faster":
            faster.append(s.sampler)
        elif verdict == "slower":
            slower.append(s.sampler)
        lines.append(_sampler_sentence(s, verdict, by_name.get(REFERENCE)))
    if REFERENCE in by_name and len(summary.samplers) > 1:
        lines.append(
            "Overall: "
            + (
                f"{', '.join(faster)} reached the target faster than uniform"
                if faster
                else "no sampler reached the target measurably faster than uniform"
            )
            + (f"; {', '.join(slower)} took measurably longer." if slower else ".")
        )
    return lines


def summary_markdown(runs: ComparisonRuns, summary: ComparisonSummary, overhead: Overhead) -> str:
    """summary.md: conclusion, set-up, tables, and how it was measured."""
    base, protocol, target = runs.base, runs.protocol, summary.target
    sampler = base.sampler
    patients = runs.split.patients
    metric = _metric_name(target.metric)

    def counts(role: str) -> str:
        return ", ".join(
            f"class {c}: {n}" for c, n in sorted(runs.split.class_counts[role].items())
        )

    rising = target.uniform_plateau - target.uniform_earlier
    plateau_text = (
        "-"
        if not math.isfinite(rising)
        else f"mean of the last {PLATEAU_SHARE:.0%} of the budget {target.uniform_plateau:.3f}, of "
        f"the {PLATEAU_SHARE:.0%} before {target.uniform_earlier:.3f} ({rising:+.3f}: "
        + ("plateaued" if abs(rising) < 0.01 else "still changing; a longer budget would help")
        + ")"
    )
    warmup = (
        f"one discarded uniform warm-up run of {protocol.warmup_run_share:.0%} of the budget "
        f"({runs.warmup_run_s:.1f} s wall time), then a seeded random order per seed"
        if protocol.warmup_run_share > 0
        else "no warm-up run; a seeded random order per seed"
    )
    lines = [
        "# Sampler comparison",
        "",
        f"Made {datetime.now().isoformat(timespec='seconds')} by `cdfis compare`.",
        "",
        "## Conclusion",
        "",
        *[f"- {line}" for line in conclusion(runs, summary)],
        "",
        "## Set-up",
        "",
        "| | |",
        "|---|---|",
        f"| samplers | {', '.join(protocol.samplers)} |",
        f"| seeds | {protocol.seeds} ({base.seed} to {base.seed + protocol.seeds - 1}) |",
        f"| budget | {runs.budget_s:g} s of training per run (evaluation excluded); validation "
        f"every {protocol.val_cadence * runs.budget_s:.3g} s ({protocol.val_cadence:.1%} of the "
        "budget), the same instants for every sampler |",
        f"| model | {base.model}, batch {base.batch_size}, learning rate {base.learning_rate:g}, "
        f"input {base.input_px} px, augmentation {'on' if base.augment else 'off'}, device "
        f"{base.device} |",
        f"| sampler settings | metric {sampler.metric}, presample ratio "
        f"{sampler.presample_ratio:g}, floor {sampler.floor:g}, warm-up {sampler.warmup}, "
        f"weighting {sampler.weighting} |",
        f"| split by patient (seed {base.seed}, stratified) | training {len(patients.train)} "
        f"patients ({counts('train')}); validation {len(patients.val)} ({counts('val')}); "
        f"test {len(patients.test)} ({counts('test')}) |",
        f"| target | validation {metric} {target.value:.4f} ({target.rule}); majority-class "
        f"baseline {target.baseline:.4f} |",
        f"| uniform's curve | {plateau_text} |",
        f"| order | {warmup} |",
        "",
        "## Time to target",
        "",
        "Times are training seconds on the smoothed validation curve; a run that never "
        "reaches the target counts at the budget (censored), which makes its ratio a lower "
        "bound. Ratio: per seed to uniform's run of the same seed, geometric mean over seeds.",
        "",
        "| sampler | seeds reaching | reached while still uniform | time to target | "
        "ratio to uniform (95 % CI) | p (signed-rank) | plateau | share of budget before "
        "IS switched on |",
        "|---|---|---|---|---|---|---|---|",
        *[
            f"| {s.sampler} | {s.seeds_reaching_target} of {s.seeds} | "
            f"{s.seeds_reaching_before_switch} | {s.time_to_target_geomean_s:.1f} s | "
            f"{_ratio_text(s.ratio)} | {_number(s.ratio.p_value, 3)} | "
            f"{s.plateau_mean:.3f} +- {s.plateau_std:.3f} | {_percent(s.warmup_share_mean)} |"
            for s in summary.samplers
        ],
        "",
        "## Cost to target (independent of the machine)",
        "",
        "Means over seeds at the validation that reached the target (the last validation for "
        "censored runs); ratios are paired geometric means to uniform.",
        "",
        "| sampler | steps | samples forwarded | samples back-propagated | forwarded ratio | "
        "back-propagated ratio |",
        "|---|---|---|---|---|---|",
        *[
            f"| {s.sampler} | {s.steps_to_target_mean:.0f} | "
            f"{s.samples_forwarded_to_target_mean:.0f} | "
            f"{s.samples_backpropagated_to_target_mean:.0f} | "
            f"{_number(s.samples_forwarded_ratio_geomean, 2)} | "
            f"{_number(s.samples_backpropagated_ratio_geomean, 2)} |"
            for s in summary.samplers
        ],
        "",
        "## Test set at fixed budgets",
        "",
        "Scored at the first validation at or after each share of the budget; differences are "
        "paired per seed to uniform (mean, 95 % bootstrap interval).",
        "",
        "| sampler | budget | test balanced accuracy | difference to uniform | test AUC | "
        "difference to uniform |",
        "|---|---|---|---|---|---|",
        *[
            f"| {f.sampler} | {f.budget_share:.0%} | {_number(f.test_balanced_accuracy_mean, 3)} "
            f"| {_difference_text(f.balanced_accuracy_diff)} | {_number(f.test_auc_mean, 3)} | "
            f"{_difference_text(f.auc_diff)} |"
            for f in summary.fixed_budget
        ],
        "",
        "## Runs",
        "",
        "| seed | order | sampler | run | reached | time to target | ratio to uniform | test "
        "balanced accuracy (full budget) |",
        "|---|---|---|---|---|---|---|---|",
        *_run_table(runs, summary),
        "",
        "## How it was measured",
        "",
        f"- Smoother: the centred running median of {protocol.smoothing_window} consecutive "
        f"validations (the {protocol.smoothing_window} nearest near the ends). Up to "
        f"{protocol.smoothing_window // 2} outlying validations in a row cannot move it, and "
        "a curve that rises steadily keeps its times, so a sampler twice as fast keeps a "
        "ratio of 0.5.",
        f"- Plateau: the mean of a run's validations in the last {PLATEAU_SHARE:.0%} of the "
        "budget.",
        "- Intervals: percentile bootstrap over seeds (10,000 resamples, paired by seed); "
        "p-values: exact two-sided Wilcoxon signed-rank test on the paired log ratios "
        "(differences for test metrics).",
        "- Reached while still uniform: before importance sampling switched on the sampler "
        "trains exactly like uniform, so such times say nothing about it.",
        f"- Protocol overhead: splitting {overhead.split_s:.3f} s, statistics "
        f"{overhead.statistics_s:.3f} s, files and plot {overhead.outputs_s:.3f} s = "
        f"{_percent(overhead.share, 3)} of the {overhead.training_s:.0f} s of training measured.",
        f"- Wall time of all runs: {sum(r.elapsed_s for r in runs.runs):.0f} s (set-up and "
        "evaluation included, the warm-up run excluded).",
        "",
    ]
    return "\n".join(lines)


def _sampler_sentence(s: SamplerSummary, verdict: str, uniform: SamplerSummary | None) -> str:
    parts = [f"{s.sampler} reached the target in {s.seeds_reaching_target} of {s.seeds} seeds"]
    if s.ratio.pairs:
        how = {
            "faster": "faster than uniform",
            "slower": "slower than uniform",
            "unclear": "not measurably different from uniform",
        }[verdict]
        parts.append(
            f"its time to target was {s.ratio.estimate:.2f} x uniform's (geometric mean over "
            f"{s.ratio.pairs} paired seeds, 95 % CI {s.ratio.ci95_low:.2f}-{s.ratio.ci95_high:.2f}, "
            f"p = {s.ratio.p_value:.3g}): {how}"
        )
    if s.seeds_reaching_target < s.seeds:
        parts.append(
            f"{s.seeds - s.seeds_reaching_target} censored seed(s) count at the budget, so the "
            "ratio is a lower bound"
        )
    if s.seeds_reaching_before_switch:
        parts.append(
            f"in {s.seeds_reaching_before_switch} seed(s) it reached the target before "
            "importance sampling switched on, when it still trained like uniform"
        )
    text = "; ".join(parts) + "."
    if uniform is not None and s.test_balanced_accuracy_diff.pairs:
        d = s.test_balanced_accuracy_diff
        text += (
            f" At the full budget its test balanced accuracy was "
            f"{s.test_balanced_accuracy_mean:.3f} (uniform {uniform.test_balanced_accuracy_mean:.3f}; "
            f"difference {_difference_text(d)})."
        )
    return text


def _verdict(ratio: PairedEstimate) -> str:
    """faster / slower when the interval excludes 1 and p < 0.05, else unclear."""
    if ratio.pairs == 0 or not ratio.p_value < _SIGNIFICANCE:
        return "unclear"
    if ratio.ci95_high < 1.0:
        return "faster"
    return "slower" if ratio.ci95_low > 1.0 else "unclear"


def _run_table(runs: ComparisonRuns, summary: ComparisonSummary) -> list[str]:
    outcome = {(o.sampler, o.seed): o for o in summary.outcomes}
    tests = _full_budget_tests(runs)
    rows = []
    for r in sorted(runs.runs, key=lambda r: (r.seed, r.order)):
        o = outcome[(r.sampler, r.seed)]
        ratio = ratio_to_uniform(o, outcome)
        rows.append(
            f"| {r.seed} | {r.order + 1} | {r.sampler} | {r.run_id} | {'yes' if o.reached else 'no'} "
            f"| {o.time_s:.1f} s{'' if o.reached else ' (censored)'} | {_number(ratio, 2)} | "
            f"{_number(tests.get(r.run_id, math.nan), 3)} |"
        )
    return rows


def _full_budget_tests(runs: ComparisonRuns) -> dict[int, float]:
    """run id -> test balanced accuracy at the full budget."""
    return {p.run_id: p.test_balanced_accuracy for p in runs.points if p.test_share == 1.0}


def _number(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "-"


def _percent(value: float, digits: int = 0) -> str:
    return f"{value:.{digits}%}" if math.isfinite(value) else "-"


def _ratio_text(e: PairedEstimate) -> str:
    if not e.pairs:
        return "-"
    return f"{e.estimate:.2f} ({e.ci95_low:.2f}-{e.ci95_high:.2f})"


def _difference_text(e: PairedEstimate) -> str:
    if not e.pairs:
        return "-"
    return f"{e.estimate:+.3f} ({e.ci95_low:+.3f} to {e.ci95_high:+.3f})"


def _metric_name(metric: str) -> str:
    return metric.replace("_", " ").replace("auc", "AUC")
