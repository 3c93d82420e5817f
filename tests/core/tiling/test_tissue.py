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


class _CountingSlide(InMemorySlide):
    """An in-memory slide that records the size of every read (level px)."""

    def __init__(self, rgb: np.ndarray, **kwargs) -> None:
        super().__init__(rgb, **kwargs)
        self.read_px: list[int] = []

    def read_region(self, l0_x: int, l0_y: int, level: int, lv_w: int, lv_h: int) -> np.ndarray:
        self.read_px.append(lv_w * lv_h)
        return super().read_region(l0_x, l0_y, level, lv_w, lv_h)


def _slide_image(height: int = 640, width: int = 960) -> np.ndarray:
    """Background with two tissue blocks, a small hole, a speck and a pen stroke."""
    rgb = _background(height, width)
    rgb[80:560, 100:500] = (230, 150, 190)
    rgb[300:330, 300:330] = 244
    rgb[200:520, 600:900] = (200, 100, 160)
    rgb[150:470, 700:712] = (40, 170, 150)  # green ink across the second block
    rgb[40:44, 40:44] = (120, 60, 140)
    return rgb


def test_detect_tissue_reads_in_bounded_strips_with_the_same_result(monkeypatch) -> None:
    import cdfis_desktop.core.tiling.tissue as tissue

    rgb = _slide_image()
    whole = detect_tissue(InMemorySlide(rgb, mpp=0.5, level_factors=(1, 4)), mask_mpp=2.0)
    monkeypatch.setattr(tissue, "STRIP_PX", 4000)  # level-1 px: 240 wide -> 16 rows a strip
    slide = _CountingSlide(rgb, mpp=0.5, level_factors=(1, 4))
    strips = detect_tissue(slide, mask_mpp=2.0)
    assert max(slide.read_px) <= 4000 and len(slide.read_px) >= 10
    assert np.array_equal(strips.mask, whole.mask)
    assert 0.3 < strips.mask.mean() < 0.6 and strips.stain == "brightfield"


def test_blocks_and_halos_do_not_change_the_mask(monkeypatch) -> None:
    import cdfis_desktop.core.tiling.tissue as tissue

    rgb = _slide_image()
    for stain in ("brightfield", "fluorescence"):
        image = rgb if stain == "brightfield" else 255 - rgb
        one_block = tissue_mask(image, stain=stain)
        monkeypatch.setattr(tissue, "BLOCK_PX", 960 * 7)  # 7-row blocks: halos matter
        assert np.array_equal(tissue_mask(image, stain=stain), one_block), stain
        monkeypatch.undo()


def _fluorescence_image(seed: int = 0) -> np.ndarray:
    """Dark glass with a rectangle of tissue: faint autofluorescence and bright nuclei."""
    rng = np.random.default_rng(seed)
    rgb = np.clip(rng.normal(3, 1.5, (300, 400, 3)), 0, 255).astype(np.uint8)
    rgb[60:240, 80:320, 0] = rng.integers(10, 25, (180, 240))
    nuclei = rng.random((180, 240)) < 0.05
    rgb[60:240, 80:320, 2][nuclei] = 220
    return rgb


def test_fluorescence_is_detected_and_its_tissue_found() -> None:
    from cdfis_desktop.core.tiling.tissue import guess_stain

    rgb = _fluorescence_image()
    assert guess_stain(rgb) == "fluorescence" and guess_stain(_slide_image()) == "brightfield"
    mask = tissue_mask(rgb, stain="auto")
    assert mask[70:230, 90:310].mean() > 0.98
    assert mask[:50].mean() == 0 and mask[250:].mean() == 0
    assert np.array_equal(mask, tissue_mask(rgb, stain="fluorescence"))


def test_detect_tissue_auto_says_which_rule_it_used() -> None:
    slide = InMemorySlide(np.repeat(np.repeat(_fluorescence_image(), 4, 0), 4, 1), mpp=0.5)
    auto = detect_tissue(slide, mask_mpp=2.0)
    assert auto.stain == "fluorescence" and 0.3 < auto.mask.mean() < 0.45
    forced = detect_tissue(slide, mask_mpp=2.0, stain="brightfield")
    assert forced.stain == "brightfield"
