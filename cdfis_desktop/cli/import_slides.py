"""``cdfis import``: register whole slides and their patches (labelled by annotations or a
labels CSV) in a project, creating the project when missing."""

from __future__ import annotations

import argparse
import sys

from cdfis_desktop.cli.common import (
    ProgressLine,
    fraction,
    open_project,
    positive_float,
    positive_int,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import",
        aliases=["import-slides"],  # the module's name, which `cdfis --help` lists
        help="add slides (and annotation labels) to a project",
        description=(
            "Detect tissue, tile each slide into square patches at the given resolution, "
            "label them from QuPath GeoJSON / ASAP XML annotations (matched to slides by "
            "file name) or from a CSV of patch coordinates, and store them in the project."
        ),
    )
    parser.add_argument("--project", required=True, help="project folder (created if missing)")
    parser.add_argument("slides", nargs="+", metavar="SLIDE", help="slide files (.svs, .tiff, ...)")
    parser.add_argument(
        "--annotations",
        nargs="+",
        metavar="FILE",
        default=None,
        help="GeoJSON or ASAP XML files, named after their slides (slide.svs -> slide.geojson)",
    )
    parser.add_argument(
        "--labels",
        metavar="CSV",
        default=None,
        help="CSV of patches: x, y, label [, width, height, slide] in level-0 px",
    )
    parser.add_argument(
        "--patch-px", type=positive_int, default=256, help="patch side in px (default 256)"
    )
    parser.add_argument(
        "--mpp", type=positive_float, default=0.5, help="patch resolution, µm/px (default 0.5)"
    )
    parser.add_argument(
        "--min-tissue", type=fraction, default=0.5, help="least tissue fraction kept (default 0.5)"
    )
    parser.add_argument(
        "--min-coverage",
        type=fraction,
        default=0.5,
        help="least fraction of a patch a class must cover to label it (default 0.5)",
    )
    parser.add_argument(
        "--class-map",
        default=None,
        metavar="MAP",
        help="class numbers, e.g. Tumor=1,Normal=0,Stroma=0,Fat=exclude (default: names sorted)",
    )
    parser.add_argument(
        "--stain",
        default="auto",
        help="tissue detection rule: auto (fluorescence when the glass is dark), brightfield "
        "(H&E, IHC) or fluorescence (default auto)",
    )
    parser.add_argument(
        "--slide-mpp",
        type=positive_float,
        default=None,
        help="override the slides' level-0 µm/px (for files without resolution metadata)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cdfis_desktop.core.config import TilingConfig
    from cdfis_desktop.core.importing import import_slides
    from cdfis_desktop.core.tiling.labels import parse_class_map

    tiling = TilingConfig(
        patch_px=args.patch_px,
        mpp=args.mpp,
        min_tissue=args.min_tissue,
        min_label_coverage=args.min_coverage,
        stain=args.stain,
    )
    class_map = parse_class_map(args.class_map) if args.class_map else None
    with open_project(args.project, create=True) as project, ProgressLine() as progress:
        summary = import_slides(
            project,
            args.slides,
            annotations=args.annotations,
            labels_csv=args.labels,
            tiling=tiling,
            class_map=class_map,
            mpp_override=args.slide_mpp,
            progress=progress,
        )
    for note in summary.notes:
        print(f"warning: {note}", file=sys.stderr)
    print("\n".join(summary.lines()))
    return 0
