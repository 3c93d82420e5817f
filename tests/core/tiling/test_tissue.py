"""Tissue detection on synthetic images and on a generated slide."""

from __future__ import annotations

import json

import numpy as np
import pytest
from shapely.geometry import shape

from cdfis_desktop.core.slides import InMemorySlide, open_slide
from cdfis_desktop.core.tiling.tissue import TissueMask, detect_tissue, pen_mask, tissue_mask


def _background(height: int = 200, width: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(240, 3, (height, width, 3)), 0, 255).astype(np.uint8)


def test_all_white_is_not_tissue() -> None:
    # Otsu alone would split the noise of an empty slide in two; the floor prevents that.
    assert tissue_mask(_background()).sum() == 0


def test_pink_square_is_tissue_with_clean_border() -> None:
    rgb = _background()
    rgb[50:150, 50:150] = (230, 150, 190)
    mask = tissue_mask(rgb)
    assert mask[55:145, 55:145].all()
    assert mask.sum() == pytest.approx(100 * 100, rel=0.05)


def test_small_specks_removed_and_small_holes_filled() -> None:
    rgb = _background()
    rgb[50:150, 50:150] = (230, 150, 190)
    rgb[95:100, 95:100] = 245  # a 25-px hole inside the tissue
    rgb[10:13, 10:13] = (120, 60, 140)  # a 9-px speck of dust
    mask = tissue_mask(rgb)
    assert mask[95:100, 95:100].all()
    assert not mask[5:20, 5:20].any()


@pytest.mark.parametrize("ink", [(40, 170, 150), (30, 70, 190), (210, 35, 45), (90, 20, 28)])
def test_pen_ink_is_not_tissue(ink: tuple[int, int, int]) -> None:
    rgb = _background()
    rgb[40:160, 60:140] = ink
    assert pen_mask(rgb)[50:150, 70:130].all()
    assert tissue_mask(rgb).sum() == 0


@pytest.mark.parametrize(
    "stain", [(230, 150, 190), (200, 100, 160), (70, 40, 120), (120, 120, 150)]
)
def test_stains_are_not_ink(stain: tuple[int, int, int]) -> None:
    """Eosin pink, deep eosin, haematoxylin purple and IHC counterstain blue-grey."""
    rgb = np.full((64, 64, 3), stain, np.uint8)
    assert not pen_mask(rgb).any()


def test_fraction_in_boxes_exact_area() -> None:
    mask = np.zeros((10, 10), bool)
    mask[:, :5] = True  # left half, each mask px = 4 level-0 px
    tissue = TissueMask(mask=mask, l0_per_px=4.0, mpp=2.0)
    fraction = tissue.fraction_in_boxes(np.array([0, 10, 18, 30]), np.array([0, 0, 4, 0]), 4.0)
    np.testing.assert_allclose(fraction, [1.0, 1.0, 0.5, 0.0], atol=1e-6)


def test_detect_tissue_on_memory_slide() -> None:
    rgb = _background(800, 1200)
    rgb[200:600, 300:900] = (230, 150, 190)
    tissue = detect_tissue(InMemorySlide(rgb, mpp=0.5), mask_mpp=4.0)
    assert tissue.l0_per_px == 8.0 and tissue.mask.shape == (100, 150)
    inside = tissue.fraction_in_boxes(np.array([400]), np.array([300]), 200)
    outside = tissue.fraction_in_boxes(np.array([0]), np.array([0]), 200)
    assert inside[0] == 1.0 and outside[0] == 0.0


def test_detected_tissue_matches_demo_annotations(synthetic_slide) -> None:
    """The annotated regions (tumour + stroma) are the tissue the generator drew."""
    with open_slide(synthetic_slide.slide_path) as slide:
        tissue = detect_tissue(slide)
    features = json.loads(synthetic_slide.annotations_path.read_text())["features"]
    regions = [shape(f["geometry"]) for f in features]
    l0_y, l0_x = np.mgrid[0:1536:64, 0:2048:64]
    fraction = tissue.fraction_in_boxes(l0_x.ravel(), l0_y.ravel(), 64)
    from shapely import box

    annotated = np.array(
        [
            sum(r.intersection(box(x, y, x + 64, y + 64)).area for r in regions) / 64**2
            for x, y in zip(l0_x.ravel(), l0_y.ravel(), strict=True)
        ]
    )
    agree = np.mean((fraction > 0.5) == (annotated > 0.5))
    assert agree > 0.9, agree
