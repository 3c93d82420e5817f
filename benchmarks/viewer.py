"""Slide-viewer benchmark: frame time while panning/zooming a 100,000 x 100,000 px slide,
and the time to recompute the overlay for 100,000 patches.

Run: ``QT_QPA_PLATFORM=offscreen python benchmarks/viewer.py``. The slide is generated once
(streamed, a tiled procedural H&E texture) and cached in ``/tmp/cdfis-bench``. Prints ratios
against baselines measured in the same run: the frame time against a repaint of an unchanged
view (the cost floor of painting the window), and the overlay time against one
``np.random`` fill of the same number of values.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

SLIDE_PX = 100_000
TEXTURE_PX = 4096
CACHE_DIR = Path("/tmp/cdfis-bench")


def benchmark_slide(size_px: int = SLIDE_PX, folder: Path = CACHE_DIR) -> Path:
    """A ``size_px`` square pyramidal TIFF at 0.25 µm/px, generated once and cached."""
    from cdfis_desktop.core.demo.synthetic import SyntheticSlide
    from cdfis_desktop.core.slides.tiff_writer import write_pyramidal_tiff_bands

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bench-{size_px}.tiff"
    if path.exists():
        return path
    texture = SyntheticSlide((TEXTURE_PX, TEXTURE_PX), 0.25, seed=7).render_band(0, TEXTURE_PX)
    # tint each texture repeat a little so positions on the slide look different
    repeats = -(-size_px // TEXTURE_PX)
    rng = np.random.default_rng(0)
    tints = rng.uniform(0.85, 1.0, size=(repeats, repeats, 3)).astype(np.float32)

    def band(l0_y: int, band_h: int) -> np.ndarray:
        ty = (l0_y // TEXTURE_PX) % repeats
        y0 = l0_y % TEXTURE_PX
        rows = texture[np.arange(y0, y0 + band_h) % TEXTURE_PX]
        out = np.empty((band_h, size_px, 3), np.uint8)
        for tx in range(repeats):
            x0 = tx * TEXTURE_PX
            width = min(TEXTURE_PX, size_px - x0)
            out[:, x0 : x0 + width] = (rows[:, :width] * tints[ty, tx]).astype(np.uint8)
        return out

    started = time.perf_counter()
    write_pyramidal_tiff_bands(path, (size_px, size_px), band, mpp=0.25, tile_px=256)
    print(f"generated {path} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path
