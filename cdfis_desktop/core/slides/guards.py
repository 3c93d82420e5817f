"""Size guard for slide reads: refuse to decode more pixels than a limit, before reading.

A slide without a pyramid (one level) is read at full resolution whenever a coarse view is
asked for: tissue detection, a thumbnail, an export background. A 40,000 x 40,000 px
single-level slide would allocate 6 GiB in OpenSlide's RGBA buffer (and as much again while
converting); a 200,000 x 200,000 px one cannot be allocated at all. Every read is checked
against :func:`max_read_pixels` first and refused with :class:`SlideTooLargeError`, which
names the limit and how to raise it.

The limit is :data:`DEFAULT_MAX_READ_PIXELS` unless the environment variable
:data:`LIMIT_VARIABLE` sets another number of pixels. Thread rules: any thread.
"""

from __future__ import annotations

import math
import os
from typing import Any

from cdfis_desktop.core.errors import ConfigError, SlideTooLargeError

DEFAULT_MAX_READ_PIXELS = 1 << 28
"""268 million px: 1 GiB as OpenSlide's RGBA (about a 16,000 px square)."""
LIMIT_VARIABLE = "CDFIS_MAX_READ_PIXELS"


def max_read_pixels() -> int:
    """The most pixels one read may decode. Raises ConfigError for a malformed
    :data:`LIMIT_VARIABLE`."""
    text = os.environ.get(LIMIT_VARIABLE, "").strip().replace("_", "")
    if not text:
        return DEFAULT_MAX_READ_PIXELS
    try:
        value = int(float(text))
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(
            f"{LIMIT_VARIABLE}={os.environ[LIMIT_VARIABLE]!r} is not a positive number of pixels"
        )
    return value


def check_read_size(where: object, width_px: int, height_px: int, what: str) -> None:
    """Raise :class:`SlideTooLargeError` when an image of ``width_px`` x ``height_px``
    (``what``: e.g. "of level 0") read from slide ``where`` (its path, for the message)
    would pass :func:`max_read_pixels`."""
    limit = max_read_pixels()
    pixels = int(width_px) * int(height_px)
    if pixels <= limit:
        return
    raise SlideTooLargeError(
        f"{where}: reading {width_px:,} x {height_px:,} px {what} at once would take "
        f"{_size(pixels * 4)} of memory, more than the limit of {limit:,} px. "
        "The slide probably has no lower-resolution levels: convert it to a pyramidal "
        "tiled TIFF (e.g. vips tiffsave in.tif out.tif --tile --pyramid --compression jpeg), "
        f"or raise the limit with the environment variable {LIMIT_VARIABLE}=<pixels> if "
        "the computer has the memory"
    )


def read_plan_at_mpp(slide: Any, out_w: int, out_h: int, mpp: float) -> tuple[int, float, float]:
    """How ``slide.read_region_at_mpp(.., out_w, out_h, mpp)`` reads: (level, lv_w, lv_h),
    the level read and the size of the region read there (level px, fractional).
    ``slide`` is any :class:`~cdfis_desktop.core.slides.reader.SlideReader`."""
    downsample = mpp / slide.effective_mpp
    level = slide.best_level_for_downsample(downsample)
    scale = downsample / slide.level_downsamples[level]  # level px per output px
    return level, out_w * scale, out_h * scale


def check_read_at_mpp(slide: Any, out_w: int, out_h: int, mpp: float) -> None:
    """Raise :class:`SlideTooLargeError` when ``slide.read_region_at_mpp(.., out_w, out_h,
    mpp)`` would pass the limit, for the region read or for the image returned; reads
    nothing (so callers can check every input before writing anything)."""
    level, lv_w, lv_h = read_plan_at_mpp(slide, out_w, out_h, mpp)
    check_read_size(slide.path, math.ceil(lv_w), math.ceil(lv_h), f"of level {level}")
    check_read_size(slide.path, out_w, out_h, "as one image")


def _size(nbytes: int) -> str:
    return f"{nbytes / 2**30:,.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:,.0f} MiB"
