"""Tiling speed on a generated 40,000 x 40,000 px slide (0.5 µm/px, cached in /tmp).

Prints tissue-detection time and traced peak memory against a same-run baseline (one whole
read at the mask resolution + float64 HSV conversion, the first implementation's dominant
steps; on a 100k px slide: 36 s and 1.65 GB, against 24 s and 0.30 GB for the whole
detection), grid time, and patch-read throughput (patches/s) for a naive loop (each patch
read at level 0 and resized: the baseline, measured in this run), one
``read_region_at_mpp`` per patch (best level), and ``iter_patch_rows`` (one wide strip per
grid row at the best level, cut into patches), with 1 and 2 worker threads that each open
their own slide handle. Ratios are against the naive loop with 1 worker. Run:
``python benchmarks/tiling.py`` (about 2-3 minutes on 2 cores, the first run included,
which writes the slide).
"""

from __future__ import annotations

import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cdfis_desktop.core.config import TilingConfig
from cdfis_desktop.core.slides import open_slide
from cdfis_desktop.core.slides.imageops import resize_rgb
from cdfis_desktop.core.slides.reader import SlideReader
from cdfis_desktop.core.tiling.grid import PatchGrid, build_patch_grid, iter_patch_rows, read_patch
from cdfis_desktop.core.tiling.tissue import TissueMask, detect_tissue

SIZE_PX = 40_000
MPP = 0.5
TEXTURE_PX = 2048
SAMPLE_ROWS = 6  # grid rows read per measurement (a few hundred patches)
SLIDE_PATH = Path(tempfile.gettempdir()) / f"cdfis-bench-tiling-{SIZE_PX}.tiff"


