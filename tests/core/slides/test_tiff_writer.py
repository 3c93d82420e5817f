"""Pyramidal TIFF writing, read back with OpenSlide."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openslide
import pytest

from cdfis_desktop.core.slides.tiff_writer import (
    pyramid_level_sizes,
    write_pyramidal_tiff,
    write_pyramidal_tiff_bands,
)


def _gradient(height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([xx * 255 // width, yy * 255 // height, 128 + 0 * xx], -1).astype(np.uint8)


def test_openslide_reads_levels_and_mpp(tmp_path: Path) -> None:
    rgb = _gradient(1000, 1300)
    path = write_pyramidal_tiff(tmp_path / "s.tiff", rgb, mpp=0.25, tile_px=256)
    with openslide.OpenSlide(str(path)) as slide:
        assert slide.level_dimensions == ((1300, 1000), (325, 250), (82, 63))
        assert float(slide.properties["openslide.mpp-x"]) == pytest.approx(0.25)
        region = np.asarray(slide.read_region((600, 400), 0, (64, 64)))[..., :3]
        low = np.asarray(slide.read_region((600, 400), 1, (16, 16)))[..., :3]
    # JPEG is lossy; a smooth gradient survives within a few grey levels.
    assert np.abs(region.astype(int) - rgb[400:464, 600:664]).mean() < 3
    expected_low = rgb[400:464, 600:664].reshape(16, 4, 16, 4, 3).mean((1, 3))
    assert np.abs(low.astype(float) - expected_low).mean() < 3


def test_bands_variant_matches_array_variant(tmp_path: Path) -> None:
    rgb = _gradient(700, 900)
    calls: list[tuple[int, int]] = []

    def band(l0_y: int, band_h: int) -> np.ndarray:
        calls.append((l0_y, band_h))
        return rgb[l0_y : l0_y + band_h]

    a = write_pyramidal_tiff(tmp_path / "a.tiff", rgb, mpp=0.5)
    b = write_pyramidal_tiff_bands(tmp_path / "b.tiff", (900, 700), band, mpp=0.5)
    assert calls == [(0, 256), (256, 256), (512, 188)]
    assert a.read_bytes() == b.read_bytes()


def test_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    def bad_band(l0_y: int, band_h: int) -> np.ndarray:
        return np.zeros((band_h, 10, 3), np.uint8)  # wrong width

    with pytest.raises(ValueError, match="band_fn"):
        write_pyramidal_tiff_bands(tmp_path / "x.tiff", (300, 300), bad_band, mpp=0.5)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("rgb", "mpp", "tile_px", "message"),
    [
        (np.zeros((10, 10), np.uint8), 0.5, 256, "uint8"),
        (np.zeros((10, 10, 3), np.float32), 0.5, 256, "uint8"),
        (np.zeros((10, 10, 3), np.uint8), 0.0, 256, "mpp"),
        (np.zeros((10, 10, 3), np.uint8), 0.5, 100, "multiple of 16"),
    ],
)
def test_bad_arguments(
    tmp_path: Path, rgb: np.ndarray, mpp: float, tile_px: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        write_pyramidal_tiff(tmp_path / "x.tiff", rgb, mpp=mpp, tile_px=tile_px)


def test_level_sizes_stop_at_one_tile() -> None:
    assert pyramid_level_sizes(100_000, 100_000, 256) == [
        (100_000, 100_000),
        (25_000, 25_000),
        (6_250, 6_250),
        (1_563, 1_563),
        (391, 391),
        (98, 98),
    ]
    assert pyramid_level_sizes(200, 100, 256) == [(200, 100)]
