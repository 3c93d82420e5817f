"""Value ranges that map per-patch values onto a colormap.

A :class:`ValueRange` ``[low, high]`` maps ``low`` to the first colormap entry and
``high`` to the last; values outside are clipped to the ends. NaN means "no value" and
is never part of a range (it is drawn transparent).

- :func:`auto_range`: the 2nd-98th percentiles of the finite values, so a single outlier
  cannot squeeze every other patch into one colour.
- :func:`symmetric_range`: ``[-m, m]`` with ``m`` the 98th percentile of ``|value|``, for
  diverging maps, so 0 always sits at the centre colour.
- :func:`resolve_range`: what the renderers use: a manual range if given, otherwise the
  automatic one suited to the colormap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.heatmap.colormaps import is_diverging


@dataclass(frozen=True)
class ValueRange:
    """A closed interval ``[low, high]`` of finite values (``low <= high``).

    When ``low == high`` every value maps to the middle colour. Raises
    :class:`ConfigError` when a bound is not finite or ``low > high``.
    """

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ConfigError(f"value range bounds must be finite (got {self.low}, {self.high})")
        if self.low > self.high:
            raise ConfigError(
                f"value range low end {self.low} is above its high end {self.high}; swap them"
            )

    @property
    def span(self) -> float:
        return self.high - self.low

    def normalize(self, values: np.ndarray) -> np.ndarray:
        """``float32`` positions in ``[0, 1]`` (NaN stays NaN), same shape as ``values``."""
        values = np.asarray(values, dtype=np.float32)
        if self.span == 0:
            return np.where(np.isnan(values), np.float32(np.nan), np.float32(0.5))
        scaled = (values - np.float32(self.low)) / np.float32(self.span)
        return np.clip(scaled, 0.0, 1.0)

    def lut_index(self, values: np.ndarray) -> np.ndarray:
        """``uint16`` colormap entries (0..255) for ``values``; 256 where the value is NaN."""
        position = self.normalize(values)
        index = np.full(position.shape, 256, dtype=np.uint16)
        valid = ~np.isnan(position)
        index[valid] = np.rint(position[valid] * 255.0).astype(np.uint16)
        return index


_FALLBACK = ValueRange(0.0, 1.0)


def auto_range(
    values: np.ndarray, *, low_percentile: float = 2.0, high_percentile: float = 98.0
) -> ValueRange:
    """Percentile range of the finite entries of ``values`` (any shape).

    All-NaN or empty input gives ``[0, 1]`` (there is nothing to show either way).
    """
    if not 0.0 <= low_percentile <= high_percentile <= 100.0:
        raise ConfigError(
            f"percentiles must satisfy 0 <= low <= high <= 100 "
            f"(got {low_percentile}, {high_percentile})"
        )
    finite = _finite(values)
    if finite.size == 0:
        return _FALLBACK
    low, high = np.percentile(finite, [low_percentile, high_percentile])
    return ValueRange(float(low), float(high))


def symmetric_range(values: np.ndarray, *, percentile: float = 98.0) -> ValueRange:
    """``[-m, m]`` with ``m`` the ``percentile`` of ``|values|`` (finite entries only).

    All-NaN, empty or all-zero input gives ``[-1, 1]``.
    """
    if not 0.0 < percentile <= 100.0:
        raise ConfigError(f"percentile must be in (0, 100] (got {percentile})")
    finite = _finite(values)
    magnitude = float(np.percentile(np.abs(finite), percentile)) if finite.size else 0.0
    if magnitude == 0.0:
        magnitude = 1.0
    return ValueRange(-magnitude, magnitude)


def resolve_range(
    values: np.ndarray, value_range: ValueRange | tuple[float, float] | None, colormap: str
) -> ValueRange:
    """The range to draw with: ``value_range`` if given (manual), else :func:`symmetric_range`
    for diverging colormaps and :func:`auto_range` for the others."""
    if value_range is not None:
        if isinstance(value_range, ValueRange):
            return value_range
        low, high = value_range
        return ValueRange(float(low), float(high))
    if is_diverging(colormap):
        return symmetric_range(values)
    return auto_range(values)


def _finite(values: np.ndarray) -> np.ndarray:
    flat = np.asarray(values, dtype=np.float64).ravel()
    return flat[np.isfinite(flat)]
