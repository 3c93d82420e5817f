"""``cdfis info SLIDE [--json] [--mpp X]``: what a slide file holds (format, levels, mpp...)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cdfis_desktop.cli.common import positive_float


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "info",
        help="show a slide's format, levels, dimensions, mpp, objective and associated images",
        description=(
            "Open a whole-slide image with OpenSlide and describe it. Fails with exit "
            "status 2 and a message when the file is missing, empty, damaged or not a slide."
        ),
    )
    parser.add_argument("slide", help="slide file (.svs, .ndpi, .mrxs, .scn, .tiff, .dcm ...)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument(
        "--mpp",
        type=positive_float,
        default=None,
        help="µm per level-0 pixel to use instead of the file's (e.g. when it has none)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import warnings

    from cdfis_desktop.core.slides import MissingMppWarning, open_slide

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MissingMppWarning)
        slide = open_slide(args.slide, mpp_override=args.mpp)
    with slide:
        info = slide_info(slide)
    info["warnings"] = [str(w.message) for w in caught if issubclass(w.category, MissingMppWarning)]
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(_as_text(info))
    return 0


def slide_info(slide: Any) -> dict[str, Any]:
    """A JSON-ready description of an open ``SlideReader``."""
    return {
        "path": str(slide.path),
        "format": slide.format,
        "vendor": slide.vendor,
        "dimensions": list(slide.dimensions),
        "levels": [
            {"level": i, "dimensions": list(dims), "downsample": round(ds, 4)}
            for i, (dims, ds) in enumerate(
                zip(slide.level_dimensions, slide.level_downsamples, strict=True)
            )
        ],
        "mpp": slide.mpp,
        "effective_mpp": slide.effective_mpp,
        "mpp_source": slide.mpp_source,
        "objective_power": slide.objective_power,
        "associated_images": {
            name: list(slide.associated_image(name).shape[1::-1])
            for name in slide.associated_image_names
        },
        "fingerprint": slide.fingerprint(),
    }


def _as_text(info: dict[str, Any]) -> str:
    width, height = info["dimensions"]
    mpp = f"{info['effective_mpp']:g} µm/px ({info['mpp_source']})"
    lines = [
        f"file:        {info['path']}",
        f"format:      {info['format']} (vendor {info['vendor'] or 'unknown'})",
        f"dimensions:  {width} x {height} px at level 0",
        f"mpp:         {mpp}",
        f"objective:   {_objective(info['objective_power'])}",
        f"levels:      {len(info['levels'])}",
    ]
    for level in info["levels"]:
        w, h = level["dimensions"]
        lines.append(f"  {level['level']}: {w} x {h} px, downsample {level['downsample']:g}")
    associated = info["associated_images"]
    lines.append(
        "associated:  "
        + (", ".join(f"{name} ({w} x {h})" for name, (w, h) in associated.items()) or "none")
    )
    lines.append(f"fingerprint: {info['fingerprint']}")
    lines.extend(f"warning: {w}" for w in info["warnings"])
    return "\n".join(lines)


def _objective(power: float | None) -> str:
    return f"{power:g}x" if power else "unknown"
