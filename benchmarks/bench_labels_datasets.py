"""Label 100k patches by polygon coverage (vectorised vs a per-patch loop on a sample); label
the patches under a real hand-drawn outline (Camelyon16 tumor_039.xml from CDFIS_TEST_DATA,
else a generated outline of 20,000 vertices) with the outlines cut into pieces vs one
predicate query on the whole outlines; and batch retrieval from a preloaded uint8 dataset
vs lazy slide reads. Prints ratios measured in this run; no limits."""

from __future__ import annotations

import os
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


def _outline_geometries() -> tuple[str, dict[int, shapely.Geometry]]:
    folder = os.environ.get("CDFIS_TEST_DATA")
    xml = Path(folder or "-") / "annotations" / "camelyon16" / "tumor_039.xml"
    if xml.is_file():
        from cdfis_desktop.core.tiling.annotations import load_annotations

        return xml.name, {0: load_annotations(xml).geometries["Tumor"]}
    rng = np.random.default_rng(2)
    angle = np.linspace(0, 2 * np.pi, 20_000, endpoint=False)
    radius = 10_000 * (1 + 0.05 * np.sin(41 * angle) + rng.normal(0, 0.001, angle.size))
    shell = np.c_[radius * np.cos(angle), radius * np.sin(angle)] + 12_000
    holes = [shapely.Point(rng.uniform(6_000, 18_000, 2)).buffer(300, 32) for _ in range(100)]
    outline = shapely.Polygon(shell).difference(shapely.union_all(holes))
    return "a generated outline of 20,000 vertices", {0: outline}


def _labels_one_query(l0_x: np.ndarray, l0_y: np.ndarray, side: float, geometry) -> np.ndarray:
    """The naive baseline: one STRtree query with the predicate on the whole polygons."""
    polygons = np.array(list(shapely.get_parts(geometry)), dtype=object)
    boxes = shapely.box(l0_x, l0_y, l0_x + side, l0_y + side)
    box_index, part_index = shapely.STRtree(polygons).query(boxes, predicate="intersects")
    inside = shapely.contains(polygons[part_index], boxes[box_index])
    fraction = np.ones(box_index.size)
    edge = ~inside
    clipped = shapely.intersection(boxes[box_index[edge]], polygons[part_index[edge]])
    fraction[edge] = shapely.area(clipped) / side**2
    return np.bincount(box_index, fraction, minlength=l0_x.size)


def bench_outline_labels() -> None:
    name, geometries = _outline_geometries()
    min_x, min_y, max_x, max_y = geometries[0].bounds
    side = 132.0  # 64 px at 0.5 µm/px on a 0.243 µm/px Camelyon16 slide
    xs, ys = np.arange(min_x, max_x, side), np.arange(min_y, max_y, side)
    l0_x, l0_y = (a.ravel() for a in np.meshgrid(xs, ys))
    start = time.perf_counter()
    labels = label_patches(l0_x, l0_y, side, geometries, min_coverage=0.5)
    pieces = time.perf_counter() - start
    start = time.perf_counter()
    coverage = _labels_one_query(l0_x, l0_y, side, geometries[0])
    naive = time.perf_counter() - start
    assert np.allclose(np.minimum(coverage, 1.0), labels.coverage, atol=1e-5)
    print(
        f"labels under {name}: {l0_x.size} patches, pieces {pieces:.2f} s; one predicate "
        f"query on the whole outlines (baseline) {naive:.1f} s; speed-up x{naive / pieces:.0f}"
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
    bench_outline_labels()
    with tempfile.TemporaryDirectory() as tmp:
        bench_dataset(Path(tmp))
    sys.exit(0)
