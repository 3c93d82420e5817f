"""``cdfis import-patches``: lay a patch set (images + coordinates CSV) back into one mosaic
slide per patient/group and register its patches with their labels."""

from __future__ import annotations

import argparse
import sys

from cdfis_desktop.cli.common import ProgressLine, open_project, positive_float


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import-patches",
        help="import a patch set (e.g. IDC patches) as mosaic slides",
        description=(
            "Read a CSV with file, x, y, label [, width, height, patient] columns, paste each "
            "group's patch images at (x, y) on a white canvas, write it as a pyramidal TIFF in "
            "<project>/slides/ and register one labelled patch per row. The group (patient) "
            "is kept as the slide's group, so validation can be split by patient."
        ),
    )
    parser.add_argument("--project", required=True, help="project folder (created if missing)")
    parser.add_argument("--csv", required=True, help="the patch-set CSV (e.g. labels.csv)")
    parser.add_argument("--root", required=True, help="folder the CSV's file paths are relative to")
    parser.add_argument(
        "--group-by",
        default=None,
        metavar="COLUMN",
        help="column naming each patch's patient/slide (default: patient, slide, group or case)",
    )
    parser.add_argument(
        "--mpp",
        type=positive_float,
        default=4.0,
        help="µm/px given to the mosaics (default 4.0: patches taken at ~2.5x)",
    )
    parser.add_argument(
        "--class-map",
        default=None,
        metavar="MAP",
        help="class names/numbers, e.g. non-IDC=0,IDC=1 (numeric labels: only names them)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cdfis_desktop.core.importing import import_patch_set
    from cdfis_desktop.core.tiling.labels import parse_class_map

    class_map = parse_class_map(args.class_map) if args.class_map else None
    with open_project(args.project, create=True) as project, ProgressLine() as progress:
        summary = import_patch_set(
            project,
            args.csv,
            args.root,
            group_by=args.group_by,
            mpp=args.mpp,
            class_map=class_map,
            progress=progress,
        )
    for note in summary.notes:
        print(f"warning: {note}", file=sys.stderr)
    print("\n".join(summary.lines()))
    return 0
