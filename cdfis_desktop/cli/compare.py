"""``cdfis compare``: the paper's evaluation (accuracy vs training wall time, per sampler).

Trains every sampler with the same data, model and seeds; every run is stored in the
project. Writes results.csv, summary.csv and comparison.png (see
:mod:`cdfis_desktop.core.experiments.compare`) and prints the summary table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cdfis_desktop.cli._run_options import add_run_options, run_config_from
from cdfis_desktop.cli.common import existing_path, fraction, positive_int


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare samplers: validation accuracy against training wall time",
        description=(
            "Train the same model on the same data with each sampler and seed, then compare "
            "validation accuracy against training wall time (evaluation excluded) and the "
            "time each sampler needs to reach a target accuracy, as a ratio to uniform."
        ),
    )
    parser.add_argument("--project", required=True, type=existing_path, help="project folder")
    parser.add_argument(
        "--samplers",
        default="uniform,topk,cdf-presample,cdf-history",
        help="comma-separated: uniform, topk, cdf-presample (or cdf), cdf-history (all four)",
    )
    parser.add_argument("--seeds", type=positive_int, default=3, help="seeds per sampler (3)")
    parser.add_argument(
        "--target-accuracy",
        type=fraction,
        metavar="A",
        help="accuracy to time (default: uniform's mean final accuracy)",
    )
    parser.add_argument("--out", type=Path, default=Path("compare-results"), help="output folder")
    parser.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda:N, mps")
    add_run_options(parser, sampler_choice=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cdfis_desktop.cli.train import CancelOnSigint
    from cdfis_desktop.core.experiments.compare import (
        parse_samplers,
        run_comparison,
        summarise,
        summary_lines,
        write_outputs,
    )
    from cdfis_desktop.core.progress import Cancelled, CancelToken
    from cdfis_desktop.core.storage import Project

    samplers = parse_samplers(args.samplers)
    base = run_config_from(args)
    cancel = CancelToken()

    def announce(sampler: str, seed: int, run_id: int) -> None:
        print(f"run {run_id}: {sampler}, seed {seed}", flush=True)

    with Project.open(args.project) as project, CancelOnSigint(cancel):
        try:
            points = run_comparison(
                project, base, samplers, args.seeds, on_run=announce, cancel=cancel
            )
        except Cancelled:
            print("comparison cancelled; the finished runs stay in the project", file=sys.stderr)
            return 130
    summaries = summarise(points, args.target_accuracy)
    for path in write_outputs(args.out, points, summaries):
        print(f"wrote {path}")
    print("\n".join(summary_lines(summaries)))
    return 0
