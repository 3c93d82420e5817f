"""Block reads of many patches equal one ``read_region_at_mpp`` per patch, pixel for pixel
(real OpenSlide reads of a generated pyramidal TIFF)."""

from __future__ import annotations

import numpy as np
import pytest

from cdfis_desktop.core.errors import SlideTooLargeError
from cdfis_desktop.core.slides import open_slide
from cdfis_desktop.core.slides.patch_blocks import plan_patch_blocks, read_patch_block


@pytest.mark.parametrize(
    ("l0_size", "out_px"),
    [(128, 128), (128, 32), (200, 32), (96, 40)],  # level 0 as is / level 1 as is / resized
)
def test_block_reads_equal_one_read_per_patch(synthetic_slide, l0_size: int, out_px: int) -> None:
    rng = np.random.default_rng(l0_size + out_px)
    with open_slide(synthetic_slide.slide_path) as slide:
        width, height = slide.dimensions
        l0_x = rng.integers(0, width - l0_size, 40) // 4 * 4
        l0_y = rng.integers(0, height - l0_size, 40) // 4 * 4
        l0_x[:4] += np.array([1, 2, 3, 5])  # off the level-1 pixel grid: read one by one
        # small blocks, so that patches straddle block borders
        blocks = plan_patch_blocks(slide, l0_x, l0_y, np.full(40, l0_size), out_px, block_px=300)
        got = np.zeros((40, out_px, out_px, 3), np.uint8)
        for block in blocks:
            got[block.positions] = read_patch_block(slide, block, out_px)
        mpp = slide.effective_mpp * l0_size / out_px
        expected = np.stack(
            [
                slide.read_region_at_mpp(int(x), int(y), out_px, out_px, mpp)
                for x, y in zip(l0_x, l0_y, strict=True)
            ]
        )
    covered = np.sort(np.concatenate([b.positions for b in blocks]))
    assert covered.tolist() == list(range(40))  # every patch exactly once
    assert 1 < len(blocks) < 40
    assert np.array_equal(got, expected)


def test_a_patch_past_the_read_limit_is_refused_before_reading(
    synthetic_slide, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_slide(synthetic_slide.slide_path) as slide:
        monkeypatch.setenv("CDFIS_MAX_READ_PIXELS", "1000")
        with pytest.raises(SlideTooLargeError, match="CDFIS_MAX_READ_PIXELS"):
            plan_patch_blocks(slide, np.array([0]), np.array([0]), np.array([256]), 64)


def test_blocks_stay_within_the_read_limit(
    synthetic_slide, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a low limit the blocks shrink (down to one patch) instead of failing."""
    with open_slide(synthetic_slide.slide_path) as slide:
        monkeypatch.setenv("CDFIS_MAX_READ_PIXELS", str(200 * 200))
        xs, ys = np.meshgrid(np.arange(0, 1024, 128), np.arange(0, 1024, 128))
        blocks = plan_patch_blocks(slide, xs.ravel(), ys.ravel(), np.full(xs.size, 128), 128)
        assert max(b.read_w * b.read_h for b in blocks) <= 200 * 200
        for block in blocks[:3]:
            assert read_patch_block(slide, block, 128).shape[1:] == (128, 128, 3)
