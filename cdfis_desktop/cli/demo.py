"""``cdfis demo``: build the demo project, train briefly with CDF sampling, open the app.

Steps: generate three synthetic H&E slides with Tumor/Stroma annotations, import them
(96 px patches at 1 µm/px), train the small CNN with CDF importance sampling (about a
minute and a half on a 2-core CPU), write a PDF report, then open the desktop app on the
project. With ``--no-gui``, or when there is no display, it prints where the results are.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="build a demo project, train it with CDF sampling and open the app",
        description=(
            "Generate synthetic H&E demo slides with tumour annotations, import them into a "
            "project, train a small CNN with CDF importance sampling, write a PDF report and "
            "open the desktop app on the project."
        ),
    )
    parser.add_argument(
        "--project", type=Path, help="project folder (default: the per-user demo project)"
    )
    parser.add_argument("--no-gui", action="store_true", help="do not open the desktop app")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the run (0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cdfis_desktop.cli.train import CancelOnSigint, TrainingProgress
    from cdfis_desktop.core.demo.project import build_demo_project, demo_run_config
    from cdfis_desktop.core.paths import default_demo_project_dir
    from cdfis_desktop.core.progress import CancelToken
    from cdfis_desktop.core.reporting import write_report
    from cdfis_desktop.core.training.engine import Trainer

    folder = (args.project or default_demo_project_dir()).expanduser().resolve()
    print(f"demo project: {folder}")
    cancel = CancelToken()
    with CancelOnSigint(cancel):
        project = build_demo_project(folder, cancel=cancel)
        with project:
            slides = project.slides()
            print(f"{len(slides)} demo slides, {len(project.patches())} patches")
            printer = TrainingProgress(sys.stdout, enabled=True)
            status, run_id = "finished", None
            for report in Trainer(project, run_name="demo").iter_run(
                demo_run_config(args.seed), cancel
            ):
                run_id = getattr(report, "run_id", run_id)
                status = printer.show(report) or status
            if status != "finished":
                return 130
            report_path = write_report(project, run_id, folder / f"report-run-{run_id}.pdf")
    print(f"results: run {run_id} in {folder / 'project.db'}")
    print(f"report:  {report_path}")
    print(f"open it: cdfis-desktop --project {folder}")
    if args.no_gui or not _display_available():
        if not args.no_gui:
            print("no display found, so the desktop app was not opened")
        return 0
    # the command line never imports Qt: the app runs as its own process
    return subprocess.call([sys.executable, "-m", "cdfis_desktop", "--project", str(folder)])


def _display_available() -> bool:
    """A display to open a window on: Windows and macOS always; elsewhere X11 or Wayland."""
    if sys.platform in ("win32", "darwin"):
        return True
    return any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY"))
