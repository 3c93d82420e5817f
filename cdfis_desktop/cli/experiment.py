"""``cdfis experiment``: experiments that compare the sampling rules.

``cdfis experiment synthetic --out DIR [--seeds N] [--steps N]`` trains the same small MLP
on a synthetic dataset with uniform, top-k, CDF (presample) and CDF (history) selection
for each seed, writes DIR/results.csv and DIR/accuracy.png and prints a summary table.
The design of the dataset is documented in ``cdfis_desktop.core.experiments.synthetic``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cdfis_desktop.cli.common import positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "experiment",
        help="run an experiment that compares the sampling rules",
        description="Experiments that compare uniform, top-k and CDF-based selection.",
    )
    experiments = parser.add_subparsers(
        dest="experiment", metavar="EXPERIMENT", parser_class=type(parser), required=True
    )
    synthetic = experiments.add_parser(
        "synthetic",
        help="uniform vs top-k vs CDF (presample) vs CDF (history) on a synthetic dataset",
        description=(
            "Train the same small MLP on a synthetic 2-class dataset (easy clusters, a rare "
            "hard subgroup, 5%% flipped labels) with each sampler and seed; write "
            "results.csv and accuracy.png into --out and print a summary table."
        ),
    )
    synthetic.add_argument("--out", required=True, type=Path, help="output folder")
    synthetic.add_argument("--seeds", type=positive_int, default=3, help="seeds (default 3)")
    synthetic.add_argument(
        "--steps", type=positive_int, default=400, help="training steps per run (default 400)"
    )
    synthetic.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cdfis_desktop.core.experiments.synthetic import (
        SyntheticSettings,
        run_experiment,
        summary_table,
    )

    settings = SyntheticSettings(steps=args.steps, eval_every=max(1, min(25, args.steps // 10)))

    def announce(sampler: str, seed: int) -> None:
        print(f"training {sampler} (seed {seed})", file=sys.stderr, flush=True)

    rows = run_experiment(args.out, args.seeds, settings, on_run=announce)
    print(summary_table(rows))
    print(f"wrote {args.out / 'results.csv'} and {args.out / 'accuracy.png'}")
    return 0
