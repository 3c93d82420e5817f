"""Label 100k patches by polygon coverage (vectorised vs a per-patch loop on a sample), and
batch retrieval from a preloaded uint8 dataset vs lazy slide reads. Prints ratios measured
in this run; no limits."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import shapely

from cdfis_desktop.core.slides import open_slide, write_pyramidal_tiff
from cdfis_desktop.core.tiling.labels import label_patches
from cdfis_desktop.core.training.datasets import SlidePatchDataset, SlideSource


def bench_labels() -> None:
    rng = np.random.default_rng(0)
    blobs = [
        shapely.Point(rng.uniform(0, 80_000, 2)).buffer(rng.uniform(500, 5000), 64)
        for _ in range(60)
    ]
    geometries = {
        0: shapely.union_all(blobs[:30]),
        1: shapely.union_all(blobs[30:]).difference(shapely.union_all(blobs[:30])),
    }
    side = 316  # 316 x 316 = ~100k patches of 256 px
    l0_x, l0_y = (a.ravel() * 256.0 for a in np.meshgrid(np.arange(side), np.arange(side)))
    start = time.perf_counter()
    label_patches(l0_x, l0_y, 256, geometries, min_coverage=0.5)
    vectorised = time.perf_counter() - start
    sample = rng.choice(l0_x.size, 2000, replace=False)
    start = time.perf_counter()
    for i in sample:
        box = shapely.box(l0_x[i], l0_y[i], l0_x[i] + 256, l0_y[i] + 256)
        [box.intersection(g).area for g in geometries.values()]
    loop = (time.perf_counter() - start) * l0_x.size / sample.size
    print(
        f"labels: {l0_x.size} patches vectorised {vectorised:.2f} s; per-patch loop (extrapolated) "
        f"{loop:.1f} s; speed-up x{loop / vectorised:.0f}"
    )


def bench_dataset(folder: Path) -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(120, 230, (2048, 2048, 3), dtype=np.uint8)
    path = write_pyramidal_tiff(folder / "s.tiff", image, 0.5)
    with open_slide(path):
        pass
    n = 16 * 16
    l0_x, l0_y = (a.ravel() * 128 for a in np.meshgrid(np.arange(16), np.arange(16)))
    args = (
        {1: SlideSource(str(path))},
        np.ones(n),
        l0_x,
        l0_y,
        np.full(n, 128),
        np.zeros(n),
        np.arange(n),
        96,
    )
    lazy = SlidePatchDataset(*args, preload=False)
    batches = [rng.choice(n, 64) for _ in range(8)]
    start = time.perf_counter()
    for b in batches:
        lazy.batch(b, augment=False)
    lazy_s = (time.perf_counter() - start) / len(batches)
    eager = SlidePatchDataset(*args, preload=True)
    start = time.perf_counter()
    eager.preload()
    preload_s = time.perf_counter() - start
    start = time.perf_counter()
    for b in batches:
        eager.batch(b, augment=False)
    eager_s = (time.perf_counter() - start) / len(batches)
    print(
        f"dataset: batch of 64 at 96 px: lazy slide reads {lazy_s * 1e3:.1f} ms, preloaded "
        f"{eager_s * 1e3:.2f} ms (x{lazy_s / eager_s:.0f}); preloading {n} patches took {preload_s:.2f} s"
    )


if __name__ == "__main__":
    bench_labels()
    with tempfile.TemporaryDirectory() as tmp:
        bench_dataset(Path(tmp))
    sys.exit(0)
