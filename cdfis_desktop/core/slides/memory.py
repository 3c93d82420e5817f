"""``InMemorySlide``: a slide held in a numpy array, for tests and generated data.

Levels are box-downsampled copies of level 0 (factors in ``level_factors``). Thread-safe
for reading (nothing is mutated after construction).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from cdfis_desktop.core.slides.imageops import downsample_box
from cdfis_desktop.core.slides.reader import BaseSlideReader


class InMemorySlide(BaseSlideReader):
    """A slide from ``rgb`` (uint8[h, w, 3], level 0) at ``mpp`` µm/px (None = unknown).

    ``associated``: name -> uint8[h, w, 3]. ``path`` is only a label (nothing is read).
    """

    def __init__(
        self,
        rgb: np.ndarray,
        mpp: float | None = 0.5,
        *,
        level_factors: tuple[int, ...] = (1, 4, 16),
        objective_power: float | None = None,
        associated: dict[str, np.ndarray] | None = None,
        mpp_override: float | None = None,
        path: str | Path = "memory://slide",
    ) -> None:
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected uint8[h, w, 3], got {rgb.dtype}{list(rgb.shape)}")
        if not level_factors or level_factors[0] != 1:
            raise ValueError(f"level factors must start with 1 (got {level_factors})")
        self._levels = [rgb if f == 1 else downsample_box(rgb, f) for f in level_factors]
        for level in self._levels:
            level.setflags(write=False)
        self._path = Path(str(path))
        self._format = "memory"
        self._level_dimensions = tuple((lv.shape[1], lv.shape[0]) for lv in self._levels)
        width = rgb.shape[1]
        self._level_downsamples = tuple(width / lv.shape[1] for lv in self._levels)
        self._properties = {"openslide.vendor": "memory"}
        if mpp is not None:
            self._properties["openslide.mpp-x"] = self._properties["openslide.mpp-y"] = str(mpp)
        self._metadata_mpp = mpp
        self._objective_power = objective_power
        self._mpp_override = mpp_override
        self._associated = dict(associated or {})
        self._associated_names = tuple(sorted(self._associated))

    def read_region(self, l0_x: int, l0_y: int, level: int, lv_w: int, lv_h: int) -> np.ndarray:
        """uint8[lv_h, lv_w, 3]; pixels outside the slide are white."""
        image = self._levels[level]
        downsample = self._level_downsamples[level]
        lv_x, lv_y = int(l0_x // downsample), int(l0_y // downsample)
        out = np.full((lv_h, lv_w, 3), 255, np.uint8)
        x0, y0 = max(lv_x, 0), max(lv_y, 0)
        x1, y1 = min(lv_x + lv_w, image.shape[1]), min(lv_y + lv_h, image.shape[0])
        if x1 > x0 and y1 > y0:
            out[y0 - lv_y : y1 - lv_y, x0 - lv_x : x1 - lv_x] = image[y0:y1, x0:x1]
        return out

    def associated_image(self, name: str) -> np.ndarray:
        if name not in self._associated:
            raise KeyError(f"{self._path} has no associated image {name!r}")
        return self._associated[name]

    def fingerprint(self) -> str:
        return "sha256:" + hashlib.sha256(self._levels[0].tobytes()).hexdigest()

    def close(self) -> None:
        self._levels = []
