"""``cdfis compare``: does importance sampling save training time? (the sampler comparison)

Trains every sampler with the same data, model, seeds and budget of training seconds on a
three-way split by patient, then times each run to a target on its smoothed validation
curve, pairs the runs by seed, and scores the test set at fixed shares of the budget
(see :mod:`cdfis_desktop.core.experiments.compare`). Writes results.csv, runs.csv,
summary.csv, fixed_budget.csv, comparison.png and summary.md into ``--out``, keeps the
summary files in the project (for the GUI and the PDF report) and prints the conclusion.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cdfis_desktop.cli._run_options import add_run_options, group_names, run_config_from
from cdfis_desktop.cli.common import existing_path, fraction, open_project, positive_int


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare samplers: time to a target accuracy, paired by seed, and test scores",
        description=(
            "Train the same model on the same data with each sampler and seed for the same "
            "budget of training seconds (evaluation excluded), on a split of the patients "
            "into training, validation and test. Reports each sampler's time to a target "
            "validation score as a ratio to uniform (paired by seed, censored runs counted) "
            "and its test scores at 25, 50 and 100 %% of the budget."
        ),
    )
    parser.add_argument("--project", required=True, type=existing_path, help="project folder")
    parser.add_argument(
        "--samplers",
        default="uniform,topk,cdf-presample,cdf-history",
        help="comma-separated preset names (uniform, topk, cdf-presample or cdf, "
        "cdf-history, ...) or all (every preset)",
    )
    parser.add_argument("--seeds", type=positive_int, default=5, help="seeds per sampler (5)")
    parser.add_argument(
        "--test-groups",
        metavar="G,G",
        type=group_names,
        help="patients to test on (default: a stratified share, see --test-fraction)",
    )
    parser.add_argument(
        "--val-fraction", type=fraction, metavar="F", help="share of patients to validate on (0.2)"
    )
    parser.add_argument(
        "--test-fraction", type=fraction, metavar="F", help="share of patients to test on (0.2)"
    )
    target = parser.add_argument_group("target")
    target.add_argument(
        "--target-metric",
        choices=("balanced_accuracy", "accuracy", "auc"),
        default="balanced_accuracy",
        help="validation metric timed (balanced_accuracy)",
    )
    target.add_argument(
        "--target-accuracy",
        type=fraction,
        metavar="A",
        help="the level of the target metric to time (default: --target-fraction x "
        "uniform's plateau)",
    )
    target.add_argument(
        "--target-fraction",
        type=fraction,
        metavar="F",
        default=0.99,
        help="target = F x uniform's plateau (mean of its last 25 %% of validations) (0.99)",
    )
    protocol = parser.add_argument_group("protocol")
    protocol.add_argument(
        "--val-cadence",
        type=fraction,
        metavar="F",
        default=0.025,
        help="validate each time the training time passes a multiple of F x budget (0.025)",
    )
    protocol.add_argument(
        "--smoothing",
        type=positive_int,
        metavar="K",
        default=5,
        help="validations per running median of the curves (odd; 5)",
    )
    protocol.add_argument(
        "--warmup-run",
        type=fraction,
        metavar="F",
        default=0.1,
        help="budget of the discarded warm-up run, as a share of the budget (0.1; 0 = none)",
    )
    parser.add_argument("--out", type=Path, default=Path("compare-results"), help="output folder")
    parser.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda:N, mps")
    add_run_options(parser, sampler_choice=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    from cdfis_desktop.cli.train import CancelOnSigint
    from cdfis_desktop.core.errors import ConfigError
    from cdfis_desktop.core.experiments.compare import (
        Protocol,
        judge_comparison,
        parse_samplers,
        run_comparison,
    )
    from cdfis_desktop.core.experiments.comparison_outputs import write_outputs, write_results
    from cdfis_desktop.core.experiments.comparison_summary import conclusion
    from cdfis_desktop.core.progress import Cancelled, CancelToken
    from cdfis_desktop.core.reporting.comparisons import keep_in_project

    if args.time_budget is None:
        raise ConfigError("a comparison needs --time-budget S (training seconds per run)")
    protocol = Protocol(
        samplers=tuple(parse_samplers(args.samplers)),
        seeds=args.seeds,
        val=_one_of(args.val_groups, args.val_fraction, "validation"),
        test=_one_of(args.test_groups, args.test_fraction, "test"),
        target_metric=args.target_metric,
        target_value=args.target_accuracy,
        target_fraction=args.target_fraction,
        val_cadence=args.val_cadence,
        warmup_run_share=args.warmup_run,
        smoothing_window=args.smoothing,
    )
    base = run_config_from(args)
    cancel = CancelToken()

    def announce(sampler: str, seed: int, run_id: int) -> None:
        print(f"run {run_id}: {sampler}, seed {seed}", flush=True)

    with open_project(args.project) as project, CancelOnSigint(cancel):
        try:
            runs = run_comparison(project, base, protocol, on_run=announce, cancel=cancel)
        except Cancelled:
            print("comparison cancelled; the finished runs stay in the project", file=sys.stderr)
            return 130
    started = time.perf_counter()
    try:
        summary = judge_comparison(runs)
    except ConfigError:
        print(f"wrote {write_results(args.out, runs)} (the curves)", file=sys.stderr)
        raise
    paths = write_outputs(args.out, runs, summary, statistics_s=time.perf_counter() - started)
    for path in paths:
        print(f"wrote {path}")
    kept = keep_in_project(project.folder, args.out)
    print(f"kept the summary in {kept.folder}")
    print("\n".join(f"- {line}" for line in conclusion(runs, summary)))
    return 0


def _one_of(
    names: tuple[str, ...] | None, share: float | None, role: str
) -> tuple[str, ...] | float:
    """Named patients or a share (0.2 when neither is given); ConfigError for both."""
    from cdfis_desktop.core.errors import ConfigError

    if names is not None and share is not None:
        raise ConfigError(f"give the {role} patients by name or by share, not both")
    if names is not None:
        return names
    return 0.2 if share is None else share
