"""Importance statistics of a run, computed on aggregate arrays (numpy only, no SQL).

The one home of the definitions in docs/method.md, "Favoured and ignored patches". The
store (:mod:`cdfis_desktop.core.storage.queries`) and the metric registry
(:mod:`cdfis_desktop.core.heatmap.metrics`) call these functions on the per-patch
aggregates they read; nothing else re-derives them.

- :func:`expected_uniform`: how often uniform sampling would choose each training patch,
  ``C / N`` with C the draws of the run (in one epoch, or cumulated) and N its number of
  training patches.
- :func:`favour`: ``times_chosen - expected_uniform`` (NaN stays NaN).
- :func:`mean_score`: ``score_sum / times_scored``, NaN where never scored.
- :func:`rank_patches`: the favoured or ignored ranking of scored patches.

Pure functions of their inputs; safe from any thread.
"""

from __future__ import annotations

import numpy as np


def expected_uniform(draws: int | float, n_train: int) -> float:
    """``C / N``: ``draws`` (sum of ``times_chosen`` over all patches of the run, for the
    epoch or cumulated) over the run's ``n_train`` training patches (at least 1)."""
    return float(draws) / max(int(n_train), 1)


def favour(times_chosen: np.ndarray | float, expected: float) -> np.ndarray:
    """``times_chosen - expected`` as float64 (same shape; NaN where ``times_chosen`` is
    NaN). Positive: chosen more often than uniform sampling would; negative: less."""
    return np.asarray(times_chosen, dtype=np.float64) - float(expected)


def mean_score(score_sum: np.ndarray, times_scored: np.ndarray) -> np.ndarray:
    """float64 ``score_sum / times_scored`` per patch; NaN where ``times_scored`` is 0."""
    scored = np.asarray(times_scored)
    total = np.asarray(score_sum, dtype=np.float64)
    out = np.full(total.shape, np.nan)
    has = scored > 0
    out[has] = total[has] / scored[has]
    return out


def rank_patches(
    patch_id: np.ndarray,
    times_scored: np.ndarray,
    times_chosen: np.ndarray,
    n: int,
    *,
    ignored: bool,
) -> np.ndarray:
    """Positions (intp[<= n]) of the ``n`` most favoured patches among those scored at
    least once, or with ``ignored`` the ``n`` most ignored.

    Inputs are parallel ``[m]`` arrays. Favoured: chosen most, ties by scored least (chosen
    from fewer looks), then by id. Ignored: chosen least, ties by scored most (looked at
    often and passed over), then by id. Favour is ``times_chosen`` minus one constant, so
    ranking by ``times_chosen`` is ranking by favour. Only the patches whose
    ``times_chosen`` reaches the n-th best (a partition, O(m)) are sorted: the gallery asks
    for a few dozen of 200,000.
    """
    ids = np.asarray(patch_id, dtype=np.int64)
    scored = np.asarray(times_scored, dtype=np.int64)
    chosen = np.asarray(times_chosen, dtype=np.int64)
    candidates = np.flatnonzero(scored > 0)
    keep = min(max(int(n), 0), candidates.size)
    if keep == 0:
        return candidates[:0]
    primary = chosen[candidates] if ignored else -chosen[candidates]
    if keep < candidates.size:  # only those that can make the top n (ties at the cut kept)
        cut = np.partition(primary, keep - 1)[keep - 1]
        candidates = candidates[primary <= cut]
        primary = primary[primary <= cut]
    secondary = -scored[candidates] if ignored else scored[candidates]
    order = np.lexsort((ids[candidates], secondary, primary))
    return candidates[order[:keep]]
