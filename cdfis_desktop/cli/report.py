"""``cdfis report``: the PDF report of a run (configuration, curves, comparison, score
distribution, slide overlays, galleries of favoured and ignored patches)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cdfis_desktop.cli.common import existing_path, open_project


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write the PDF report of a training run",
        description="Write a PDF report of a run, made without a display. The file is "
        "written atomically (an existing report is replaced only when the new one is "
        "complete).",
    )
    parser.add_argument("--project", required=True, type=existing_path, help="project folder")
    parser.add_argument("--run", default="last", help="run id, or 'last' (default)")
    parser.add_argument("-o", "--output", required=True, type=Path, help="PDF file to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cdfis_desktop.core.progress import Progress
    from cdfis_desktop.core.reporting import resolve_run, write_report

    def show(progress: Progress) -> None:
        print(
            f"\r[{progress.done}/{progress.total}] {progress.message:<60}",
            end="",
            file=sys.stderr,
            flush=True,
        )

    with open_project(args.project) as project:
        summary = resolve_run(project, args.run)
        path = write_report(project, summary.id, args.output, progress=show)
    print(file=sys.stderr)
    print(f"report of run {summary.id} written to {path}")
    return 0
