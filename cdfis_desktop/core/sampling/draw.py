"""The pure selection function :func:`draw` and the rule for degenerate scores.

Degenerate-score rule (applied by :func:`importance_weights`, used by every rule):

1. If any score is ``+inf``, all probability mass goes, in equal shares, to the ``+inf``
   entries (the limit of letting those scores grow without bound).
2. Otherwise ``NaN`` means "unknown" and counts as the mean of the finite scores after
   step 3 (1.0 when no score is finite), so it is neither favoured nor ignored.
3. Negative scores and ``-inf`` count as 0 (importance cannot be negative).
4. If the resulting scores sum to 0 (all zero, say), every candidate gets the same share.

The floor then mixes in the uniform distribution: ``p = (1 - floor) * s / sum(s) + floor / N``.
Top-k and bottom-k rank the scores with NaN replaced as in step 2 (``+inf`` ranks highest,
negative scores keep their order), ties broken by the lower index.

Without replacement, k distinct picks are drawn by systematic sampling through the CDF
(:func:`inclusion_probabilities`, :func:`sample_systematic`): each candidate's chance of
being in the batch is known exactly, so the weights stay unbiased (Horvitz-Thompson).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cdfis_desktop.core.config import WEIGHTINGS
from cdfis_desktop.core.errors import ConfigError

DRAW_RULES = ("cdf", "topk", "bottomk", "uniform")


@dataclass(frozen=True)
class Draw:
    """Result of :func:`draw`, on the scores' device.

    indices int64[k]: chosen positions into the scores (in draw order). probabilities
    float64[N]: each candidate's expected share of the batch, ``E[times chosen] / k``,
    summing to 1: p_i of one pick with replacement, the inclusion probability / k without
    (for top-k/bottom-k: 1/k on the chosen, 0 elsewhere). weights float32[k]: loss weight
    of each chosen index.
    """

    indices: torch.Tensor
    probabilities: torch.Tensor
    weights: torch.Tensor


def importance_weights(scores: torch.Tensor) -> torch.Tensor:
    """Scores ``float[N]`` -> finite non-negative importances ``float64[N]`` (rules 1-3)."""
    s = scores.detach().to(torch.float64)
    infinite = torch.isposinf(s)
    if bool(infinite.any()):
        return infinite.to(torch.float64)
    finite = torch.isfinite(s)
    s = torch.where(finite, s.clamp_min(0.0), s)
    s = torch.where(torch.isneginf(s), torch.zeros_like(s), s)
    unknown = torch.isnan(s)
    if bool(unknown.any()):
        s = torch.where(unknown, _mean_or_one(s[finite]), s)
    return s


def probabilities(scores: torch.Tensor, floor: float = 0.0) -> torch.Tensor:
    """p_i ``float64[N]`` of one CDF pick: degenerate-score rule, then the floor."""
    _check_floor(floor)
    s = importance_weights(scores)
    n = s.shape[0]
    total = s.sum()
    if not bool(total > 0):
        return torch.full_like(s, 1.0 / n)
    return (1.0 - floor) * (s / total) + floor / n


def draw(
    scores: torch.Tensor,
    k: int,
    rule: str,
    *,
    replacement: bool = True,
    floor: float = 0.0,
    weighting: str = "none",
    generator: torch.Generator | None = None,
    power_exponent: float = 0.5,
) -> Draw:
    """Choose k of the N candidates whose scores are given.

    scores: float[N] on any device (``generator`` must live on the same device).
    rule: ``cdf`` (inverse-transform sampling through the normalised cumulative sum of
    the scores, the paper's method), ``topk`` / ``bottomk`` (the k largest / smallest,
    deterministic, always distinct), ``uniform`` (p_i = 1/N, the same machinery as cdf).
    replacement: for ``cdf``/``uniform``; without replacement the k distinct picks are
    drawn by systematic sampling through the CDF (see :func:`inclusion_probabilities`):
    candidate i is in the batch with probability pi_i = min(1, c p_i), exactly. floor:
    share of the uniform distribution mixed into p (``cdf`` only; ``uniform`` already is
    uniform). weighting: ``none`` (w = 1, the paper), ``unbiased`` (w_i = k / (N m_i) with
    m_i = E[times i is chosen]: k p_i with replacement, pi_i without; Horvitz-Thompson, so
    the weighted mean loss is unbiased either way), ``power`` (that weight **
    power_exponent). ``topk``/``bottomk`` always get w = 1 (there is no sampling
    distribution to correct for).

    Raises :class:`ConfigError` for an unknown rule or weighting, k < 0, no candidates,
    or k > N where distinct picks are needed (top-k, bottom-k, no replacement).
    """
    if rule not in DRAW_RULES:
        raise ConfigError(
            f"unknown selection rule {rule!r}; choose one of: {', '.join(DRAW_RULES)}"
        )
    if weighting not in WEIGHTINGS:
        raise ConfigError(
            f"unknown weighting {weighting!r}; choose one of: {', '.join(WEIGHTINGS)}"
        )
    if scores.dim() != 1:
        raise ValueError(f"scores must be one-dimensional, got shape {tuple(scores.shape)}")
    n = scores.shape[0]
    if n == 0:
        raise ConfigError("cannot draw from an empty set of candidates")
    if k < 0:
        raise ConfigError(f"cannot draw a negative number of samples (k={k})")
    distinct = rule in ("topk", "bottomk") or not replacement
    if distinct and k > n:
        raise ConfigError(
            f"cannot choose {k} distinct samples from {n} candidates with rule {rule!r}"
            f"{'' if replacement else ' without replacement'}; use a batch size of at most "
            f"{n}, more candidates, or drawing with replacement"
        )
    if rule in ("topk", "bottomk"):
        indices = rank_indices(scores, k, largest=rule == "topk")
        p = torch.zeros(n, dtype=torch.float64, device=scores.device)
        if k:
            p[indices] = 1.0 / k
        weights = torch.ones(k, dtype=torch.float32, device=scores.device)
        return Draw(indices, p, weights)
    if rule == "uniform":
        p = torch.full((n,), 1.0 / n, dtype=torch.float64, device=scores.device)
    else:
        p = probabilities(scores, floor)
    if replacement:
        indices = sample_with_replacement(p, k, generator)
        expected = k * p
    else:
        expected = inclusion_probabilities(p, k)
        indices = sample_systematic(expected, generator)
    weights = pick_weights(expected[indices], n, k, weighting, power_exponent)
    return Draw(indices, expected / k if k else p, weights)


def rank_indices(scores: torch.Tensor, k: int, *, largest: bool) -> torch.Tensor:
    """Positions of the k largest (or smallest) scores, NaN counted as the finite mean."""
    s = scores.detach().to(torch.float64)
    unknown = torch.isnan(s)
    if bool(unknown.any()):
        finite = torch.isfinite(s)
        s = torch.where(unknown, _mean_or_one(s[finite].clamp_min(0.0)), s)
    order = torch.sort(s, descending=largest, stable=True).indices
    return order[:k]


def sample_with_replacement(
    p: torch.Tensor, k: int, generator: torch.Generator | None
) -> torch.Tensor:
    """k i.i.d. picks from p ``float64[N]`` by inverse-transform sampling of its CDF."""
    cdf = torch.cumsum(p, 0)
    u = torch.rand(k, generator=generator, dtype=torch.float64, device=p.device) * cdf[-1]
    return torch.searchsorted(cdf, u, right=True).clamp_max(p.shape[0] - 1)


def inclusion_probabilities(p: torch.Tensor, k: int) -> torch.Tensor:
    """Inclusion probabilities pi ``float64[N]`` of k distinct picks (k <= N) from p.

    pi_i = min(1, c * p_i) with c chosen so that sum(pi) = k: candidates whose k * p_i
    would exceed 1 are certain (pi = 1) and the rest share the remaining picks in
    proportion to p (iterated until no share exceeds 1). When fewer than k candidates
    have p > 0, those are all certain and the remaining picks are shared equally by the
    p = 0 candidates.
    """
    n = p.shape[0]
    pi = torch.zeros_like(p)
    certain = torch.zeros(n, dtype=torch.bool, device=p.device)
    positive = p > 0
    if int(positive.sum()) <= k:
        pi[positive] = 1.0
        zeros = ~positive
        if bool(zeros.any()):
            pi[zeros] = (k - int(positive.sum())) / int(zeros.sum())
        return pi
    while True:
        left = k - int(certain.sum())
        rest = p.masked_fill(certain, 0.0)
        share = left * rest / rest.sum()
        over = (share >= 1.0) & ~certain
        if not bool(over.any()):
            return torch.where(certain, 1.0, share)
        certain |= over


def sample_systematic(pi: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """round(sum(pi)) distinct picks with inclusion probabilities pi ``float64[N]`` (each
    in [0, 1]): systematic sampling (Madow 1949) through the CDF of pi, in a random order
    of the candidates, with one uniform offset: picks are the candidates whose CDF
    interval holds u, u + 1, u + 2, ... Each interval is at most 1 long, so it holds at
    most one point: the picks are distinct and P(i is picked) = pi_i."""
    k = round(float(pi.sum()))
    order = torch.randperm(pi.shape[0], generator=generator, device=pi.device)
    cdf = torch.cumsum(pi[order], 0)
    u = torch.rand(1, generator=generator, dtype=torch.float64, device=pi.device)
    points = u + torch.arange(k, dtype=torch.float64, device=pi.device)
    where = torch.searchsorted(cdf, points, right=True).clamp_max(pi.shape[0] - 1)
    return order[where]


def pick_weights(
    expected_chosen: torch.Tensor, n: int, k: int, weighting: str, power_exponent: float = 0.5
) -> torch.Tensor:
    """Loss weights ``float32[k]`` of k picks from N candidates; ``expected_chosen``
    float64[k]: each pick's E[times chosen] (k p_i with replacement, pi_i without).
    ``unbiased``: w = k / (N * expected) (Horvitz-Thompson); ``power``: that to the
    power_exponent; ``none``: 1."""
    if weighting == "none":
        return torch.ones_like(expected_chosen, dtype=torch.float32)
    w = k / (n * expected_chosen.clamp_min(1e-300))
    if weighting == "power":
        w = w**power_exponent
    return w.to(torch.float32)


def _mean_or_one(values: torch.Tensor) -> torch.Tensor:
    if values.numel() == 0:
        return torch.tensor(1.0, dtype=torch.float64, device=values.device)
    return values.mean()


def _check_floor(floor: float) -> None:
    if not 0.0 <= floor <= 1.0:
        raise ConfigError(f"floor must be between 0 and 1 (got {floor})")
