"""Demo slide generation: deterministic, readable, annotated, with two usable classes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, shape

from cdfis_desktop.core.config import TilingConfig
from cdfis_desktop.core.demo import SyntheticSlide, generate_demo_slides
from cdfis_desktop.core.slides import open_slide
from cdfis_desktop.core.tiling.grid import build_patch_grid


def test_fixture_slide_is_readable_and_annotated(synthetic_slide) -> None:
    with open_slide(synthetic_slide.slide_path) as slide:
        assert slide.dimensions == (2048, 1536) and slide.mpp == pytest.approx(0.5)
    data = json.loads(synthetic_slide.annotations_path.read_text())
    assert data["type"] == "FeatureCollection"
    names = {f["properties"]["classification"]["name"] for f in data["features"]}
    assert names == {"Tumor", "Stroma"}
    for feature in data["features"]:
        assert feature["properties"]["objectType"] == "annotation"
        assert len(feature["properties"]["classification"]["color"]) == 3
        geometry = shape(feature["geometry"])
        assert geometry.is_valid and geometry.geom_type == "Polygon"
        minx, miny, maxx, maxy = geometry.bounds
        assert minx >= -1 and miny >= -1 and maxx <= 2049 and maxy <= 1537


def test_tumour_looks_different_from_stroma(synthetic_slide) -> None:
    """Inside Tumor polygons the image is darker and bluer (dense nuclei) than in Stroma."""
    data = json.loads(synthetic_slide.annotations_path.read_text())
    regions = {
        name: [
            shape(f["geometry"])
            for f in data["features"]
            if f["properties"]["classification"]["name"] == name
        ]
        for name in ("Tumor", "Stroma")
    }
    with open_slide(synthetic_slide.slide_path) as slide:
        image = slide.read_region(0, 0, 0, 2048, 1536)
    corners = np.random.default_rng(0).uniform((0, 0), (2048 - 32, 1536 - 32), (3000, 2))
    samples: dict[str, list[np.ndarray]] = {}
    for name, polygons in regions.items():
        inside = np.zeros(len(corners), bool)
        for polygon in polygons:  # patch centres at least 20 px inside the region
            inside |= shapely.contains_xy(
                polygon.buffer(-20), corners[:, 0] + 16, corners[:, 1] + 16
            )
        samples[name] = [
            image[int(y) : int(y) + 32, int(x) : int(x) + 32] for x, y in corners[inside][:60]
        ]
    assert len(samples["Tumor"]) >= 20 and len(samples["Stroma"]) >= 20
    tumour, stroma = (np.stack(samples[n]).astype(float) for n in ("Tumor", "Stroma"))
    assert tumour.mean() < stroma.mean() - 15
    # Blue relative to red: haematoxylin-rich tumour > eosin-rich stroma.
    assert (tumour[..., 2] - tumour[..., 0]).mean() > (stroma[..., 2] - stroma[..., 0]).mean() + 10


def test_generation_is_deterministic(tmp_path: Path) -> None:
    a = generate_demo_slides(tmp_path / "a", n_slides=1, size_px=(768, 512), seed=3)
    b = generate_demo_slides(tmp_path / "b", n_slides=1, size_px=(768, 512), seed=3)
    c = generate_demo_slides(tmp_path / "c", n_slides=1, size_px=(768, 512), seed=4)
    assert a[0].slide_path.read_bytes() == b[0].slide_path.read_bytes()
    assert a[0].annotations_path.read_text() == b[0].annotations_path.read_text()
    assert a[0].slide_path.read_bytes() != c[0].slide_path.read_bytes()


def test_bands_agree_across_band_borders() -> None:
    """Rendering rows 100..300 in one band equals rendering them in two (no seams)."""
    synthetic = SyntheticSlide((640, 512), 0.5, seed=1)
    whole = synthetic.render_band(100, 200)
    parts = np.concatenate([synthetic.render_band(100, 80), synthetic.render_band(180, 120)])
    assert np.abs(whole.astype(int) - parts.astype(int)).max() <= 1


@pytest.mark.parametrize(("size", "message"), [((100, 800), "at least 256"), ((800, 800), "mpp")])
def test_bad_arguments(tmp_path: Path, size: tuple[int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_demo_slides(tmp_path, size_px=size, mpp=0.5 if message != "mpp" else 0)


@pytest.mark.slow
def test_default_demo_gives_hundreds_of_patches_of_both_classes(tmp_path: Path) -> None:
    slides = generate_demo_slides(tmp_path, n_slides=2)
    config = TilingConfig(patch_px=96, mpp=1.0)
    for demo in slides:
        with open_slide(demo.slide_path) as slide:
            grid = build_patch_grid(slide, config)
        features = json.loads(demo.annotations_path.read_text())["features"]
        tumour = [
            shape(f["geometry"])
            for f in features
            if f["properties"]["classification"]["name"] == "Tumor"
        ]
        half = grid.l0_size / 2
        in_tumour = sum(
            any(t.contains(Point(x + half, y + half)) for t in tumour)
            for x, y in zip(grid.l0_x.tolist(), grid.l0_y.tolist(), strict=True)
        )
        assert 300 <= len(grid) <= 800, len(grid)
        assert 0.15 * len(grid) <= in_tumour <= 0.7 * len(grid), (in_tumour, len(grid))
