"""``cdfis demo``: build the demo project, train it once with CDF sampling, open the app.

Steps: generate three synthetic H&E slides with Tumor/Stroma annotations, import them
(96 px patches at 1 µm/px), train the small CNN with CDF importance sampling for
``DEMO_STEPS`` steps (about a minute and a half on a 2-core CPU), write a PDF report, then
open the desktop app on the project. Run again on the same folder, it opens the trained
project without training (``--retrain`` trains a new run; an interrupted demo run is
resumed). With ``--no-gui``, or when there is no display, it prints where the results are.
When there is a display but the desktop app cannot start on it (missing system libraries),
it says so and exits 3 before any training.
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
            "open the desktop app on the project. On a project that already holds a "
            "finished demo run, open it without training again."
        ),
    )
    parser.add_argument(
        "--project", type=Path, help="project folder (default: the per-user demo project)"
    )
    parser.add_argument("--no-gui", action="store_true", help="do not open the desktop app")
    parser.add_argument(
        "--retrain", action="store_true", help="train a new demo run even if one finished"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the run (0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cdfis_desktop.core.demo.project import build_demo_project
    from cdfis_desktop.core.environment import GUI_UNAVAILABLE_EXIT, check_qt_platform
    from cdfis_desktop.core.paths import default_demo_project_dir
    from cdfis_desktop.core.progress import CancelToken

    folder = (args.project or default_demo_project_dir()).expanduser().resolve()
    open_gui = not args.no_gui and _display_available()
    if open_gui:
        check = check_qt_platform()
        if not check.ok:  # say it now, not after minutes of training
            print(f"error: the desktop app cannot open here: {check.problem}", file=sys.stderr)
            print("(run 'cdfis demo --no-gui' to build and train without it)", file=sys.stderr)
            return GUI_UNAVAILABLE_EXIT
    print(f"demo project: {folder}")
    cancel = CancelToken()
    from cdfis_desktop.cli.train import CancelOnSigint

    with CancelOnSigint(cancel):
        project = build_demo_project(folder, cancel=cancel)
        with project:
            slides = project.slides()
            print(f"{len(slides)} demo slides, {len(project.patches())} patches")
            run_id = _trained_demo_run(project, args, cancel)
            if run_id is None:
                return 130
            report_path = folder / f"report-run-{run_id}.pdf"
            if not report_path.exists():
                from cdfis_desktop.core.reporting import write_report

                write_report(project, run_id, report_path)
    print(f"results: run {run_id} in {folder / 'project.db'}")
    print(f"report:  {report_path}")
    print(f"open it: cdfis-desktop --project {folder}")
    if not open_gui:
        if not args.no_gui:
            print("no display found, so the desktop app was not opened")
        return 0
    # the command line never imports Qt: the app runs as its own process
    return subprocess.call([sys.executable, "-m", "cdfis_desktop", "--project", str(folder)])


def _trained_demo_run(project: Any, args: argparse.Namespace, cancel: Any) -> int | None:
    """The id of a finished demo run: the newest one already there (unless ``--retrain``),
    an interrupted or stopped one resumed, or a new one trained. None when cancelled."""
    from cdfis_desktop.cli.train import TrainingProgress
    from cdfis_desktop.core.demo.project import DEMO_RUN_NAME, demo_run_config
    from cdfis_desktop.core.training.engine import Trainer

    demo_runs = [r for r in project.runs() if r.name == DEMO_RUN_NAME]  # newest first
    trainer = Trainer(project, run_name=DEMO_RUN_NAME)
    if demo_runs and not args.retrain and demo_runs[0].status == "finished":
        print(f"demo run {demo_runs[0].id} is already trained (--retrain to train again)")
        return demo_runs[0].id
    if demo_runs and not args.retrain and demo_runs[0].status in ("cancelled", "interrupted"):
        print(f"resuming demo run {demo_runs[0].id} ({demo_runs[0].status})")
        reports = trainer.iter_resume(demo_runs[0].id, cancel)
    else:
        reports = trainer.iter_run(demo_run_config(args.seed), cancel)
    printer = TrainingProgress(sys.stdout, enabled=True)
    status, run_id = "finished", None
    for report in reports:
        run_id = getattr(report, "run_id", run_id)
        status = printer.show(report) or status
    return run_id if status == "finished" else None


def _display_available() -> bool:
    """A display to open a window on: Windows and macOS always; elsewhere X11 or Wayland."""
    if sys.platform in ("win32", "darwin"):
        return True
    return any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY"))
