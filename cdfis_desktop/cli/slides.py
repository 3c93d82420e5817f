"""``cdfis slides list|remove``: the slides of a project; remove slides with their history."""

from __future__ import annotations

import argparse
from typing import Any

from cdfis_desktop.cli.common import open_project


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "slides",
        help="list a project's slides, or remove slides with their patches and history",
        description="List the slides of a project, or remove slides: their patches and every "
        "run's history, aggregates and predictions of those patches go with them (runs "
        "stay). A mosaic written by import-patches into the project's slides/ folder is "
        "deleted; slide files elsewhere are never touched. Refused while a run is training.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="list the slides")
    listing.add_argument("--project", required=True, metavar="DIR", help="the project folder")
    listing.set_defaults(func=run_list)
    remove = actions.add_parser("remove", help="remove slides and everything recorded about them")
    remove.add_argument("--project", required=True, metavar="DIR", help="the project folder")
    remove.add_argument(
        "slides",
        nargs="+",
        metavar="SLIDE",
        help="slide id, or file name (see 'cdfis slides list')",
    )
    remove.set_defaults(func=run_remove)


def run_list(args: argparse.Namespace) -> int:

    with open_project(args.project) as project:
        slides = project.slides()
        counts = {s.id: len(project.patches(slide_id=s.id)) for s in slides}
    if not slides:
        print(f"no slides in {args.project}")
        return 0
    for s in slides:
        missing = "" if s.file.exists() else "  (file missing)"
        mpp = "-" if s.mpp is None else f"{s.mpp:g}"
        print(
            f"{s.id}  {s.name}  {s.width} x {s.height} px  mpp {mpp}  group "
            f"{s.group or '-'}  {counts[s.id]} patches{missing}"
        )
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from cdfis_desktop.core.storage.slide_removal import find_slides, remove_slides

    with open_project(args.project) as project:
        removed = remove_slides(project, find_slides(project, args.slides))
    for item in removed:
        deleted = "; its mosaic file was deleted" if item.file_deleted else ""
        print(
            f"removed slide {item.slide.id} ({item.slide.name}) with "
            f"{item.patches} patches and their history{deleted}"
        )
    return 0
