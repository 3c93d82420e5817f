"""A comparison's runs made up from known learning curves (no training), for testing the
files, the project records, the report page and the GUI dialog.

Each run validates every 2.5 % of a 100 s budget; its validation balanced accuracy is
``0.5 + 0.4 (1 - exp(-speed x pace x t / 20))`` plus small seeded noise, where ``pace``
differs per seed and ``speed`` per sampler (uniform 1), so a sampler of speed 2 reaches
any level in half of uniform's time. The test set is scored at 25, 50 and 100 % of the
budget with the curve's value at that time.
"""

from __future__ import annotations

import math

import numpy as np

from cdfis_desktop.core.config import RunConfig
from cdfis_desktop.core.experiments.compare import (
    ComparisonRuns,
    CurvePoint,
    Protocol,
    RunRecord,
    SplitInfo,
)
from cdfis_desktop.core.training.splits import GroupSplit

BUDGET_S = 100.0
SPEEDS = {"uniform": 1.0, "cdf-history": 2.0, "topk": 0.8}


def synthetic_runs(
    seeds: int = 6, speeds: dict[str, float] = SPEEDS, first_run_id: int = 1
) -> ComparisonRuns:
    rng = np.random.default_rng(0)
    protocol = Protocol(samplers=tuple(speeds), seeds=seeds, val_cadence=0.025)
    points: list[CurvePoint] = []
    runs: list[RunRecord] = []
    run_id = first_run_id
    for seed in range(seeds):
        pace = rng.uniform(1.5, 2.5)
        for order, name in enumerate(rng.permutation(list(speeds))):
            for k in range(41):
                t = k * protocol.val_cadence * BUDGET_S
                value = 0.5 + 0.4 * (1 - math.exp(-speeds[name] * pace * t / 20))
                value += 0.005 * rng.standard_normal() if k else 0.0
                share = {10: 0.25, 20: 0.5, 40: 1.0}.get(k, math.nan)
                test = (value - 0.02, value + 0.05) if k in (10, 20, 40) else (math.nan,) * 2
                points.append(
                    CurvePoint(
                        str(name),
                        seed,
                        run_id,
                        10 * k,
                        t,
                        64 * 10 * k,
                        64 * 10 * k,
                        1 - value,
                        value,
                        value,
                        value + 0.05,
                        share,
                        value - 0.02,
                        *test,
                    )
                )
            switch = math.nan if name == "uniform" else 5.0
            runs.append(RunRecord(str(name), seed, order, run_id, switch, BUDGET_S, 1.3 * BUDGET_S))
            run_id += 1
    split = SplitInfo(
        GroupSplit(("p1", "p2", "p3"), ("p4",), ("p5",)),
        {"train": {0: 300, 1: 100}, "val": {0: 80, 1: 30}, "test": {0: 70, 1: 40}},
    )
    base = RunConfig(epochs=None, time_budget_s=BUDGET_S, batch_size=64, input_px=48)
    return ComparisonRuns(protocol, base, BUDGET_S, split, 0.5, points, runs, 10.0, 0.01)
