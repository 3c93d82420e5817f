"""``cdfis export``: a run's per-patch values as CSV, QuPath GeoJSON or PNG overlays.

-o: for ``csv`` a file. For ``geojson`` and ``png`` (one output per slide) a folder
(created if missing; files named after each slide) or a file-name pattern with ``{slide}``
(the slide file's stem) and/or ``{slide_id}``, e.g. ``out/{slide}-run3.geojson``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cdfis_desktop.cli.common import (
    existing_path,
    fraction,
    open_project,
    positive_float,
    positive_int,
)
from cdfis_desktop.core.heatmap.colormaps import available_colormaps
from cdfis_desktop.core.heatmap.metrics import metric_keys

FORMATS = ("csv", "geojson", "png")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a run's per-patch values (CSV, QuPath GeoJSON, PNG overlays)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--project", required=True, type=existing_path, help="project folder")
    parser.add_argument("--run", default="last", help="run id, or 'last' (default)")
    parser.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        help="file (csv) or folder / {slide} pattern (geojson, png)",
    )
    parser.add_argument(
        "--slide",
        type=int,
        action="append",
        metavar="ID",
        help="only this slide id (repeatable; default: every slide)",
    )
    png = parser.add_argument_group("png options")
    png.add_argument(
        "--metric",
        default="favour",
        choices=metric_keys(),
        help="value drawn (default: favour = times chosen - uniform expectation); "
        "definitions: docs/method.md",
    )
    size = png.add_mutually_exclusive_group()
    size.add_argument("--max-px", type=positive_int, help="longer side in px (default 2048)")
    size.add_argument("--mpp", type=positive_float, help="resolution in µm per pixel")
    png.add_argument(
        "--colormap",
        help=f"{', '.join(available_colormaps())} (default: the metric's own: diverging "
        "RdBu_r for favour, viridis for counts and scores)",
    )
    png.add_argument("--opacity", type=fraction, default=0.5, help="overlay opacity (0..1)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cdfis_desktop.core.reporting import (
        downsample_for,
        export_csv,
        export_geojson,
        export_png,
        resolve_run,
        select_slides,
    )

    with open_project(args.project) as project:
        summary = resolve_run(project, args.run)
        if args.format == "csv":
            rows = export_csv(project, summary.id, args.output)
            print(f"{rows} patches of run {summary.id} written to {args.output}")
            return 0
        if args.format == "geojson":
            paths = export_geojson(project, summary.id, args.output, slide_ids=args.slide)
        else:
            slides = select_slides(project, args.slide)
            max_px = None if args.mpp is not None else (args.max_px or 2048)
            downsample_of = {s.id: downsample_for(s, max_px=max_px, mpp=args.mpp) for s in slides}
            paths = export_png(
                project,
                summary.id,
                args.output,
                metric=args.metric,
                downsample_of=downsample_of,
                colormap=args.colormap,
                opacity=args.opacity,
            )
    for path in paths:
        print(path)
    print(f"{len(paths)} files of run {summary.id} written")
    return 0
