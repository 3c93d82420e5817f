"""Sampler objects: plans, records, history-mode distribution, exact resume."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from cdfis_desktop.core.config import SamplerConfig
from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.sampling import HistorySampler, Sampler, make_sampler

from ._stats import chi_square, chi_square_critical


def _step(sampler: Sampler, step: int, scores_of: torch.Tensor) -> tuple[torch.Tensor, object]:
    """One engine step with fixed per-sample scores; returns (trained indices, record)."""
    plan = sampler.plan(step, step // sampler.steps_per_epoch)
    scores = scores_of[plan.candidate_indices[plan.scored_positions]] if plan.needs_scores else None
    selection = sampler.select(plan, scores)
    observed = scores_of[selection.dataset_indices]
    sampler.observe(selection.dataset_indices, observed)
    sampler.update_warmup(step=step + 1, epoch=(step + 1) // sampler.steps_per_epoch)
    return selection.dataset_indices, selection.completed_record(observed)


@pytest.mark.parametrize("mode", ["presample", "history"])
@pytest.mark.parametrize("replacement", [True, False])
def test_state_dict_round_trip_reproduces_next_draws(mode: str, replacement: bool) -> None:
    config = SamplerConfig(
        rule="cdf",
        mode=mode,
        presample_ratio=4,
        floor=0.1,
        warmup="steps:3",
        weighting="unbiased",
        replacement=replacement,
    )
    scores_of = torch.rand(200, generator=torch.Generator().manual_seed(0)) + 0.01
    sampler = make_sampler(config, 200, 16, seed=4)
    for step in range(6):
        _step(sampler, step, scores_of)
    saved = copy.deepcopy(sampler.state_dict())
    expected = [_step(sampler, step, scores_of) for step in range(6, 30)]
    resumed = make_sampler(config, 200, 16, seed=99)
    resumed.load_state_dict(saved)
    assert resumed.is_active and resumed.switch_step == 3
    for step, (indices, record) in zip(range(6, 30), expected, strict=True):
        got_indices, got_record = _step(resumed, step, scores_of)
        assert torch.equal(got_indices, indices)
        np.testing.assert_array_equal(got_record.probability, record.probability)
        np.testing.assert_array_equal(got_record.weight, record.weight)


def test_load_state_for_another_setup_is_refused() -> None:
    config = SamplerConfig(rule="cdf", mode="history")
    state = make_sampler(config, 100, 10, 0).state_dict()
    with pytest.raises(ConfigError, match="dataset_size"):
        make_sampler(config, 101, 10, 0).load_state_dict(state)
    with pytest.raises(ConfigError, match="config"):
        make_sampler(
            SamplerConfig(rule="cdf", mode="history", floor=0.5), 100, 10, 0
        ).load_state_dict(state)


def test_history_draw_frequencies_follow_scores_with_floor() -> None:
    n, b, floor = 50, 20, 0.3
    config = SamplerConfig(rule="cdf", mode="history", floor=floor, warmup="none", refresh=0)
    sampler = make_sampler(config, n, b, seed=1)
    assert isinstance(sampler, HistorySampler)
    scores = torch.linspace(0.0, 2.0, n)
    sampler.observe(torch.arange(n), scores)
    expected_p = (1 - floor) * (scores / scores.sum()).double() + floor / n
    torch.testing.assert_close(sampler.probabilities(), expected_p)
    counts = np.zeros(n)
    steps = 1000
    for step in range(steps):
        selection = sampler.select(sampler.plan(step, 0))
        counts += np.bincount(selection.dataset_indices.numpy(), minlength=n)
        if step == 0:
            record = selection.record
            np.testing.assert_allclose(
                record.probability, expected_p[record.dataset_index].numpy(), rtol=1e-6
            )
    stat = chi_square(counts, steps * b * expected_p.numpy())
    assert stat < chi_square_critical(df=n - 1)
    assert counts[0] > 0  # zero score, kept alive by the floor


def test_history_unseen_samples_count_as_mean_and_updates_move_mass() -> None:
    config = SamplerConfig(rule="cdf", mode="history", warmup="none", refresh=0)
    sampler = make_sampler(config, 4, 2, seed=0)
    sampler.observe(torch.tensor([0, 1]), torch.tensor([1.0, 3.0]))
    sampler.refresh()  # as at an epoch boundary
    torch.testing.assert_close(
        sampler.probabilities(), torch.tensor([1, 3, 2, 2], dtype=torch.float64) / 8
    )
    sampler.observe(torch.tensor([1, 1, 3]), torch.tensor([9.0, 0.0, math.inf]))
    p = sampler.probabilities()
    torch.testing.assert_close(p, torch.tensor([0, 0, 0, 1.0], dtype=torch.float64))
    selection = sampler.select(sampler.plan(0, 0))
    assert selection.dataset_indices.tolist() == [3, 3]
    sampler.observe(torch.tensor([3]), torch.tensor([float("nan")]))
    assert sampler.latest_scores[1] == 0.0  # last repeat won
    torch.testing.assert_close(
        sampler.probabilities().sum(), torch.tensor(1.0, dtype=torch.float64)
    )


def test_history_without_replacement_and_topk() -> None:
    n = 30
    scores = torch.zeros(n)
    scores[:3] = 10.0  # few heavy samples force rejections
    for rule in ("cdf", "topk", "bottomk"):
        config = SamplerConfig(
            rule=rule, mode="history", replacement=False, warmup="none", refresh=0
        )
        sampler = make_sampler(config, n, 8, seed=2)
        sampler.observe(torch.arange(n), scores)
        chosen = sampler.select(sampler.plan(0, 0)).dataset_indices
        assert len(set(chosen.tolist())) == 8
        if rule != "bottomk":
            assert {0, 1, 2} <= set(chosen.tolist())
        else:
            assert not {0, 1, 2} & set(chosen.tolist())


def test_presample_plan_and_record() -> None:
    config = SamplerConfig(rule="cdf", mode="presample", presample_ratio=4, weighting="unbiased")
    sampler = make_sampler(config, 1000, 8, seed=0)
    plan = sampler.plan(0, 0)
    assert plan.needs_scores and plan.candidate_indices.shape == (32,)
    assert len(set(plan.candidate_indices.tolist())) == 32
    scores = torch.rand(32, generator=torch.Generator().manual_seed(3))
    with pytest.raises(ValueError, match="one score per scored position"):
        sampler.select(plan)
    selection = sampler.select(plan, scores)
    record = selection.record
    assert len(record) == 32 and int(record.times_chosen.sum()) == 8
    np.testing.assert_array_equal(record.dataset_index, plan.candidate_indices.numpy())
    np.testing.assert_allclose(record.score, scores.numpy())
    assert math.isclose(float(record.probability.sum()), 1.0, rel_tol=1e-5)
    chosen = record.times_chosen > 0
    assert np.all(record.weight[~chosen] == 0) and np.all(record.weight[chosen] > 0)
    torch.testing.assert_close(
        selection.dataset_indices, plan.candidate_indices[selection.positions]
    )
    # the presample size never exceeds the dataset
    small = make_sampler(config, 20, 8, seed=0)
    assert small.plan(0, 0).candidate_indices.shape == (20,)


@pytest.mark.parametrize("mode", ["presample", "history"])
def test_uniform_phase_records_chosen_with_observed_scores(mode: str) -> None:
    config = SamplerConfig(rule="cdf", mode=mode, warmup="steps:100")
    sampler = make_sampler(config, 40, 10, seed=0)
    seen = []
    for step in range(4):  # one epoch: every sample once
        plan = sampler.plan(step, 0)
        assert not plan.needs_scores
        selection = sampler.select(plan)
        assert np.all(np.isnan(selection.record.score))
        observed = selection.dataset_indices.float() / 10
        record = selection.completed_record(observed)
        np.testing.assert_allclose(record.score, record.dataset_index / 10)
        np.testing.assert_array_equal(record.times_chosen, 1)
        seen += record.dataset_index.tolist()
    assert sorted(seen) == list(range(40))


def test_batch_larger_than_dataset_is_refused() -> None:
    with pytest.raises(ConfigError, match="batch size 64"):
        make_sampler(SamplerConfig(rule="cdf"), 10, 64, 0)
    with pytest.raises(ConfigError, match="empty"):
        make_sampler(SamplerConfig(rule="cdf"), 0, 1, 0)
