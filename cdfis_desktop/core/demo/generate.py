"""Synthetic demo slides: pyramidal TIFFs plus matching QuPath GeoJSON annotations.

Each slide gets ``<name>.tiff`` (JPEG tiles, mpp in the resolution tags) and
``<name>.geojson``: a FeatureCollection of ``objectType: "annotation"`` features classified
"Tumor" (the tumour regions) and "Stroma" (the rest of the tissue), Polygon/MultiPolygon
coordinates in level-0 px (origin top-left). The polygons are traced from the same layout
fields the pixels are rendered from, so they match the image to within a few pixels.
"""

from __future__ import annotations

import functools
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Polygon, mapping
from skimage import measure

from cdfis_desktop.core.demo.synthetic import LAYOUT_PX, SyntheticSlide
from cdfis_desktop.core.scratch import scratch_file
from cdfis_desktop.core.slides.tiff_writer import write_pyramidal_tiff_bands

DEFAULT_SIZE_PX = (6000, 4000)
CLASS_COLOURS = {"Tumor": [200, 0, 0], "Stroma": [150, 200, 150]}


@dataclass(frozen=True)
class DemoSlide:
    """Paths of one generated demo slide and its annotations."""

    slide_path: Path
    annotations_path: Path


def generate_demo_slides(
    folder: str | os.PathLike[str],
    n_slides: int = 2,
    size_px: tuple[int, int] = DEFAULT_SIZE_PX,
    mpp: float = 0.5,
    seed: int = 0,
    tile_px: int = 256,
) -> list[DemoSlide]:
    """Write ``n_slides`` demo slides of ``size_px`` = (w, h) level-0 px at ``mpp`` µm/px.

    Files are ``demo-<i>.tiff`` / ``demo-<i>.geojson`` in ``folder`` (created if needed),
    each written atomically. The same arguments give identical pixels and polygons. At the
    default size (6000 x 4000 px at 0.5 µm/px) each slide has ~2,000 patches of 96 px at
    1 µm/px, about half tissue, with Tumor and Stroma regions. Raises ValueError for
    sizes below 256 px or a non-positive mpp.
    """
    width, height = (int(v) for v in size_px)
    if min(width, height) < 256:
        raise ValueError(f"demo slides must be at least 256 x 256 px (got {width} x {height})")
    if not mpp > 0:
        raise ValueError(f"mpp must be positive (got {mpp})")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    slides = []
    for i in range(n_slides):
        synthetic = SyntheticSlide((width, height), mpp, seed=seed * 1000 + i)
        slide_path = write_pyramidal_tiff_bands(
            out / f"demo-{i + 1}.tiff",
            (width, height),
            synthetic.render_band,
            mpp,
            tile_px=tile_px,
        )
        annotations_path = out / f"demo-{i + 1}.geojson"
        _write_json_atomic(annotations_path, demo_annotations(synthetic, seed=seed * 1000 + i))
        slides.append(DemoSlide(slide_path, annotations_path))
    return slides


def demo_annotations(synthetic: SyntheticSlide, seed: int = 0) -> dict[str, Any]:
    """The QuPath GeoJSON FeatureCollection (a dict) of a synthetic slide's regions."""
    rng = np.random.default_rng([seed, 9])
    regions = {
        "Tumor": synthetic.tumour_field,
        "Stroma": np.minimum(synthetic.tissue_field, -synthetic.tumour_field),
    }
    features = []
    for name, field in regions.items():
        for polygon in _region_polygons(field):
            features.append(
                {
                    "type": "Feature",
                    "id": str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64, version=4)),
                    "geometry": mapping(polygon),
                    "properties": {
                        "objectType": "annotation",
                        "classification": {"name": name, "color": CLASS_COLOURS[name]},
                    },
                }
            )
    return {"type": "FeatureCollection", "features": features}


def _region_polygons(field: np.ndarray, min_area_px: float = 64.0 * 64.0) -> list[Polygon]:
    """Polygons (level-0 px) where a layout field is > 0; holes kept, specks dropped.

    Contours are combined with the even-odd rule (symmetric difference), which turns inner
    contours into holes; a padding ring of -1 closes regions cut by the image border.
    """
    padded = np.pad(field, 1, constant_values=-1.0)
    shapes = []
    for contour in measure.find_contours(padded, 0.0):
        if len(contour) < 4:
            continue
        lr_y, lr_x = contour[:, 0] - 1, contour[:, 1] - 1
        ring = np.column_stack(((lr_x + 0.5) * LAYOUT_PX, (lr_y + 0.5) * LAYOUT_PX))
        shapes.append(shapely.make_valid(Polygon(ring)))
    if not shapes:
        return []
    region = functools.reduce(shapely.symmetric_difference, shapes).simplify(LAYOUT_PX / 4)
    parts = getattr(region, "geoms", [region])
    polygons = [p for p in parts if isinstance(p, Polygon) and p.area >= min_area_px]
    polygons = [shapely.set_precision(p, 0.01) for p in polygons]
    return sorted(polygons, key=lambda p: (p.bounds[1], p.bounds[0]))


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = scratch_file(path, ".tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
