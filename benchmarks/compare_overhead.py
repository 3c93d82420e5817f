"""The sampler comparison's own overhead (splitting, statistics, files and plot) against
the training seconds it measures, for a study of the size docs/results.md reports.

Splits 215 patients with 7,553 patches (the size of ../shared/data/patches/idc_cohort) and
judges and writes a made-up study of 4 samplers x SEEDS seeds, 40 validations per run,
then prints each part's seconds and its share of the study's training seconds
(4 x SEEDS x BUDGET). No training runs; no limits.

    python benchmarks/compare_overhead.py [SEEDS] [BUDGET_S]
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cdfis_desktop.core.config import RunConfig
from cdfis_desktop.core.experiments.compare import (
    ComparisonRuns,
    CurvePoint,
    Protocol,
    RunRecord,
    SplitInfo,
    judge_comparison,
)
from cdfis_desktop.core.experiments.comparison_outputs import write_outputs
from cdfis_desktop.core.training.splits import three_way_split

SAMPLERS = {"uniform": 1.0, "topk": 0.8, "cdf-presample": 0.5, "cdf-history": 1.1}


def made_up_study(seeds: int, budget_s: float, split: SplitInfo, split_s: float) -> ComparisonRuns:
    rng = np.random.default_rng(0)
    protocol = Protocol(samplers=tuple(SAMPLERS), seeds=seeds)
    points, runs, run_id = [], [], 1
    for seed in range(seeds):
        for order, name in enumerate(SAMPLERS):
            for k in range(41):
                t = k * budget_s / 40
                v = 0.5 + 0.3 * (1 - math.exp(-SAMPLERS[name] * 5 * t / budget_s))
                v += 0.03 * rng.standard_normal() if k else 0.0
                share = {10: 0.25, 20: 0.5, 40: 1.0}.get(k, math.nan)
                points.append(
                    CurvePoint(
                        name,
                        seed,
                        run_id,
                        10 * k,
                        t,
                        640 * k,
                        640 * k,
                        1 - v,
                        v,
                        v,
                        v + 0.1,
                        share,
                        v,
                        v,
                        v + 0.1,
                    )  # fmt: skip
                )
            runs.append(RunRecord(name, seed, order, run_id, math.nan, budget_s, budget_s))
            run_id += 1
    return ComparisonRuns(
        protocol, RunConfig(epochs=None, time_budget_s=budget_s), budget_s, split, 0.5, points,
        runs, 0.0, split_s,
    )  # fmt: skip


def main() -> None:
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    budget_s = float(sys.argv[2]) if len(sys.argv) > 2 else 300.0
    rng = np.random.default_rng(1)
    patients = np.repeat(np.arange(215).astype(str), 35)[:7553]
    labels = (rng.random(patients.size) < 0.26).astype(np.int64)
    started = time.perf_counter()
    patients_split = three_way_split(patients, labels, 40 / 215, 40 / 215, seed=0)
    split_s = time.perf_counter() - started
    counts = {"train": {0: 4000, 1: 1400}, "val": {0: 1000, 1: 400}, "test": {0: 1000, 1: 400}}
    runs = made_up_study(seeds, budget_s, SplitInfo(patients_split, counts), split_s)
    started = time.perf_counter()
    summary = judge_comparison(runs)
    statistics_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        write_outputs(Path(folder), runs, summary, statistics_s=statistics_s)
        outputs_s = time.perf_counter() - started
    training_s = len(SAMPLERS) * seeds * budget_s
    total = split_s + statistics_s + outputs_s
    print(f"study: {len(SAMPLERS)} samplers x {seeds} seeds x {budget_s:g} s = {training_s:g} s")
    for name, seconds in (("split", split_s), ("statistics", statistics_s),
                          ("files and plot", outputs_s), ("total", total)):  # fmt: skip
        print(f"{name:>15}: {seconds:7.3f} s = {seconds / training_s:.4%} of the training")


if __name__ == "__main__":
    main()
