"""Tile-bank pyramidal TIFFs: OpenSlide reads them, identical tiles are stored once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cdfis_desktop.core.slides import open_slide
from cdfis_desktop.core.slides.tile_bank_tiff import write_tile_bank_tiff

BANK = [np.full((256, 256, 3), c, np.uint8) for c in ((240, 240, 240), (220, 120, 180))]
BANK[1][100:120] = (30, 30, 120)  # a stripe, to check rows come out in order


def _ids(level: int, cols: int, rows: int) -> np.ndarray:
    """Tile (1, 2) of level 0 and tile (0, 0) of every coarser level are bank tile 1."""
    ids = np.zeros((rows, cols), np.int64)
    ids[(2, 1) if level == 0 else (0, 0)] = 1
    return ids


def test_openslide_reads_the_pyramid_and_the_tiles(tmp_path: Path) -> None:
    size = (40_000, 30_000)
    path = write_tile_bank_tiff(
        tmp_path / "a.tiff", size, 0.25, _ids, BANK.__getitem__, description="slide a"
    )
    assert path.stat().st_size < 500_000  # 18k level-0 tiles share two stored tiles
    with open_slide(path) as slide:
        assert slide.format == "generic-tiff" and slide.dimensions == size
        assert slide.mpp == pytest.approx(0.25)
        assert slide.level_downsamples[:3] == pytest.approx((1.0, 2.0, 4.0))
        assert slide.level_dimensions[-1][0] <= 256
        assert np.array_equal(slide.read_region(256, 512, 0, 256, 256), BANK[1])
        assert np.array_equal(slide.read_region(0, 0, 0, 256, 256), BANK[0])
        assert np.array_equal(slide.read_region(0, 0, 3, 256, 256), BANK[1])
        fingerprint = slide.fingerprint()
    other = write_tile_bank_tiff(
        tmp_path / "b.tiff", size, 0.25, _ids, BANK.__getitem__, description="slide b"
    )
    with open_slide(other) as slide:
        assert slide.fingerprint() != fingerprint  # the description tells them apart


def test_bad_arguments_are_refused_and_leave_no_file(tmp_path: Path) -> None:
    target = tmp_path / "x.tiff"
    with pytest.raises(ValueError, match="multiple of 16"):
        write_tile_bank_tiff(target, (100, 100), 0.5, _ids, BANK.__getitem__, tile_px=100)
    with pytest.raises(ValueError, match="expected integers of shape"):
        write_tile_bank_tiff(
            target, (600, 600), 0.5, lambda lv, c, r: np.zeros((1, 1)), BANK.__getitem__
        )
    with pytest.raises(ValueError, match="expected uint8"):
        write_tile_bank_tiff(target, (600, 600), 0.5, _ids, lambda i: np.zeros((8, 8, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []
