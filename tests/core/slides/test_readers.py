"""SlideReader behaviour on a generated TIFF (OpenSlide) and the in-memory reader."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from cdfis_desktop.core.slides import (
    FALLBACK_MPP,
    InMemorySlide,
    MissingMppWarning,
    SlideHandleCache,
    SlideReader,
    open_slide,
    write_pyramidal_tiff,
)


@pytest.fixture()
def stripes() -> np.ndarray:
    """1024 x 768 px: 8-px vertical stripes of alternating colour, a red square at (512, 256)."""
    rgb = np.zeros((768, 1024, 3), np.uint8)
    rgb[:, (np.arange(1024) // 8) % 2 == 0] = (200, 200, 200)
    rgb[256:384, 512:640] = (220, 30, 30)
    return rgb


def test_open_slide_properties(synthetic_slide) -> None:
    with open_slide(synthetic_slide.slide_path) as slide:
        assert isinstance(slide, SlideReader)
        assert slide.format == "generic-tiff"
        assert slide.dimensions == (2048, 1536)
        assert slide.level_count == 3
        assert slide.level_downsamples == pytest.approx((1.0, 4.0, 16.0))
        assert slide.mpp == pytest.approx(0.5)
        assert slide.mpp_source == "metadata"
        assert slide.read_region(100, 200, 1, 30, 20).shape == (20, 30, 3)
        assert slide.thumbnail(256).shape == (192, 256, 3)
        assert slide.fingerprint() == open_slide(synthetic_slide.slide_path).fingerprint()


def test_read_region_at_mpp_picks_level_and_resizes(tmp_path: Path, stripes: np.ndarray) -> None:
    path = write_pyramidal_tiff(tmp_path / "s.tiff", stripes, mpp=0.5)
    memory = InMemorySlide(stripes, mpp=0.5, level_factors=(1, 4))
    for slide in (open_slide(path), memory):
        assert slide.best_level_for_downsample(2.0) == 0
        assert slide.best_level_for_downsample(4.0) == 1
        assert slide.best_level_for_downsample(100.0) == 1  # levels: 1024 px, 256 px
        # 1 µm/px = 2 level-0 px per output px: the red square (128 l0 px) becomes 64 px.
        out = slide.read_region_at_mpp(512, 256, 64, 64, 1.0)
        assert out.shape == (64, 64, 3)
        assert out[..., 0].mean() > 200 and out[..., 1].mean() < 50
        # Averaging 8-px stripes over 16 px per output px gives flat grey ~100.
        grey = slide.read_region_at_mpp(0, 0, 16, 16, 8.0)
        assert abs(float(grey.mean()) - 100) < 8


def test_memory_read_outside_is_white(stripes: np.ndarray) -> None:
    slide = InMemorySlide(stripes)
    out = slide.read_region(-10, -10, 0, 20, 20)
    assert (out[:10] == 255).all() and (out[:, :10] == 255).all()
    assert (out[10:, 10:] == stripes[:10, :10]).all()


def test_missing_mpp_fallback_and_override(stripes: np.ndarray) -> None:
    slide = InMemorySlide(stripes, mpp=None)
    assert slide.mpp is None and slide.mpp_source == "fallback"
    assert slide.effective_mpp == FALLBACK_MPP
    objective = InMemorySlide(stripes, mpp=None, objective_power=40)
    assert objective.mpp_source == "objective" and objective.effective_mpp == pytest.approx(0.25)
    override = InMemorySlide(stripes, mpp=0.5, mpp_override=0.3)
    assert override.mpp == 0.3 and override.mpp_source == "override"


def test_handle_cache_shares_and_evicts(tmp_path: Path, stripes: np.ndarray) -> None:
    paths = [write_pyramidal_tiff(tmp_path / f"s{i}.tiff", stripes, mpp=0.5) for i in range(3)]
    cache = SlideHandleCache(max_open=2)
    first = cache.get(paths[0])
    assert cache.get(paths[0]) is first
    results: list[np.ndarray] = []

    def worker() -> None:
        results.append(cache.get(paths[0]).read_region(512, 256, 0, 8, 8))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and all((r == results[0]).all() for r in results)
    cache.get(paths[1])
    cache.get(paths[2])
    assert len(cache) == 2
    assert cache.get(paths[0]) is not first  # evicted (and closed), then reopened
    cache.close()
    assert len(cache) == 0


def test_generic_tiff_without_mpp_warns(tmp_path: Path, stripes: np.ndarray) -> None:
    import tifffile

    path = tmp_path / "nompp.tiff"
    tifffile.imwrite(path, stripes, tile=(256, 256), photometric="rgb", metadata=None)
    with pytest.warns(MissingMppWarning, match="nompp.tiff"):
        slide = open_slide(path)
    assert slide.mpp is None and slide.effective_mpp == FALLBACK_MPP
    with warnings.catch_warnings():
        warnings.simplefilter("error", MissingMppWarning)
        assert open_slide(path, mpp_override=0.25).mpp == 0.25
