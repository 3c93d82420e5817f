"""Sampler objects: plans, records, history-mode distribution, exact resume."""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pytest
import torch

from cdfis_desktop.core.config import SamplerConfig
from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.sampling import DrawRecord, HistorySampler, Sampler, make_sampler
from cdfis_desktop.core.sampling.fenwick import FenwickTree

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


@pytest.mark.parametrize("mode", ["presample", "history", "prune"])
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


def _history(n: int, b: int, **kwargs: object) -> HistorySampler:
    config = SamplerConfig(rule="cdf", mode="history", warmup="none", **kwargs)
    sampler = make_sampler(config, n, b, seed=5)
    assert isinstance(sampler, HistorySampler)
    return sampler


def test_refresh_rescores_the_stalest_samples_first() -> None:
    """Scores that the draw never revisits (score 0, floor 0) are rescored by the refresh,
    oldest first, and their new scores bring them back into the draw."""
    n, b = 100, 10
    sampler = _history(n, b, refresh=0.5)
    assert sampler.refresh_count == 5
    truth = torch.ones(n)
    truth[:50] = 0.0  # half the samples look learned: never drawn again with floor 0
    for step in range(10):  # one epoch of observations at steps 0..9 (oldest: 0..9)
        sampler._step = step
        sampler.observe(torch.arange(step * 10, step * 10 + 10), truth[step * 10 : step * 10 + 10])
    sampler.refresh()
    rescored: list[int] = []
    truth[:50] = 2.0  # the model forgot them: their real loss is now high
    for step in range(10, 20):
        indices, record = _step(sampler, step, truth)
        assert set(indices.tolist()).isdisjoint(range(50)) or step > 10
        not_chosen = record.times_chosen == 0
        rescored += record.dataset_index[not_chosen].tolist()
        np.testing.assert_array_equal(
            record.score[not_chosen], truth[record.dataset_index[not_chosen]]
        )
    # the queue holds the 5 x 10 stalest samples: those observed at steps 0..4, i.e. 0..49
    assert set(rescored) <= set(range(50)) and len(rescored) >= 40
    assert torch.all(sampler.latest_scores[rescored] == 2.0)
    assert sampler.probabilities()[:50].sum() > 0.5  # the forgotten samples are drawn again


def test_without_refresh_forgotten_samples_stay_frozen() -> None:
    """The control for the test above: with refresh 0 the zero scores never change."""
    n, b = 100, 10
    sampler = _history(n, b, refresh=0.0)
    truth = torch.ones(n)
    truth[:50] = 0.0
    sampler.observe(torch.arange(n), truth)
    sampler.refresh()
    truth[:50] = 2.0
    for step in range(10, 20):
        _step(sampler, step, truth)
    assert torch.all(sampler.latest_scores[:50] == 0.0)


def test_history_records_the_score_the_next_draw_uses_and_its_age() -> None:
    sampler = _history(50, 5, refresh=0.4)
    scores_of = torch.rand(50, generator=torch.Generator().manual_seed(1)) + 0.1
    for step in range(30):
        indices, record = _step(sampler, step, scores_of * (1 + step))
        latest = sampler.latest_scores[record.dataset_index]
        np.testing.assert_array_equal(record.score, latest.numpy())  # stored == used next
        assert torch.all(sampler.last_seen[record.dataset_index] == step)
    assert int(sampler.last_seen.max()) == 29


