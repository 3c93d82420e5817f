"""``cdfis train``: train a patch classifier on a project, recording importance history.

Progress: a one-line bar redrawn with ``\\r`` on a terminal, plain lines (every 10 % of
the run or 10 s, and at each validation) otherwise. Ctrl-C stops gracefully: the history
is flushed, a checkpoint written, the run marked cancelled, and the command says how to
resume it (exit status 130). Review decisions (``cdfis review``) in force when the run
starts apply unless ``--ignore-review``. Multi-process: ``torchrun --nproc-per-node N -m
cdfis_desktop train ...`` (only rank 0 prints).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from dataclasses import replace
from typing import Any, TextIO

from cdfis_desktop.cli._run_options import RUN_OPTIONS, add_run_options, run_config_from
from cdfis_desktop.cli.common import existing_path, positive_int


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a classifier with importance sampling and record the history",
        description=(
            "Train a tissue-patch classifier on a project's labelled patches, choosing "
            "mini-batches uniformly, by top-k, or through the CDF of per-patch importance; "
            "every step's importance is recorded in the project. Validation is split by "
            "patient (slide group), never by patch."
        ),
    )
    parser.add_argument("--project", required=True, type=existing_path, help="project folder")
    add_run_options(parser)
    parser.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda:N, mps")
    parser.add_argument("--name", default="", help="a name for the run")
    parser.add_argument(
        "--resume", type=positive_int, metavar="RUN", help="continue run RUN from its checkpoint"
    )
    parser.add_argument(
        "--ignore-review",
        action="store_true",
        help="train on the stored labels, without the review decisions (cdfis review)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cdfis_desktop.core.errors import ConfigError
    from cdfis_desktop.core.progress import CancelToken
    from cdfis_desktop.core.storage import Project
    from cdfis_desktop.core.training.engine import Trainer

    given = [name for name in RUN_OPTIONS if getattr(args, name) is not None]
    given += ["ignore_review"] if args.ignore_review else []
    if args.resume is not None and given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ConfigError(
            f"--resume continues run {args.resume} with its stored settings; drop {flags}"
        )
    cancel = CancelToken()
    printer = TrainingProgress(sys.stdout, enabled=os.environ.get("RANK", "0") == "0")
    with Project.open(args.project) as project, CancelOnSigint(cancel):
        trainer = Trainer(project, run_name=args.name)
        if args.resume is not None:
            reports = trainer.iter_resume(args.resume, cancel)
        else:
            config = replace(run_config_from(args), use_review=not args.ignore_review)
            reports = trainer.iter_run(config, cancel)
        status = "finished"
        for report in reports:
            status = printer.show(report) or status
    return 130 if status == "cancelled" else 0


class CancelOnSigint:
    """Ctrl-C sets the cancel token (graceful stop); a second Ctrl-C interrupts at once."""

    def __init__(self, cancel: Any) -> None:
        self.cancel = cancel
        self.previous: Any = None

    def _handle(self, _signum: int, _frame: object) -> None:
        if self.cancel.cancelled:
            raise KeyboardInterrupt
        self.cancel.cancel()
        print("\nstopping after this step (Ctrl-C again to abort at once)...", file=sys.stderr)

    def __enter__(self) -> CancelOnSigint:
        self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        signal.signal(signal.SIGINT, self.previous)


class TrainingProgress:
    """Renders reports: a ``\\r`` bar on a TTY, periodic plain lines otherwise."""

    WIDTH = 24
    PLAIN_EVERY_S = 10.0

    def __init__(self, stream: TextIO, *, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self.tty = stream.isatty()
        self.max_steps: int | None = None
        self.time_budget: float | None = None
        self.val_accuracy = float("nan")
        self.rate = 0.0
        self.last_plain = 0.0
        self.last_fraction = 0.0
        self.bar_open = False

    def show(self, report: Any) -> str | None:
        """Print ``report``; returns the run status for a RunFinished report."""
        from cdfis_desktop.core.training.reports import (
            EpochReport,
            LoadProgress,
            RunFinished,
            RunStarted,
            StepReport,
        )

        if not self.enabled:
            return report.status if isinstance(report, RunFinished) else None
        if isinstance(report, RunFinished):
            self._line(self._finished(report))
            return report.status
        if isinstance(report, RunStarted):
            self.max_steps = report.max_steps
            resumed = (
                f", resumed at step {report.resumed_from_step}"
                if report.resumed_from_step is not None
                else ""
            )
            self._line(
                f"run {report.run_id}: {report.n_train} training / {report.n_val} validation "
                f"patches (split: {report.split_method}) on {report.device}{resumed}"
            )
            if report.warning:
                self._line(f"warning: {report.warning}")
        elif isinstance(report, EpochReport):
            self.val_accuracy = report.val_accuracy
            switched = "  importance sampling on" if report.switched_on else ""
            self._line(
                f"validation at step {report.step} (epoch {report.epoch}): loss "
                f"{report.val_loss:.4f}  accuracy {report.val_accuracy:.3f}  balanced "
                f"{report.val_balanced_accuracy:.3f}  AUC {report.val_auc:.3f}{switched}"
            )
        elif isinstance(report, StepReport):
            self._step(report)
        elif isinstance(report, LoadProgress):
            self._loading(report)
        return None

    def _loading(self, report: Any) -> None:
        text = f"{report.message}: {report.done}/{report.total} patches"
        if self.tty:
            self.stream.write(f"\r{text}\x1b[K")
            self.stream.flush()
            self.bar_open = True
        elif (
            report.done == report.total or time.monotonic() - self.last_plain >= self.PLAIN_EVERY_S
        ):
            self.last_plain = time.monotonic()
            self._line(text)

    def _step(self, report: Any) -> None:
        self.rate = (
            report.samples_per_s if self.rate == 0 else 0.9 * self.rate + 0.1 * report.samples_per_s
        )
        total = f"/{self.max_steps}" if self.max_steps else ""
        done = report.step / self.max_steps if self.max_steps else 0.0
        text = (
            f"step {report.step}{total}  epoch {report.epoch} ({report.epoch_progress:.2f})  loss {report.train_loss:.4f}  "
            f"val acc {self.val_accuracy:.3f}  {self.rate:.0f} samples/s"
            f"{'  [IS on]' if report.is_active else ''}"
        )
        if self.tty:
            filled = int(done * self.WIDTH)
            bar = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] " if self.max_steps else ""
            self.stream.write(f"\r{bar}{text}\x1b[K")
            self.stream.flush()
            self.bar_open = True
            return
        now = time.monotonic()
        if now - self.last_plain >= self.PLAIN_EVERY_S or done - self.last_fraction >= 0.1:
            self.last_plain, self.last_fraction = now, done
            self._line(text)

    def _finished(self, report: Any) -> str:
        if report.status == "finished":
            return (
                f"run {report.run_id} finished: {report.step} steps in {report.wall_s:.1f} s "
                "of training"
            )
        if report.status == "cancelled":
            return report.message
        return f"run {report.run_id} failed at step {report.step}"

    def _line(self, text: str) -> None:
        if self.bar_open:
            self.stream.write("\n")
            self.bar_open = False
        self.stream.write(text + "\n")
        self.stream.flush()