def make_slide(path: Path, size_px: int = SIZE_PX) -> None:
    """Tile one rendered synthetic texture over a synthetic slide's tissue layout, so a
    big ``size_px`` square slide has real-looking tissue and background (JPEG tiles, as
    scanners write) without rendering all its pixels. Also used by
    benchmarks/training_from_slides.py."""
    from cdfis_desktop.core.demo.synthetic import LAYOUT_PX, SyntheticSlide
    from cdfis_desktop.core.slides.tiff_writer import write_pyramidal_tiff_bands

    texture = SyntheticSlide((TEXTURE_PX, TEXTURE_PX), MPP, seed=5)
    tile = np.concatenate([texture.render_band(y, 256) for y in range(0, TEXTURE_PX, 256)])
    # Only the tissue region of the texture is usable; fill the layout with it.
    layout = SyntheticSlide((size_px, size_px), MPP, seed=6).tissue_field > 0
    background = np.array([233, 231, 236], np.uint8)
    reps = -(-size_px // TEXTURE_PX)

    def band(l0_y: int, band_h: int) -> np.ndarray:
        rows = np.arange(l0_y, l0_y + band_h)
        texture_rows = tile[rows % TEXTURE_PX]
        image = np.tile(texture_rows, (1, reps, 1))[:, :size_px]
        inside = layout[rows // LAYOUT_PX][:, np.arange(size_px) // LAYOUT_PX]
        image[~inside] = background
        return image

    write_pyramidal_tiff_bands(path, (size_px, size_px), band, mpp=MPP)


def first_rows(grid: PatchGrid, n_rows: int, skip_rows: int) -> np.ndarray:
    """Indices of the patches in ``n_rows`` grid rows after ``skip_rows`` (from mid-slide)."""
    rows = np.unique(grid.l0_y)
    chosen = rows[skip_rows : skip_rows + n_rows]
    return np.flatnonzero(np.isin(grid.l0_y, chosen))


def subgrid(grid: PatchGrid, index: np.ndarray) -> PatchGrid:
    return PatchGrid(
        grid.l0_x[index].copy(),
        grid.l0_y[index].copy(),
        grid.tissue_fraction[index].copy(),
        grid.l0_size,
        grid.patch_px,
        grid.mpp,
        grid.l0_stride,
        grid.slide_mpp,
    )


def naive(grid: PatchGrid) -> int:
    """What a first implementation does: read each patch at level 0, then resize it."""
    with open_slide(SLIDE_PATH) as slide:
        for x, y in zip(grid.l0_x.tolist(), grid.l0_y.tolist(), strict=True):
            region = slide.read_region(x, y, 0, grid.l0_size, grid.l0_size)
            resize_rgb(region, grid.patch_px, grid.patch_px)
    return len(grid)


def per_patch(grid: PatchGrid) -> int:
    """One ``read_region_at_mpp`` per patch (best level, then resize)."""
    with open_slide(SLIDE_PATH) as slide:
        for i in range(len(grid)):
            read_patch(slide, grid, i)
    return len(grid)


def by_rows(grid: PatchGrid) -> int:
    with open_slide(SLIDE_PATH) as slide:
        return sum(len(idx) for idx, _ in iter_patch_rows(slide, grid))


def throughput(reader: Callable[[PatchGrid], int], grid: PatchGrid, workers: int) -> float:
    """Patches per second with ``workers`` threads, each with its own slide handle, each
    reading a different contiguous share of the rows."""
    rows = np.unique(grid.l0_y)
    shares = [np.flatnonzero(np.isin(grid.l0_y, part)) for part in np.array_split(rows, workers)]
    counts = [0] * workers

    def work(k: int) -> None:
        counts[k] = reader(subgrid(grid, shares[k]))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(workers)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - start)


def traced(work: Callable[[], object]) -> tuple[float, float]:
    """(seconds, peak MB of Python/numpy allocations) of ``work()``."""
    tracemalloc.start()
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return seconds, peak


def one_read_saturation(slide: SlideReader, mask: TissueMask) -> None:
    """Baseline: the first implementation's dominant steps: the whole mask image in one read,
    then a float64 HSV conversion of all of it (scikit-image) for the saturation."""
    from skimage import color

    height, width = mask.mask.shape
    image = slide.read_region_at_mpp(0, 0, width, height, mask.mpp)
    color.rgb2hsv(image)[..., 1].mean()


def main() -> None:
    if not SLIDE_PATH.exists():
        start = time.perf_counter()
        make_slide(SLIDE_PATH)
        print(f"wrote {SLIDE_PATH} in {time.perf_counter() - start:.1f} s")
    with open_slide(SLIDE_PATH) as slide:
        print(
            f"slide {slide.dimensions[0]} x {slide.dimensions[1]} px, levels "
            f"{[round(d) for d in slide.level_downsamples]}"
        )
        found: list[TissueMask] = []
        tissue_s, tissue_mb = traced(lambda: found.append(detect_tissue(slide)))
        tissue = found[0]
        print(
            f"tissue detection: {tissue_s:.2f} s, peak {tissue_mb:.0f} MB traced (mask "
            f"{tissue.mask.shape[1]} x {tissue.mask.shape[0]} at {tissue.mpp:g} µm/px, "
            f"{tissue.mask.mean():.0%} tissue)"
        )
        base_s, base_mb = traced(lambda: one_read_saturation(slide, tissue))
        print(
            f"  baseline (one read + float64 HSV only): {base_s:.2f} s, peak {base_mb:.0f} MB; "
            f"detection x{base_s / tissue_s:.2f} of its time, x{base_mb / tissue_mb:.1f} less memory"
        )
        configs = (
            TilingConfig(patch_px=256, mpp=0.5),
            TilingConfig(patch_px=96, mpp=1.0),
            TilingConfig(patch_px=96, mpp=2.0),
        )
        for config in configs:
            start = time.perf_counter()
            grid = build_patch_grid(slide, config, tissue)
            grid_s = time.perf_counter() - start
            print(
                f"\n{config.patch_px} px at {config.mpp} µm/px: grid of {len(grid)} patches "
                f"in {grid_s * 1000:.0f} ms"
            )
            rows = np.unique(grid.l0_y)
            sample = subgrid(grid, first_rows(grid, SAMPLE_ROWS, len(rows) // 2))
            baseline = throughput(naive, sample, 1)
            print(
                f"  {'naive, 1 worker':22s}{baseline:7.0f} patches/s  (baseline, {len(sample)} patches)"
            )
            for name, reader in (("naive", naive), ("per patch", per_patch), ("by rows", by_rows)):
                for workers in (1, 2):
                    if name == "naive" and workers == 1:
                        continue
                    rate = throughput(reader, sample, workers)
                    label = f"{name}, {workers} worker{'s' if workers > 1 else ''}"
                    print(f"  {label:22s}{rate:7.0f} patches/s  x{rate / baseline:.2f}")


if __name__ == "__main__":
    main()
