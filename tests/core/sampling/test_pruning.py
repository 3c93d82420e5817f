"""Epoch-level pruning by the CDF rule (cdf-prune): drop frequencies, unbiased weights,
unscored samples kept, full data in the annealing tail, exact resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cdfis_desktop.core.config import SamplerConfig
from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.sampling import PruneSampler, make_sampler
from cdfis_desktop.core.sampling.presets import preset_config
from cdfis_desktop.core.sampling.pruning import draw_pass, drop_probabilities, keep_weights

from ._stats import chi_square_critical

PASSES = 3000


def _scores(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, generator=torch.Generator().manual_seed(seed)) * 5.0


def test_drop_probability_falls_with_the_cdf_rank() -> None:
    scores = torch.tensor([3.0, 1.0, math.nan, 2.0, 2.0])
    # scored: 1, 2, 2, 3 -> F = 1/4, 3/4, 3/4, 1; p = 0.6 (1 - F); the NaN one is kept
    expected = torch.tensor([0.0, 0.45, 0.0, 0.15, 0.15], dtype=torch.float64)
    torch.testing.assert_close(drop_probabilities(scores, 0.6), expected)
    # ranks only: a monotone change of the scores (an outlier included) changes nothing
    torch.testing.assert_close(drop_probabilities(scores.pow(3) + 100, 0.6), expected)


def _keep_counts(scores: torch.Tensor, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Over PASSES passes: (times each sample was kept, sum of its loss weights when kept)."""
    generator = torch.Generator().manual_seed(1)
    n = scores.shape[0]
    kept = np.zeros(n)
    weight_sum = np.zeros(n)
    for _ in range(PASSES):
        order, drop = draw_pass(scores, ratio, generator)
        weights = keep_weights(drop, "unbiased").numpy()
        kept[order.numpy()] += 1
        weight_sum[order.numpy()] += weights[order.numpy()]
    return kept, weight_sum


def test_prune_frequencies_match_the_drop_probabilities() -> None:
    scores = _scores(40)
    p = drop_probabilities(scores, 0.7).numpy()
    kept, _ = _keep_counts(scores, 0.7)
    dropped = PASSES - kept
    # per sample a binomial(PASSES, p_i) drop count; sum of squared z-scores ~ chi2(n)
    varying = p > 0
    z = (dropped - PASSES * p)[varying] / np.sqrt(PASSES * p * (1 - p))[varying]
    assert float((z**2).sum()) < chi_square_critical(int(varying.sum()))
    assert kept[~varying].min() == PASSES  # the highest score is never dropped
    # the expected share dropped without ties: ratio (n - 1) / (2n)
    assert dropped.sum() / (PASSES * 40) == pytest.approx(0.7 * 39 / 80, abs=0.01)


def test_weighted_keeps_average_one_per_sample() -> None:
    """E[1{kept} / (1 - p_i)] = 1 for every sample: each pass's weighted loss sum is, in
    expectation, the full data's (InfoBatch's rescaling)."""
    scores = _scores(40, seed=2)
    p = drop_probabilities(scores, 0.7).numpy()
    kept, weight_sum = _keep_counts(scores, 0.7)
    varying = p > 0
    # Var[1{kept} w] = (1 - p) w^2 - 1 = p / (1 - p)
    z = (weight_sum / PASSES - 1.0)[varying] / np.sqrt(p / (1 - p) / PASSES)[varying]
    assert float((z**2).sum()) < chi_square_critical(int(varying.sum()))
    # the test has power: without the weights the easiest samples are far below 1
    easiest = np.argsort(scores.numpy())[:5]
    assert (kept[easiest] / PASSES).max() < 0.5


def _prune(n: int, b: int, **changes: object) -> PruneSampler:
    sampler = make_sampler(preset_config("cdf-prune", SamplerConfig(**changes)), n, b, seed=3)
    assert isinstance(sampler, PruneSampler)
    return sampler


def _train(sampler: PruneSampler, step: int, scores_of: torch.Tensor, progress: float | None):
    plan = sampler.plan(step, 0, progress)
    selection = sampler.select(plan)
    sampler.observe(selection.dataset_indices, scores_of[selection.dataset_indices])
    return selection


def test_unscored_samples_are_always_kept() -> None:
    n = 60
    sampler = _prune(n, 5)
    scored = torch.arange(0, n, 2)  # the odd indices never get a score
    sampler.observe(scored, _scores(n)[scored])
    passes = 0
    for step in range(1, 400):
        plan = sampler.plan(step, 0, None)
        sampler.select(plan)
        if sampler._cursor == 5:  # a pass just started
            passes += 1
            order = sampler.pass_indices
            assert bool(torch.isin(torch.arange(1, n, 2), order).all())
            assert order.shape[0] < n  # scored samples were dropped
            drop = sampler.drop_probabilities
            assert bool((drop[1::2] == 0).all()) and bool((drop[0::2] > 0).any())
    assert passes > 10


def test_full_data_in_the_annealing_tail() -> None:
    n, b, steps = 80, 8, 200
    sampler = _prune(n, b)
    scores_of = _scores(n)
    pruned_weights = False
    for step in range(1, steps + 1):
        progress = (step - 1) / steps
        selection = _train(sampler, step, scores_of, progress)
        if progress < 0.875:
            pruned_weights |= bool((selection.weights > 1).any())
            continue
        # the tail: a full pass, cut in even when a pruned pass was under way
        assert sampler.pass_indices.shape[0] == n
        assert bool((sampler.drop_probabilities == 0).all())
        assert bool((selection.weights == 1).all())
        np.testing.assert_allclose(selection.record.probability, 1.0 / n, rtol=1e-6)
    assert pruned_weights


def test_record_probability_is_the_share_of_one_pick_and_weight_encodes_p() -> None:
    n, b = 50, 5
    sampler = _prune(n, b)
    scores_of = _scores(n)
    for step in range(1, 40):
        selection = _train(sampler, step, scores_of, None)
    drop = sampler.drop_probabilities
    chosen = selection.dataset_indices
    record = selection.record
    keep = 1.0 - drop
    np.testing.assert_allclose(record.probability, (keep[chosen] / keep.sum()).numpy(), rtol=1e-6)
    np.testing.assert_allclose(1.0 - 1.0 / record.weight, drop[chosen].numpy(), atol=1e-6)
    assert (record.times_chosen == 1).all()


def test_prune_mode_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="prune ratio"):
        SamplerConfig(rule="cdf", mode="prune", prune_ratio=1.0).validate()
    with pytest.raises(ConfigError, match="prune tail"):
        SamplerConfig(rule="cdf", mode="prune", prune_tail=1.5).validate()
    with pytest.raises(ConfigError, match="prune mode drops samples by the CDF rule"):
        SamplerConfig(rule="topk", mode="prune").validate()
    with pytest.raises(ConfigError, match="score scale below 1 needs presample"):
        SamplerConfig(rule="cdf", mode="history", score_scale=0.5).validate()
    with pytest.raises(ConfigError, match="score scale must be"):
        SamplerConfig(rule="cdf", score_scale=0.0).validate()
