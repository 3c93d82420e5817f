"""Chi-square goodness-of-fit without scipy (Wilson-Hilferty critical values)."""

from __future__ import annotations

import math

import numpy as np

Z_999 = 3.0902  # standard-normal 0.999 quantile


def chi_square(observed: np.ndarray, expected: np.ndarray) -> float:
    """Pearson's statistic over the cells with a positive expected count."""
    mask = expected > 0
    return float(((observed[mask] - expected[mask]) ** 2 / expected[mask]).sum())


def chi_square_critical(df: int, z: float = Z_999) -> float:
    """Approximate upper quantile of chi-square(df) (Wilson-Hilferty; good for df >= 3)."""
    a = 2.0 / (9.0 * df)
    return df * (1.0 - a + z * math.sqrt(a)) ** 3
