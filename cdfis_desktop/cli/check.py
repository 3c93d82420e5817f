"""``cdfis check --project DIR [--fix]``: is a project intact? Database integrity, slide
and checkpoint files, scratch files left by killed processes (deleted with ``--fix``)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help="check a project: database integrity, slide files, leftover scratch files",
        description="Run SQLite's full integrity check on the project database, check that "
        "every slide file and checkpoint exists, and list scratch files left by processes "
        "that were killed while writing. Exit status 0 when healthy, 2 when problems "
        "remain (each is listed with what to do).",
    )
    parser.add_argument("--project", required=True, metavar="DIR", help="the project folder")
    parser.add_argument(
        "--fix", action="store_true", help="delete the scratch files of killed processes"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cdfis_desktop.core.errors import StoreError
    from cdfis_desktop.core.storage.integrity import check_project

    report = check_project(args.project, fix=args.fix)
    print("\n".join(report.lines()))
    if not report.healthy:
        raise StoreError(f"{report.folder}: {report.remaining} problem(s) found (listed above)")
    return 0
