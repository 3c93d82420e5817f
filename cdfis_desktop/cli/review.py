"""``cdfis review``: the review queue of a run, headless.

Write the ranked queue (likely label errors first, by area under the margin or another
ranking, --rank) as CSV, fill
its ``decision`` column (confirm, relabel + new_label, exclude + reason, skip, undo) and
apply it back; decisions are stored with who and when, never change a patch's stored
label, and the next ``cdfis train`` uses them (``--ignore-review`` to train without).
Export every decision as CSV, or the reviewed patches as QuPath GeoJSON.
"""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path
from typing import TYPE_CHECKING

from cdfis_desktop.cli.common import existing_path, open_project, positive_int

if TYPE_CHECKING:
    from cdfis_desktop.core.storage import Project


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "review",
        help="rank likely label errors of a run and apply review decisions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--project", required=True, type=existing_path, help="project folder")
    parser.add_argument("--run", default="last", help="run id, or 'last' (default)")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--csv", type=Path, metavar="OUT", help="write the ranked queue")
    action.add_argument(
        "--apply", type=existing_path, metavar="DECISIONS.csv", help="apply filled decisions"
    )
    action.add_argument(
        "--export-decisions", type=Path, metavar="OUT", help="every decision ever made (CSV)"
    )
    action.add_argument(
        "--geojson",
        type=Path,
        metavar="OUT",
        help="the reviewed patches as QuPath GeoJSON: a folder or a {slide} pattern",
    )
    parser.add_argument(
        "--top", type=positive_int, metavar="K", help="only the first K of the queue (--csv)"
    )
    parser.add_argument(
        "--rank",
        default="aum",
        metavar="NAME",
        help="order of the queue (--csv): aum (lowest area under the margin first, the "
        "default), confidence (lowest mean label probability first) or final_loss (highest "
        "last-epoch loss first, the loss-only baseline); see docs/method.md",
    )
    parser.add_argument(
        "--reviewer", help="who decides (--apply; default: the user name of this account)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    with open_project(args.project) as project:
        if args.export_decisions is not None:
            from cdfis_desktop.core.reporting.review_files import write_decisions_csv

            rows = write_decisions_csv(project, args.export_decisions)
            print(f"{rows} decisions written to {args.export_decisions}")
            return 0
        from cdfis_desktop.core.reporting import resolve_run

        summary = resolve_run(project, args.run)
        if args.csv is not None:
            return _write_queue(project, summary.id, args)
        if args.apply is not None:
            return _apply(project, summary.id, args)
        from cdfis_desktop.core.reporting import export_geojson

        paths = export_geojson(project, summary.id, args.geojson, reviewed_only=True)
        for path in paths:
            print(path)
        print(f"{len(paths)} GeoJSON files of reviewed patches written")
    return 0


def _write_queue(project: Project, run_id: int, args: argparse.Namespace) -> int:
    from cdfis_desktop.core.datamaps.queue import build_queue
    from cdfis_desktop.core.reporting.review_files import write_queue_csv

    queue = build_queue(project, run_id, top=args.top, ranking=args.rank)
    if queue.total == 0:
        from cdfis_desktop.core.errors import ReviewError

        raise ReviewError(
            f"run {run_id} recorded no training dynamics (trained before cdfis recorded them, "
            "or no step yet); train a new run to review its patches"
        )
    rows = write_queue_csv(queue, args.csv)
    flagged = sum(1 for e in queue.entries if e.flag == "label error?")
    print(
        f"{rows} of {queue.total} patches of run {run_id}, ranked by {queue.ranking}, written "
        f"to {args.csv} "
        f"({flagged} flagged as likely label errors); fill the decision column and apply it "
        "with --apply"
    )
    return 0


def _apply(project: Project, run_id: int, args: argparse.Namespace) -> int:
    from cdfis_desktop.core.reporting.review_files import read_decisions_csv

    reviewer = args.reviewer or getpass.getuser()
    decisions = read_decisions_csv(project, args.apply, reviewer=reviewer, run_id=run_id)
    project.add_review_decisions(decisions)
    counts: dict[str, int] = {}
    for decision in decisions:
        counts[decision.action] = counts.get(decision.action, 0) + 1
    summary = ", ".join(f"{n} {action}" for action, n in sorted(counts.items())) or "nothing"
    print(
        f"{len(decisions)} decisions by {reviewer} stored ({summary}); the next cdfis train "
        "uses them (--ignore-review to train without)"
    )
    return 0
