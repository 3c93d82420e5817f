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
    float64[N]: p_i of one pick for every candidate, summing to 1 (for top-k/bottom-k:
    1/k on the chosen, 0 elsewhere). weights float32[k]: loss weight of each chosen index.
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
    replacement: for ``cdf``/``uniform``; without replacement the picks are successive
    draws through the CDF of the candidates not yet chosen (implemented with exponential
    keys, the same distribution); when fewer than k candidates have p > 0 the rest are
    filled uniformly from the p = 0 candidates. floor: share of the uniform distribution
    mixed into p (``cdf`` only; ``uniform`` already is uniform).
    weighting: ``none`` (w = 1, the paper), ``unbiased`` (w = 1 / (N p_i)), ``power``
    (w = (1 / (N p_i)) ** power_exponent). ``topk``/``bottomk`` always get w = 1 (there is
    no sampling distribution to correct for); picks with p_i = 0 get w = 1.

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
    else:
        indices = sample_without_replacement(p, k, generator)
    weights = pick_weights(p[indices], n, weighting, power_exponent)
    return Draw(indices, p, weights)


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


def sample_without_replacement(
    p: torch.Tensor, k: int, generator: torch.Generator | None
) -> torch.Tensor:
    """k distinct picks from p ``float64[N]`` by successive sampling (exponential keys)."""
    u = torch.rand(p.shape[0], generator=generator, dtype=torch.float64, device=p.device)
    positive = p > 0
    keys = torch.where(positive, torch.log(u.clamp_min(1e-300)) / p.clamp_min(1e-300), -torch.inf)
    n_positive = int(positive.sum())
    if n_positive >= k:
        return torch.topk(keys, k).indices
    chosen = torch.topk(keys, n_positive).indices
    zeros = torch.nonzero(~positive).squeeze(1)
    fill = torch.randperm(zeros.shape[0], generator=generator, device=p.device)[: k - n_positive]
    return torch.cat([chosen, zeros[fill]])


def pick_weights(
    p_chosen: torch.Tensor, n: int, weighting: str, power_exponent: float = 0.5
) -> torch.Tensor:
    """Loss weights ``float32[k]`` for picks with probabilities p_chosen from N candidates."""
    if weighting == "none":
        return torch.ones_like(p_chosen, dtype=torch.float32)
    w = torch.where(p_chosen > 0, 1.0 / (n * p_chosen.clamp_min(1e-300)), 1.0)
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
