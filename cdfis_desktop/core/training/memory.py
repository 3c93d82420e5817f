"""A patch dataset over images already in memory (tests, benchmarks, generated data)."""

from __future__ import annotations

from typing import Any

import numpy as np

from cdfis_desktop.core.training.datasets import PatchDataset


class ArrayPatchDataset(PatchDataset):
    """Patches from ``images uint8[N, 3, H, W]`` (H == W), ``labels int[N]`` and
    ``patch_ids int[N]`` (store patch ids). Preloaded from the start; ``options`` are
    :class:`PatchDataset`'s (``augmentation``)."""

    def __init__(
        self, images: np.ndarray, labels: np.ndarray, patch_ids: np.ndarray, **options: Any
    ) -> None:
        images = np.ascontiguousarray(images, dtype=np.uint8)
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
            raise ValueError(f"expected images uint8[N, 3, H, H], got {list(images.shape)}")
        if images.shape[0] != len(labels):
            raise ValueError(f"{images.shape[0]} images but {len(labels)} labels")
        super().__init__(labels, patch_ids, images.shape[2], preload=True, **options)
        self._array = images
        self._images = images

    def _read(self, index: int) -> np.ndarray:
        return np.ascontiguousarray(self._array[index].transpose(1, 2, 0))