def test_incremental_tree_updates_match_a_rebuild() -> None:
    """N large enough that observing a batch takes the O(b log N) update path (b <= N/16):
    after many steps the tree's weights and draws equal those of a fresh rebuild."""
    n, b = 4096, 32
    sampler = _history(n, b, refresh=0.25, floor=0.0)
    gen = torch.Generator().manual_seed(7)
    scores_of = torch.rand(n, generator=gen)
    sampler.observe(torch.arange(n), scores_of)  # a bulk observation: rebuild path
    sampler.refresh()
    tree = sampler._tree
    for step in range(sampler.steps_per_epoch - 1):  # the epoch's refresh would rebuild it
        scores_of = scores_of * 0.99 + 0.05 * torch.rand(n, generator=gen)
        _step(sampler, step, scores_of)
        assert sampler._tree is tree  # updated in place: the incremental path
    rebuilt = sampler._tree_values(sampler.latest_scores).numpy()
    np.testing.assert_array_equal(tree.weights, rebuilt)
    np.testing.assert_allclose(tree.tree, FenwickTree(torch.from_numpy(rebuilt)).tree, rtol=1e-12)
    assert math.isclose(tree.total, float(rebuilt.sum()), rel_tol=1e-12)
    targets = np.random.default_rng(0).random(2000) * rebuilt.sum()
    expected = np.searchsorted(np.cumsum(rebuilt), targets, side="right")
    np.testing.assert_array_equal(tree.find(targets), expected)


@pytest.mark.parametrize(
    ("ratio", "fraction", "loaded", "trained"),
    [(4, 0.25, 64, 16), (2.5, 0.375, 60, 24), (8, 1.0, 512, 64)],
)
def test_presample_trains_a_fraction_of_scored_candidates(
    ratio: float, fraction: float, loaded: int, trained: int
) -> None:
    """Selective back-propagation (r=4, 1/4) and the constant-cost presample (r=2.5, 3/8):
    k = fraction x b rows are drawn from r x k candidates, with frequencies following the
    CDF of the candidates' scores (chi-square at a fixed seed)."""
    config = SamplerConfig(
        rule="cdf", presample_ratio=ratio, train_fraction=fraction, replacement=True
    )
    sampler = make_sampler(config, 10_000, 64, seed=3)
    assert (sampler.trained_count, sampler.candidate_count) == (trained, loaded)
    scores = torch.linspace(0.1, 2.0, loaded)
    counts = np.zeros(loaded)
    steps = 400
    for step in range(steps):
        plan = sampler.plan(step, 0)
        assert plan.candidate_indices.shape == (loaded,)
        selection = sampler.select(plan, scores)
        assert selection.dataset_indices.shape == (trained,)
        counts += np.bincount(selection.positions.numpy(), minlength=loaded)
    expected = steps * trained * (scores / scores.sum()).numpy()
    assert chi_square(counts, expected) < chi_square_critical(df=loaded - 1)


def test_a_state_saved_before_score_ages_still_loads() -> None:
    sampler = _history(40, 4, refresh=0.5)
    scores_of = torch.rand(40, generator=torch.Generator().manual_seed(2))
    for step in range(5):
        _step(sampler, step, scores_of)
    state = copy.deepcopy(sampler.state_dict())
    for key in ("last_seen", "step", "stale_queue", "stale_cursor"):
        del state["history"][key]
    del state["config"]["refresh"]  # the field did not exist yet: its default applies
    old = _history(40, 4)  # refresh 0.25, the default
    old.load_state_dict(state)
    seen = ~torch.isnan(old.latest_scores)
    assert torch.all(old.last_seen[seen] == 0) and torch.all(old.last_seen[~seen] == -1)
    _step(old, 5, scores_of)  # and it keeps training


def test_a_row_chosen_twice_records_its_last_observed_score() -> None:
    """The record keeps the score the history sampler keeps: the last repeat's."""
    sampler = _history(10, 3, refresh=0.0)
    sampler.observe(torch.arange(10), torch.ones(10))
    plan = sampler.plan(0, 0)
    chosen = torch.tensor([3, 5, 3])
    selection = dataclasses.replace(
        plan.prepared,
        dataset_indices=chosen,
        record=DrawRecord.from_tensors(
            torch.tensor([3, 5]), torch.full((2,), math.nan), torch.ones(2) / 2,
            torch.tensor([2, 1]), torch.ones(2),
        ),
    )  # fmt: skip
    observed = torch.tensor([1.0, 2.0, 7.0])
    sampler.observe(chosen, observed)
    record = selection.completed_record(observed)
    np.testing.assert_array_equal(record.score, [7.0, 2.0])
    assert sampler.latest_scores[3] == 7.0
