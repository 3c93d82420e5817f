"""Options that define a training run, shared by ``cdfis train`` and ``cdfis compare``.

``add_run_options(parser)`` adds them (all default to None = "the RunConfig default");
``run_config_from(args)`` turns the given ones into a :class:`RunConfig`.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from cdfis_desktop.cli.common import fraction, positive_float, positive_int
from cdfis_desktop.core.config import (
    MODEL_NAMES,
    SAMPLER_MODES,
    SAMPLER_RULES,
    SCORE_METRICS,
    WEIGHTINGS,
)

# options that define a run; --resume takes them from the stored run instead
RUN_OPTIONS = (
    "preset", "sampler", "mode", "metric", "presample", "batch", "epochs", "time_budget", "steps",
    "warmup", "weighting", "floor", "model", "seed", "lr", "input_px", "no_augment",
    "val_every", "patience", "weights", "val_groups", "workers",
)  # fmt: skip


def add_run_options(parser: argparse.ArgumentParser, *, sampler_choice: bool = True) -> None:
    """Add the run options; ``sampler_choice`` False leaves out --sampler/--mode (for
    commands that set them per run, like ``cdfis compare``)."""
    sampling = parser.add_argument_group("sampling")
    if sampler_choice:
        sampling.add_argument(
            "--preset",
            metavar="NAME",
            help="a named sampler: uniform, topk, cdf-presample, cdf-history, ... (the full "
            "list is in docs/method.md and in the error for an unknown name); the options "
            "below override its fields. Default: cdf-prune (chosen on the evidence, see "
            "docs/results.md), unless --sampler or --mode is given",
        )
        sampling.add_argument(
            "--sampler",
            choices=SAMPLER_RULES,
            help="selection rule; with --sampler or --mode the other sampling fields start "
            "from plain defaults (rule uniform, mode presample), not from a preset",
        )
        sampling.add_argument(
            "--mode",
            choices=SAMPLER_MODES,
            help="presample (paper), history (ours) or prune (epoch-level, InfoBatch-style)",
        )
    sampling.add_argument("--metric", choices=SCORE_METRICS, help="score")
    sampling.add_argument(
        "--presample", type=positive_float, metavar="R", help="candidates per trained row (8)"
    )
    sampling.add_argument(
        "--warmup", metavar="RULE", help="none, steps:N, epochs:N, loss:F or variance:T"
    )
    sampling.add_argument("--weighting", choices=WEIGHTINGS, help="(none)")
    sampling.add_argument("--floor", type=fraction, metavar="F", help="uniform share in p (0)")
    stop = parser.add_argument_group("when to stop (one of)").add_mutually_exclusive_group()
    stop.add_argument("--epochs", type=positive_int, metavar="N", help="epochs (default 1)")
    stop.add_argument("--time-budget", type=positive_float, metavar="S", help="training seconds")
    stop.add_argument("--steps", type=positive_int, metavar="N", help="training steps")
    model = parser.add_argument_group("model and optimisation")
    model.add_argument("--model", choices=MODEL_NAMES, help="(smallcnn)")
    model.add_argument("--weights", metavar="FILE", help="initial weights (local state_dict)")
    model.add_argument("--batch", type=positive_int, metavar="N", help="batch size (128)")
    model.add_argument("--lr", type=positive_float, metavar="X", help="learning rate (1e-3)")
    model.add_argument("--input-px", type=positive_int, metavar="PX", help="input size (96)")
    model.add_argument("--no-augment", action="store_true", default=None, help="no augmentation")
    model.add_argument("--val-every", type=positive_int, metavar="N", help="validate every N steps")
    model.add_argument("--patience", type=positive_int, metavar="N", help="early stopping")
    model.add_argument("--seed", type=int, metavar="N", help="random seed (0)")
    model.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="worker processes decoding the patches before training (0: none)",
    )
    model.add_argument(
        "--val-groups",
        metavar="G,G",
        type=group_names,
        help="patients (slide groups) to validate on, the same for every seed",
    )


def group_names(text: str) -> tuple[str, ...]:
    """``"a, b,c"`` -> ``("a", "b", "c")``: patients (slide groups) named on the command line."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def run_config_from(args: argparse.Namespace) -> Any:
    """A RunConfig from the options given (RunConfig defaults for the rest). With
    ``--preset``, the sampler starts from the preset and the sampling options given
    override its fields; without ``--preset``, ``--sampler`` or ``--mode`` it starts from
    ``default_sampler_config()`` (CDF pruning, see ``presets.DEFAULT_PRESET``)."""
    from cdfis_desktop.core.config import RunConfig, SamplerConfig
    from cdfis_desktop.core.sampling.presets import default_sampler_config, preset_config

    sampler_values = {
        "rule": getattr(args, "sampler", None),
        "mode": getattr(args, "mode", None),
        "metric": args.metric,
        "presample_ratio": args.presample,
        "warmup": args.warmup,
        "weighting": args.weighting,
        "floor": args.floor,
    }
    given = {k: v for k, v in sampler_values.items() if v is not None}
    preset_name = getattr(args, "preset", None)
    if preset_name is not None:
        base = preset_config(preset_name)
    elif "rule" in given or "mode" in given:
        base = SamplerConfig()
    else:  # no sampler chosen: the default preset (docs/results.md)
        base = default_sampler_config()
    sampler = replace(base, **given)
    run_values = {
        "model": args.model,
        "weights_path": args.weights,
        "val_groups": args.val_groups,
        "batch_size": args.batch,
        "learning_rate": args.lr,
        "input_px": args.input_px,
        "val_every_steps": args.val_every,
        "early_stopping_patience": args.patience,
        "seed": args.seed,
        "num_workers": args.workers,
        "augment": False if args.no_augment else None,
    }
    values: dict[str, Any] = {k: v for k, v in run_values.items() if v is not None}
    if args.time_budget is not None:
        values.update(epochs=None, time_budget_s=args.time_budget)
    elif args.steps is not None:
        values.update(epochs=None, max_steps=args.steps)
    elif args.epochs is not None:
        values["epochs"] = args.epochs
    return RunConfig(sampler=sampler, device=args.device, **values)
