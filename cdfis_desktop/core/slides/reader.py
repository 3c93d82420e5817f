"""The ``SlideReader`` protocol and the behaviour all readers share.

Frames: level-0 pixel coordinates are canonical (``l0_x``, ``l0_y``); ``lv_*`` are pixels
of a pyramid level; resolution is asked for in µm/px (``mpp``).

Missing resolution: when a slide has no mpp in its metadata and no override was given,
:attr:`SlideReader.mpp` is ``None`` and :attr:`effective_mpp` falls back to ``10 /
objective_power`` when the objective is known (20x -> 0.5 µm/px), else to
:data:`FALLBACK_MPP` (0.5 µm/px, a 20x scan); :attr:`mpp_source` says which, and
``open_slide`` warns with :class:`MissingMppWarning`. An override (``mpp_override``) always
wins over the metadata.

Threads: a reader may be used by one thread at a time unless it says otherwise; give each
thread or worker process its own (``open_slide``) or share through ``SlideHandleCache``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from cdfis_desktop.core.slides.guards import check_read_at_mpp, read_plan_at_mpp
from cdfis_desktop.core.slides.imageops import resize_rgb

FALLBACK_MPP = 0.5
"""µm/px assumed for a slide with neither mpp nor objective power (a typical 20x scan)."""


class MissingMppWarning(UserWarning):
    """A slide has no resolution metadata; a fallback mpp is used until the user sets one."""


@runtime_checkable
class SlideReader(Protocol):
    """Read access to a multi-resolution slide (see the module docstring for the frames)."""

    @property
    def path(self) -> Path: ...
    @property
    def format(self) -> str: ...
    @property
    def dimensions(self) -> tuple[int, int]: ...
    @property
    def level_count(self) -> int: ...
    @property
    def level_dimensions(self) -> tuple[tuple[int, int], ...]: ...
    @property
    def level_downsamples(self) -> tuple[float, ...]: ...
    @property
    def mpp(self) -> float | None: ...
    @property
    def effective_mpp(self) -> float: ...
    @property
    def mpp_source(self) -> str: ...
    @property
    def objective_power(self) -> float | None: ...
    @property
    def vendor(self) -> str | None: ...
    @property
    def properties(self) -> dict[str, str]: ...
    @property
    def associated_image_names(self) -> tuple[str, ...]: ...
    def associated_image(self, name: str) -> np.ndarray: ...
    def read_region(self, l0_x: int, l0_y: int, level: int, lv_w: int, lv_h: int) -> np.ndarray: ...
    def read_region_at_mpp(
        self, l0_x: int, l0_y: int, out_w: int, out_h: int, mpp: float
    ) -> np.ndarray: ...
    def thumbnail(self, max_px: int) -> np.ndarray: ...
    def best_level_for_downsample(self, downsample: float) -> int: ...
    def fingerprint(self) -> str: ...
    def close(self) -> None: ...
    def __enter__(self) -> SlideReader: ...
    def __exit__(self, *exc: object) -> None: ...


class BaseSlideReader(ABC):
    """Resolution bookkeeping and the derived reads; subclasses supply the raw access.

    Subclasses set ``_path``, ``_format``, ``_level_dimensions``, ``_level_downsamples``,
    ``_properties``, ``_metadata_mpp``, ``_objective_power``, ``_mpp_override`` and implement
    :meth:`read_region`, :meth:`associated_image`, :meth:`fingerprint`, :meth:`close`.
    """

    _path: Path
    _format: str
    _level_dimensions: tuple[tuple[int, int], ...]
    _level_downsamples: tuple[float, ...]
    _properties: dict[str, str]
    _metadata_mpp: float | None
    _objective_power: float | None
    _mpp_override: float | None
    _associated_names: tuple[str, ...]

    @property
    def path(self) -> Path:
        return self._path

    @property
    def format(self) -> str:
        """Format name as OpenSlide detects it (``aperio``, ``generic-tiff``...) or ``memory``."""
        return self._format

    @property
    def dimensions(self) -> tuple[int, int]:
        """(width, height) of level 0 in px."""
        return self._level_dimensions[0]

    @property
    def level_count(self) -> int:
        return len(self._level_dimensions)

    @property
    def level_dimensions(self) -> tuple[tuple[int, int], ...]:
        return self._level_dimensions

    @property
    def level_downsamples(self) -> tuple[float, ...]:
        return self._level_downsamples

    @property
    def mpp(self) -> float | None:
        """µm/px at level 0: the override if given, else the metadata, else None."""
        return self._mpp_override if self._mpp_override is not None else self._metadata_mpp

    @property
    def mpp_source(self) -> str:
        """Where :attr:`effective_mpp` comes from: override, metadata, objective or fallback."""
        if self._mpp_override is not None:
            return "override"
        if self._metadata_mpp is not None:
            return "metadata"
        return "objective" if self._objective_power else "fallback"

    @property
    def effective_mpp(self) -> float:
        """µm/px at level 0 used for all reads at a requested mpp (never None)."""
        mpp = self.mpp
        if mpp is not None:
            return mpp
        if self._objective_power:
            return 10.0 / self._objective_power
        return FALLBACK_MPP

    @property
    def objective_power(self) -> float | None:
        return self._objective_power

    @property
    def vendor(self) -> str | None:
        return self._properties.get("openslide.vendor")

    @property
    def properties(self) -> dict[str, str]:
        return dict(self._properties)

    @property
    def associated_image_names(self) -> tuple[str, ...]:
        return self._associated_names

    @abstractmethod
    def read_region(self, l0_x: int, l0_y: int, level: int, lv_w: int, lv_h: int) -> np.ndarray:
        """uint8[lv_h, lv_w, 3] RGB of ``level`` from the level-0 corner (l0_x, l0_y)."""

    @abstractmethod
    def associated_image(self, name: str) -> np.ndarray:
        """An associated image as uint8[h, w, 3]; KeyError if the slide has none of that name."""

    @abstractmethod
    def fingerprint(self) -> str:
        """A string identifying the slide's content (stable across renames)."""

    @abstractmethod
    def close(self) -> None:
        """Release the file handle; the reader must not be used afterwards."""

    def best_level_for_downsample(self, downsample: float) -> int:
        """The smallest level whose downsample is <= ``downsample`` (1% tolerance), so reading
        there and shrinking never loses resolution."""
        best = 0
        for level, level_ds in enumerate(self._level_downsamples):
            if level_ds <= downsample * 1.01:
                best = level
        return best

    def read_region_at_mpp(
        self, l0_x: int, l0_y: int, out_w: int, out_h: int, mpp: float
    ) -> np.ndarray:
        """uint8[out_h, out_w, 3] covering ``out_w * mpp`` x ``out_h * mpp`` µm from the
        level-0 corner (l0_x, l0_y): read at the best level, then resized. Raises
        SlideTooLargeError (before reading) past the read-size limit (:mod:`.guards`)."""
        if mpp <= 0 or out_w < 1 or out_h < 1:
            raise ValueError(f"need mpp > 0 and a positive size (got {mpp}, {out_w}x{out_h})")
        check_read_at_mpp(self, out_w, out_h, mpp)
        level, lv_w, lv_h = read_plan_at_mpp(self, out_w, out_h, mpp)
        read_w, read_h = level_read_px(lv_w, lv_h, out_w, out_h)
        region = self.read_region(l0_x, l0_y, level, read_w, read_h)
        return fit_level_region(region, lv_w, lv_h, out_w, out_h)

    def thumbnail(self, max_px: int) -> np.ndarray:
        """The whole slide shrunk so that its longer side is ``max_px``: uint8[h, w, 3]."""
        width, height = self.dimensions
        downsample = max(width, height) / max_px
        out_w, out_h = max(1, round(width / downsample)), max(1, round(height / downsample))
        level = self.best_level_for_downsample(max(downsample, 1.0))
        lv_w, lv_h = self._level_dimensions[level]
        region = self.read_region(0, 0, level, lv_w, lv_h)
        return resize_rgb(region, out_w, out_h)

    def __enter__(self) -> BaseSlideReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def level_read_px(lv_w: float, lv_h: float, out_w: int, out_h: int) -> tuple[int, int]:
    """(w, h) in level px that :meth:`BaseSlideReader.read_region_at_mpp` reads for a
    region of ``lv_w`` x ``lv_h`` level px (fractional, from ``read_plan_at_mpp``) shown at
    ``out_w`` x ``out_h`` px: the output size when the level already has the right
    resolution, else the region rounded up."""
    if abs(lv_w / out_w - 1.0) < 1e-6:
        return out_w, out_h
    return math.ceil(lv_w), math.ceil(lv_h)


def fit_level_region(
    region: np.ndarray, lv_w: float, lv_h: float, out_w: int, out_h: int
) -> np.ndarray:
    """uint8[out_h, out_w, 3] from ``region`` uint8[h, w, 3] of :func:`level_read_px`
    size read at the planned level: unchanged at the right resolution, else its
    ``lv_w`` x ``lv_h`` corner resized (area average when shrinking)."""
    if abs(lv_w / out_w - 1.0) < 1e-6:
        return region
    return resize_rgb(region, out_w, out_h, box=(0.0, 0.0, lv_w, lv_h))
