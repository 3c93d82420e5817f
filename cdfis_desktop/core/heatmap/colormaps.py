"""Colormaps as 256-entry RGBA lookup tables, and class colour tables for categorical maps.

The tables come from matplotlib's colormap registry (no backend, no figure is involved), so
they are exactly the maps users know from matplotlib and QuPath. Each table is
``uint8[256, 4]`` (R, G, B, A; A is 255); entry 0 is the colour of the low end of the value
range, entry 255 of the high end. Tables are cached and returned read-only; copy before
changing one. Safe from any thread.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from cdfis_desktop.core.errors import ConfigError

DEFAULT_COLORMAP = "viridis"
"""Perceptually uniform; the default for importance and score maps."""

DIFFERENCE_COLORMAP = "RdBu_r"
"""Diverging (blue = negative, white = 0, red = positive); the default for differences."""

_SEQUENTIAL = ("viridis", "inferno", "magma", "jet")
_DIVERGING = ("RdBu_r", "coolwarm")

# Colour-blind-safe class colours (Okabe-Ito), in label order: 0 = first class name.
_CLASS_COLORS_RGB = (
    (0, 114, 178),  # blue
    (213, 94, 0),  # vermillion
    (0, 158, 115),  # bluish green
    (204, 121, 167),  # reddish purple
    (230, 159, 0),  # orange
    (86, 180, 233),  # sky blue
    (240, 228, 66),  # yellow
    (0, 0, 0),  # black
)


def available_colormaps() -> tuple[str, ...]:
    """Names accepted by :func:`colormap_lut`: sequential maps first, then diverging ones."""
    return _SEQUENTIAL + _DIVERGING


def is_diverging(name: str) -> bool:
    """True for maps meant for signed values centred on 0 (differences)."""
    return name in _DIVERGING


@cache
def colormap_lut(name: str) -> np.ndarray:
    """The ``uint8[256, 4]`` RGBA table of colormap ``name`` (read-only).

    Raises :class:`ConfigError` for a name not in :func:`available_colormaps`.
    """
    if name not in available_colormaps():
        raise ConfigError(
            f"unknown colormap {name!r}; choose one of: {', '.join(available_colormaps())}"
        )
    from matplotlib import colormaps

    lut = np.ascontiguousarray(colormaps[name](np.linspace(0.0, 1.0, 256), bytes=True))
    lut.setflags(write=False)
    return lut


def class_colors(n_classes: int) -> np.ndarray:
    """``uint8[n_classes, 3]`` RGB colours for labels ``0 .. n_classes - 1``.

    Okabe-Ito colours (distinguishable with colour-vision deficiency); beyond eight classes
    the table repeats. Raises :class:`ConfigError` for a negative count.
    """
    if n_classes < 0:
        raise ConfigError(f"number of classes must not be negative (got {n_classes})")
    table = np.asarray(_CLASS_COLORS_RGB, dtype=np.uint8)
    return table[np.arange(n_classes) % len(table)]
