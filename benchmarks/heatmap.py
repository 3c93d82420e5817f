"""Heatmap rendering speed: 100,000 patches -> one RGBA layer.

Prints the time of ``render_patch_heatmap`` for a 317 x 317 grid of 256-px patches, first
(100,000 patches, ~81,000 px square slide) at several downsamples, and, as the baseline
measured in the same run, a plain per-patch loop that paints each patch's rectangle into
the image (what a naive implementation does); the ratio is baseline / vectorised.
Also an overlapping grid (stride = size / 2). Run: ``python benchmarks/heatmap.py``.
"""

from __future__ import annotations

import time

import numpy as np

from cdfis_desktop.core.heatmap import colormap_lut, render_patch_heatmap

N_SIDE = 317
PATCH_L0 = 256
N_PATCHES = 100_000


def _best_ms(function, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000.0 * min(times)


def _naive(l0_x, l0_y, values, slide_l0, downsample) -> np.ndarray:
    size = int(np.ceil(slide_l0 / downsample))
    image = np.zeros((size, size, 4), dtype=np.uint8)
    lut = colormap_lut("viridis")
    low, high = np.percentile(values, [2, 98])
    index = np.clip(np.rint((values - low) / (high - low) * 255), 0, 255).astype(int)
    side = int(np.ceil(PATCH_L0 / downsample))
    for x, y, i in zip(l0_x // downsample, l0_y // downsample, index, strict=True):
        image[int(y) : int(y) + side, int(x) : int(x) + side, :3] = lut[i, :3]
        image[int(y) : int(y) + side, int(x) : int(x) + side, 3] = 128
    return image


def main() -> None:
    cols, rows = np.meshgrid(np.arange(N_SIDE), np.arange(N_SIDE))
    l0_x = (cols.ravel() * PATCH_L0)[:N_PATCHES]
    l0_y = (rows.ravel() * PATCH_L0)[:N_PATCHES]
    values = np.random.default_rng(0).random(N_PATCHES)
    slide_l0 = N_SIDE * PATCH_L0
    render_patch_heatmap(
        l0_x, l0_y, PATCH_L0, values, slide_l0_w=slide_l0, slide_l0_h=slide_l0, downsample=64
    )  # warm-up: colormap table
    print(f"{N_PATCHES} patches of {PATCH_L0} px on a {slide_l0} px square slide")
    for downsample in (256, 64, 32):
        fast = _best_ms(
            lambda d=downsample: render_patch_heatmap(
                l0_x, l0_y, PATCH_L0, values, slide_l0_w=slide_l0, slide_l0_h=slide_l0, downsample=d
            )
        )
        naive = _best_ms(lambda d=downsample: _naive(l0_x, l0_y, values, slide_l0, d), repeats=1)
        side = int(np.ceil(slide_l0 / downsample))
        print(
            f"downsample {downsample:>3} ({side} px square): vectorised {fast:7.1f} ms, "
            f"per-patch loop {naive:7.1f} ms, ratio {naive / fast:5.1f}x"
        )
    half = PATCH_L0 // 2
    overlap = _best_ms(
        lambda: render_patch_heatmap(
            (cols.ravel() * half)[:N_PATCHES],
            (rows.ravel() * half)[:N_PATCHES],
            PATCH_L0,
            values,
            slide_l0_w=slide_l0,
            slide_l0_h=slide_l0,
            downsample=64,
        )
    )
    print(f"overlapping grid (stride = size / 2), downsample 64: {overlap:.1f} ms")
    jitter = np.random.default_rng(1).integers(0, 7, size=(2, N_PATCHES))
    irregular = _best_ms(
        lambda: render_patch_heatmap(
            l0_x + jitter[0],
            l0_y + jitter[1],
            PATCH_L0,
            values,
            slide_l0_w=slide_l0 + 8,
            slide_l0_h=slide_l0 + 8,
            downsample=64,
        )
    )
    print(f"irregular coordinates (no lattice), downsample 64: {irregular:.1f} ms")


if __name__ == "__main__":
    main()
