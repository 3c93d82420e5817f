"""``cdfis runs``: list a project's training runs (status, sampler, steps, best validation
accuracy, duration), as a table or as JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cdfis_desktop.cli.common import open_project


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "runs",
        help="list the training runs of a project",
        description="List the training runs of a project, newest first. Runs whose process "
        "died while running are shown as interrupted.",
    )
    parser.add_argument("--project", required=True, metavar="DIR", help="the project folder")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with open_project(args.project) as project:
        summaries = project.runs()
    if args.json:
        print(json.dumps([s.to_dict() for s in summaries], indent=2))
        return 0
    if not summaries:
        print(f"no runs in {args.project}")
        return 0
    header = ("ID", "NAME", "STATUS", "SAMPLER", "SEED", "STEPS", "BEST VAL ACC", "DURATION")
    rows = [
        (
            str(s.id),
            s.name or "-",
            s.status,
            s.sampler,
            str(s.seed),
            "-" if s.steps is None else str(s.steps),
            "-" if s.best_val_accuracy is None else f"{s.best_val_accuracy:.4f}",
            _duration(s.duration_s),
        )
        for s in summaries
    ]
    widths = [max(len(r[k]) for r in (header, *rows)) for k in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _duration(seconds: float | None) -> str:
    """``1h02m03s`` / ``2m03s`` / ``3.4s``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
