"""The pure selection function: distributions, weights, degenerate scores, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.sampling import draw, probabilities

from ._stats import chi_square, chi_square_critical


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _frequencies(scores: torch.Tensor, draws: int, **kwargs: object) -> np.ndarray:
    result = draw(scores, draws, "cdf", generator=_gen(1), **kwargs)
    return np.bincount(result.indices.numpy(), minlength=scores.shape[0])


def test_cdf_frequencies_match_p() -> None:
    scores = torch.linspace(0.1, 3.0, 20) ** 2
    n_draws = 200_000
    observed = _frequencies(scores, n_draws)
    p = (scores / scores.sum()).double().numpy()
    stat = chi_square(observed, n_draws * p)
    assert stat < chi_square_critical(df=19)


def test_chi_square_detects_a_wrong_distribution() -> None:
    """The test above can fail: uniform draws are rejected against the score-based p."""
    scores = torch.linspace(0.1, 3.0, 20) ** 2
    n_draws = 200_000
    observed = np.bincount(
        draw(scores, n_draws, "uniform", generator=_gen(1)).indices.numpy(), minlength=20
    )
    p = (scores / scores.sum()).double().numpy()
    assert chi_square(observed, n_draws * p) > chi_square_critical(df=19)


def test_floor_mixes_in_uniform() -> None:
    scores = torch.tensor([0.0, 1.0, 3.0, 0.0])
    p = probabilities(scores, floor=0.2)
    expected = 0.8 * np.array([0, 0.25, 0.75, 0]) + 0.05
    np.testing.assert_allclose(p.numpy(), expected)
    observed = _frequencies(scores, 100_000, floor=0.2)
    assert chi_square(observed, 100_000 * expected) < chi_square_critical(df=3)


@pytest.mark.parametrize(
    ("weights", "inclusion"),
    [
        ([1.0, 2.0, 3.0, 6.0], [1 / 6, 1 / 3, 1 / 2, 1.0]),  # k p_i, exactly
        ([1.0, 1.0, 1.0, 9.0], [1 / 3, 1 / 3, 1 / 3, 1.0]),  # 2 p_4 > 1: certain, rest share
    ],
)
def test_without_replacement_inclusion_probabilities(weights: list[float], inclusion) -> None:
    """k=2 of 4 distinct picks: each candidate is in the batch with probability
    min(1, c p_i), which the draw reports (as a share of the batch) and which the
    observed inclusion frequencies match."""
    exact = np.array(inclusion)
    gen = _gen(3)
    trials = 4_000
    counts = np.zeros(4)
    for _ in range(trials):
        result = draw(torch.tensor(weights), 2, "cdf", replacement=False, generator=gen)
        assert len(set(result.indices.tolist())) == 2
        counts[result.indices.numpy()] += 1
    np.testing.assert_allclose(result.probabilities.numpy() * 2, exact, rtol=1e-12)
    spread = np.sqrt(np.maximum(trials * exact * (1 - exact), 1e-12))
    z = (counts - trials * exact) / spread
    assert np.all(np.abs(z) < 4.0), z


@pytest.mark.parametrize("replacement", [True, False])
@pytest.mark.parametrize("weights", [[1.0, 2.0, 3.0, 6.0], [1.0, 1.0, 1.0, 9.0]])
def test_unbiased_weights_are_unbiased_with_and_without_replacement(
    replacement: bool, weights: list[float]
) -> None:
    """k=2 of 4 (the case the single-pick weights got wrong without replacement: 4.16 for
    a true 4.00): the weighted batch mean of g estimates mean(g) without bias."""
    scores = torch.tensor(weights)
    g = torch.tensor([2.0, 3.0, 5.0, 6.0], dtype=torch.float64)  # mean 4
    gen = _gen(21)
    trials = 8_000
    estimates, single_pick = np.zeros(trials), np.zeros(trials)
    p = (scores / scores.sum()).double()
    for t in range(trials):
        result = draw(
            scores, 2, "cdf", replacement=replacement, weighting="unbiased", generator=gen
        )
        estimates[t] = float((result.weights.double() * g[result.indices]).mean())
        single_pick[t] = float((g[result.indices] / (4 * p[result.indices])).mean())
    stderr = estimates.std() / math.sqrt(trials)
    assert abs(estimates.mean() - 4.0) < 4 * stderr, (estimates.mean(), stderr)
    if not replacement and weights[-1] > 3 * sum(weights[:-1]):  # 2 p_4 > 1: pi_i != 2 p_i
        # the old weights 1 / (N p_i) are measurably biased here
        assert abs(single_pick.mean() - 4.0) > 10 * stderr


def test_topk_is_deterministic_and_differs_from_cdf() -> None:
    scores = torch.rand(100, generator=_gen(5))
    first = draw(scores, 10, "topk").indices
    again = draw(scores, 10, "topk", generator=_gen(9)).indices
    assert torch.equal(first, again)
    assert set(first.tolist()) == set(torch.argsort(scores, descending=True)[:10].tolist())
    cdf = draw(scores, 10, "cdf", generator=_gen(5)).indices
    assert set(cdf.tolist()) != set(first.tolist())
    bottom = draw(scores, 10, "bottomk").indices
    assert set(bottom.tolist()) == set(torch.argsort(scores)[:10].tolist())
    result = draw(scores, 10, "topk", weighting="unbiased")
    assert torch.all(result.weights == 1.0)
    assert math.isclose(float(result.probabilities.sum()), 1.0)


def test_uniform_ignores_scores() -> None:
    a = draw(torch.rand(50, generator=_gen(0)), 30, "uniform", generator=_gen(7))
    b = draw(torch.arange(50.0) ** 4, 30, "uniform", generator=_gen(7))
    assert torch.equal(a.indices, b.indices)
    assert torch.allclose(a.probabilities, torch.full((50,), 1 / 50, dtype=torch.float64))


def test_weights() -> None:
    scores = torch.tensor([1.0, 1.0, 2.0])
    unbiased = draw(scores, 500, "cdf", weighting="unbiased", generator=_gen(0))
    p = unbiased.probabilities[unbiased.indices]
    assert torch.allclose(unbiased.weights.double(), 1.0 / (3 * p), rtol=1e-6)
    power = draw(scores, 500, "cdf", weighting="power", power_exponent=0.5, generator=_gen(0))
    assert torch.allclose(power.weights, unbiased.weights.sqrt())
    plain = draw(scores, 500, "cdf", generator=_gen(0))
    assert torch.all(plain.weights == 1.0)


def test_unbiased_weights_give_full_batch_gradient_in_expectation() -> None:
    """Tiny linear model: the mean over many draws of the weighted mini-batch gradient
    equals the full-batch gradient; the unweighted (paper) estimate does not."""
    gen = torch.Generator().manual_seed(11)
    n, d, k = 40, 3, 8
    x = torch.randn(n, d, generator=gen)
    y = torch.randn(n, generator=gen)
    w = torch.randn(d, generator=gen)
    per_sample_grads = 2 * (x @ w - y)[:, None] * x  # d/dw of (x.w - y)^2, [n, d]
    full = per_sample_grads.mean(0)
    scores = per_sample_grads.norm(dim=1)
    draws = 20_000
    result = draw(scores, k * draws, "cdf", weighting="unbiased", generator=gen)
    weighted = result.weights[:, None] * per_sample_grads[result.indices]
    estimate = weighted.reshape(draws, k, d).mean(1)  # one mini-batch gradient per draw
    mean = estimate.mean(0)
    stderr = estimate.std(0) / math.sqrt(draws)
    assert torch.all((mean - full).abs() < 4 * stderr), (mean, full, stderr)
    biased = per_sample_grads[result.indices].reshape(draws, k, d).mean(1).mean(0)
    assert torch.any((biased - full).abs() > 10 * stderr)


@pytest.mark.parametrize("rule", ["cdf", "uniform", "topk", "bottomk"])
@pytest.mark.parametrize(
    "scores",
    [
        [0.0, 0.0, 0.0, 0.0],
        [float("nan")] * 4,
        [1.0, float("nan"), float("inf"), -2.0],
        [-1.0, -5.0, float("-inf"), 0.0],
        [float("inf"), float("inf"), 1.0, 2.0],
        [3.0],
    ],
)
def test_degenerate_scores_never_crash(rule: str, scores: list[float]) -> None:
    t = torch.tensor(scores)
    k = min(2, len(scores))
    for replacement in (True, False):
        result = draw(t, k, rule, replacement=replacement, weighting="unbiased", generator=_gen())
        assert result.indices.shape == (k,)
        assert torch.all(torch.isfinite(result.probabilities))
        assert math.isclose(float(result.probabilities.sum()), 1.0, rel_tol=1e-9)
        assert torch.all(torch.isfinite(result.weights))


def test_degenerate_rule_values() -> None:
    # all zero -> uniform
    np.testing.assert_allclose(probabilities(torch.zeros(4)).numpy(), 0.25)
    # +inf takes all the mass, shared equally
    p = probabilities(torch.tensor([1.0, math.inf, math.nan, math.inf]))
    np.testing.assert_allclose(p.numpy(), [0, 0.5, 0, 0.5])
    # NaN counts as the mean of the finite scores after negatives become 0
    p = probabilities(torch.tensor([1.0, 3.0, math.nan, -4.0]))
    np.testing.assert_allclose(p.numpy(), np.array([1, 3, 4 / 3, 0]) / (16 / 3))
    # without replacement, zero-probability candidates fill up when too few are positive
    chosen = draw(torch.tensor([0.0, 5.0, 0.0]), 3, "cdf", replacement=False, generator=_gen())
    assert sorted(chosen.indices.tolist()) == [0, 1, 2]
    np.testing.assert_allclose(chosen.probabilities.numpy(), 1 / 3)  # all certain


def test_single_candidate() -> None:
    result = draw(torch.tensor([0.3]), 5, "cdf", weighting="unbiased", generator=_gen())
    assert result.indices.tolist() == [0] * 5
    assert torch.all(result.weights == 1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 5, "rule": "cdf", "replacement": False}, "5 distinct samples from 4"),
        ({"k": 5, "rule": "topk"}, "5 distinct samples from 4"),
        ({"k": 2, "rule": "best"}, "unknown selection rule"),
        ({"k": 2, "rule": "cdf", "weighting": "heavy"}, "unknown weighting"),
        ({"k": -1, "rule": "cdf"}, "negative"),
        ({"k": 2, "rule": "cdf", "floor": 1.5}, "floor"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        draw(torch.ones(4), **kwargs)


def test_empty_candidates_raise() -> None:
    with pytest.raises(ConfigError, match="empty"):
        draw(torch.ones(0), 1, "cdf")
