"""Epoch-level pruning by the CDF rule (after InfoBatch, Qin et al., ICLR 2024); pure torch.

At the start of each pass over the training set, every sample with a score is dropped
from that pass with probability ``p_i = ratio * (1 - F(s_i))``, F the empirical CDF of
the scores (the share of scored samples whose score is <= s_i): the lowest score is
dropped with probability ``ratio * (1 - 1/n)``, the highest never. Samples without a score
(NaN) are always kept. Kept samples are weighted ``1 / (1 - p_i)`` (Horvitz-Thompson with
inclusion probability ``1 - p_i``), so a pass's expected weighted loss sum equals the full
data's. Without ties the expected share dropped is ``ratio * (n - 1) / (2n)``.
Why this rule rather than InfoBatch's ("drop below-mean scores with probability r") is
in docs/method.md.
"""

from __future__ import annotations

import torch

from cdfis_desktop.core.sampling.draw import pick_weights


def drop_probabilities(scores: torch.Tensor, ratio: float) -> torch.Tensor:
    """``p_i = ratio * (1 - F(s_i))``, float64[N], for scores float[N] (NaN: unscored, p = 0).

    Ranks only: the scale of the scores and outliers do not matter; tied scores share F
    (the highest of their ranks). ``+inf`` ranks highest, ``-inf`` lowest.
    """
    s = scores.detach().to("cpu", torch.float64)
    scored = ~torch.isnan(s)
    drop = torch.zeros_like(s)
    values = s[scored]
    if values.numel() > 0:
        ranked = torch.sort(values).values
        cdf = torch.searchsorted(ranked, values, right=True).to(torch.float64) / values.numel()
        drop[scored] = ratio * (1.0 - cdf)
    return drop


def keep_weights(drop: torch.Tensor, weighting: str, power_exponent: float = 0.5) -> torch.Tensor:
    """Loss weights float32[N] of kept samples with drop probabilities ``drop`` float64[N]:
    ``unbiased`` 1 / (1 - p), ``power`` that to ``power_exponent``, ``none`` 1."""
    n = drop.shape[0]
    return pick_weights(1.0 - drop, n, n, weighting, power_exponent)


def draw_pass(
    scores: torch.Tensor, ratio: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass: (kept dataset indices in random order int64[K], drop probabilities
    float64[N]). Each sample is kept independently with probability ``1 - p_i``."""
    drop = drop_probabilities(scores, ratio)
    keep = torch.rand(drop.shape[0], generator=generator, dtype=torch.float64) >= drop
    kept = torch.nonzero(keep).squeeze(1)
    order = kept[torch.randperm(kept.shape[0], generator=generator)]
    return order, drop
