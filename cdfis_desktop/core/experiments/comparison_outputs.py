"""The files of a sampler comparison, written atomically into one folder.

- ``results.csv``: one row per validation of every run (:data:`RESULT_COLUMNS`), with the
  smoothed target metric the times are read from and the test metrics where the test set
  was scored.
- ``runs.csv``: one row per run (:data:`RUN_COLUMNS`): its outcome against the target and
  its paired ratio to uniform's run of the same seed.
- ``summary.csv``: one row per sampler (:data:`SUMMARY_COLUMNS`).
- ``fixed_budget.csv``: test metrics per sampler and budget share (:data:`FIXED_BUDGET_COLUMNS`).
- ``comparison.png``: see :mod:`.comparison_plot`.
- ``summary.md``: the conclusion in words with its numbers, the tables, and how it was
  measured, including the protocol's own overhead.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from cdfis_desktop.core.experiments.compare import ComparisonRuns
from cdfis_desktop.core.experiments.comparison_plot import plot_comparison
from cdfis_desktop.core.experiments.comparison_stats import (
    ComparisonSummary,
    PairedEstimate,
    SamplerSummary,
    ratio_to_uniform,
    smooth,
)
from cdfis_desktop.core.experiments.comparison_summary import Overhead, summary_markdown
from cdfis_desktop.core.reporting.files import atomic_output, ensure_folder

RESULT_COLUMNS = (
    "sampler",
    "seed",
    "run_id",
    "step",
    "wall_s",
    "samples_forwarded",
    "samples_backpropagated",
    "val_loss",
    "val_accuracy",
    "val_balanced_accuracy",
    "val_auc",
    "val_smoothed",
    "test_share",
    "test_accuracy",
    "test_balanced_accuracy",
    "test_auc",
)
RUN_COLUMNS = (
    "sampler",
    "seed",
    "order",
    "run_id",
    "reached",
    "time_to_target_s",
    "steps_to_target",
    "samples_forwarded_to_target",
    "samples_backpropagated_to_target",
    "ratio_to_uniform",
    "plateau",
    "switch_s",
    "before_switch",
    "train_s",
    "elapsed_s",
)
SUMMARY_COLUMNS = (
    "sampler",
    "seeds",
    "seeds_reaching_target",
    "seeds_reaching_before_switch",
    "target_metric",
    "target",
    "baseline",
    "plateau_mean",
    "plateau_std",
    "time_to_target_geomean_s",
    "ratio_geomean",
    "ratio_ci95_low",
    "ratio_ci95_high",
    "ratio_p_value",
    "steps_to_target_mean",
    "samples_forwarded_to_target_mean",
    "samples_backpropagated_to_target_mean",
    "samples_forwarded_ratio_geomean",
    "samples_backpropagated_ratio_geomean",
    "warmup_share_mean",
    "test_balanced_accuracy_mean",
    "test_auc_mean",
    "test_balanced_accuracy_diff",
    "test_balanced_accuracy_diff_ci95_low",
    "test_balanced_accuracy_diff_ci95_high",
    "test_auc_diff",
    "test_auc_diff_ci95_low",
    "test_auc_diff_ci95_high",
)
FIXED_BUDGET_COLUMNS = (
    "sampler",
    "budget_share",
    "seeds",
    "test_balanced_accuracy_mean",
    "test_balanced_accuracy_diff",
    "test_balanced_accuracy_diff_ci95_low",
    "test_balanced_accuracy_diff_ci95_high",
    "test_balanced_accuracy_diff_p_value",
    "test_auc_mean",
    "test_auc_diff",
    "test_auc_diff_ci95_low",
    "test_auc_diff_ci95_high",
    "test_auc_diff_p_value",
)
OUTPUT_FILES = ("results.csv", "runs.csv", "summary.csv", "fixed_budget.csv",
                "comparison.png", "summary.md")  # fmt: skip


def write_results(out_dir: Path, runs: ComparisonRuns) -> Path:
    """results.csv alone (the raw curves; written even when the target is refused)."""
    ensure_folder(out_dir)
    smoothed = _smoothed_by_point(runs)
    rows = [
        [
            p.sampler,
            p.seed,
            p.run_id,
            p.step,
            f"{p.wall_s:.3f}",
            p.samples_forwarded,
            p.samples_backpropagated,
            *map(
                _cell,
                (
                    p.val_loss,
                    p.val_accuracy,
                    p.val_balanced_accuracy,
                    p.val_auc,
                    smoothed.get((p.run_id, p.step), math.nan),
                    p.test_share,
                    p.test_accuracy,
                    p.test_balanced_accuracy,
                    p.test_auc,
                ),
            ),
        ]
        for p in runs.points
    ]
    return _write_csv(out_dir / "results.csv", RESULT_COLUMNS, rows)


def write_outputs(
    out_dir: Path, runs: ComparisonRuns, summary: ComparisonSummary, *, statistics_s: float
) -> list[Path]:
    """Write every file of :data:`OUTPUT_FILES` into ``out_dir``; their paths.
    ``statistics_s``: seconds :func:`judge_comparison` took (reported as overhead)."""
    started = time.perf_counter()
    paths = [write_results(out_dir, runs)]
    paths.append(_write_csv(out_dir / "runs.csv", RUN_COLUMNS, _run_rows(runs, summary)))
    paths.append(
        _write_csv(
            out_dir / "summary.csv",
            SUMMARY_COLUMNS,
            [_summary_row(s, summary) for s in summary.samplers],
        )
    )
    fixed_rows = [
        [
            f.sampler,
            f"{f.budget_share:g}",
            f.seeds,
            _cell(f.test_balanced_accuracy_mean),
            *_paired_cells(f.balanced_accuracy_diff),
            _cell(f.test_auc_mean),
            *_paired_cells(f.auc_diff),
        ]
        for f in summary.fixed_budget
    ]
    paths.append(_write_csv(out_dir / "fixed_budget.csv", FIXED_BUDGET_COLUMNS, fixed_rows))
    paths.append(plot_comparison(out_dir / "comparison.png", runs, summary))
    overhead = Overhead(
        runs.split_s, statistics_s, time.perf_counter() - started, sum(r.train_s for r in runs.runs)
    )
    markdown = summary_markdown(runs, summary, overhead)
    with atomic_output(out_dir / "summary.md") as tmp:
        tmp.write_text(markdown, encoding="utf-8")
    paths.append(out_dir / "summary.md")
    return paths


def _run_rows(runs: ComparisonRuns, summary: ComparisonSummary) -> list[list[object]]:
    outcome = {(o.sampler, o.seed): o for o in summary.outcomes}
    rows: list[list[object]] = []
    for r in runs.runs:
        o = outcome[(r.sampler, r.seed)]
        rows.append(
            [
                r.sampler,
                r.seed,
                r.order,
                r.run_id,
                int(o.reached),
                _cell(o.time_s),
                o.steps,
                o.forwarded,
                o.backpropagated,
                _cell(ratio_to_uniform(o, outcome)),
                _cell(o.plateau),
                _cell(r.switch_s),
                int(o.before_switch),
                _cell(r.train_s),
                _cell(r.elapsed_s),
            ]
        )
    return rows


def _summary_row(s: SamplerSummary, summary: ComparisonSummary) -> list[object]:
    target = summary.target
    return [
        s.sampler,
        s.seeds,
        s.seeds_reaching_target,
        s.seeds_reaching_before_switch,
        target.metric,
        _cell(target.value),
        _cell(target.baseline),
        _cell(s.plateau_mean),
        _cell(s.plateau_std),
        _cell(s.time_to_target_geomean_s),
        *_paired_cells(s.ratio),
        *map(
            _cell,
            (
                s.steps_to_target_mean,
                s.samples_forwarded_to_target_mean,
                s.samples_backpropagated_to_target_mean,
                s.samples_forwarded_ratio_geomean,
                s.samples_backpropagated_ratio_geomean,
                s.warmup_share_mean,
                s.test_balanced_accuracy_mean,
                s.test_auc_mean,
            ),
        ),
        *_paired_cells(s.test_balanced_accuracy_diff)[:3],
        *_paired_cells(s.test_auc_diff)[:3],
    ]


def _smoothed_by_point(runs: ComparisonRuns) -> dict[tuple[int, int], float]:
    """(run id, step) -> smoothed target metric, for the validations after training began."""
    metric = f"val_{runs.protocol.target_metric}"
    out: dict[tuple[int, int], float] = {}
    for record in runs.runs:
        mine = [p for p in runs.points if p.run_id == record.run_id and p.step > 0]
        values = smooth(
            np.array([getattr(p, metric) for p in mine]), runs.protocol.smoothing_window
        )
        out.update({(p.run_id, p.step): float(v) for p, v in zip(mine, values, strict=True)})
    return out


def _write_csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    with atomic_output(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def _paired_cells(e: PairedEstimate) -> list[object]:
    return [_cell(e.estimate), _cell(e.ci95_low), _cell(e.ci95_high), _cell(e.p_value)]


def _cell(value: float) -> str:
    """A CSV cell: 6 significant digits, empty for nan, ``inf`` for infinity."""
    return "" if math.isnan(value) else f"{value:.6g}"
