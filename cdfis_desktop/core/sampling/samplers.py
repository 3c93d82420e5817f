"""Sampler objects that a training engine drives with a plain step loop.

See the package docstring for the loop. Samplers draw on the CPU with their own
``torch.Generator`` (scores may come from any device; they are copied to the CPU, which
is cheap for B scores). Not thread-safe: the training thread owns a sampler.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from typing import Any

import torch

from cdfis_desktop.core.config import SamplerConfig
from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.sampling.draw import (
    draw,
    inclusion_probabilities,
    pick_weights,
    probabilities,
    rank_indices,
    sample_systematic,
)
from cdfis_desktop.core.sampling.fenwick import FenwickTree, last_occurrence
from cdfis_desktop.core.sampling.pruning import draw_pass, keep_weights
from cdfis_desktop.core.sampling.records import BatchPlan, DrawRecord, Selection
from cdfis_desktop.core.sampling.warmup import WarmupRule, WarmupState

STATE_FORMAT = 1
_BULK_FRACTION = 16  # observing more than N / 16 samples at once rebuilds the tree


class EpochWalker:
    """Uniform batches without replacement: a fresh random permutation of the dataset
    each epoch, walked ``n`` indices at a time; a permutation with fewer than ``n`` left
    is dropped (like a shuffled DataLoader with ``drop_last``). n <= dataset size."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self._generator = torch.Generator().manual_seed(seed)
        self._permutation_state: torch.Tensor | None = None
        self._permutation: torch.Tensor | None = None
        self._cursor = 0

    def take(self, n: int) -> torch.Tensor:
        """The next ``n`` dataset indices, int64[n]."""
        if self._permutation is None or self._cursor + n > self.size:
            self._permutation_state = self._generator.get_state()
            self._permutation = torch.randperm(self.size, generator=self._generator)
            self._cursor = 0
        batch = self._permutation[self._cursor : self._cursor + n].clone()
        self._cursor += n
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self._generator.get_state(),
            "permutation_state": self._permutation_state,
            "cursor": self._cursor,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._permutation_state = state["permutation_state"]
        self._permutation = None
        if self._permutation_state is not None:
            self._generator.set_state(self._permutation_state)
            self._permutation = torch.randperm(self.size, generator=self._generator)
        self._generator.set_state(state["generator"])
        self._cursor = int(state["cursor"])


class Sampler(ABC):
    """Common part of :class:`PresampleSampler` and :class:`HistorySampler`.

    dataset_size N: training samples; batch_size b: rows trained per step (1 <= b <= N)
    in the uniform phase and history mode (presample mode trains :attr:`trained_count`).
    The ``uniform`` rule never switches on: it trains on epoch-shuffled batches through
    the same plan/select/observe calls and records. Raises :class:`ConfigError` for an
    invalid configuration or sizes.
    """

    mode = ""

    def __init__(
        self, config: SamplerConfig, dataset_size: int, batch_size: int, seed: int
    ) -> None:
        config.validate()
        if config.mode != self.mode:
            raise ConfigError(f"sampler mode {config.mode!r} given to the {self.mode} sampler")
        if dataset_size < 1:
            raise ConfigError("the training set is empty: there is nothing to sample from")
        if not 1 <= batch_size <= dataset_size:
            raise ConfigError(
                f"batch size {batch_size} must be between 1 and the training set size "
                f"{dataset_size}; use a smaller batch or more training patches"
            )
        self.config = config
        self.dataset_size = dataset_size
        self.batch_size = batch_size
        self.seed = seed
        self._walker = EpochWalker(dataset_size, 2 * seed)
        self._generator = torch.Generator().manual_seed(2 * seed + 1)
        self._warmup = WarmupState(WarmupRule.parse(config.warmup))

    @property
    def steps_per_epoch(self) -> int:
        """ceil(N / b): what the samplers count as one epoch."""
        return math.ceil(self.dataset_size / self.batch_size)

    @property
    def is_active(self) -> bool:
        """True once importance sampling is on (never for the uniform rule)."""
        return self.config.rule != "uniform" and self._warmup.active

    @property
    def switch_step(self) -> int | None:
        """The step at which importance sampling switched on (None: not yet / uniform rule)."""
        return self._warmup.switch_step if self.is_active else None

    def update_warmup(self, *, step: int, epoch: int, val_loss: float | None = None) -> bool:
        """Check the warm-up rule; True only at the call that switches sampling on."""
        if self.config.rule == "uniform":
            return False
        switched = self._warmup.update(step=step, epoch=epoch, val_loss=val_loss)
        if switched:
            self._on_switch()
        return switched

    def plan(self, step: int, epoch: int, progress: float | None = None) -> BatchPlan:
        """What to load (and score) for this step (see :class:`BatchPlan`). ``progress``:
        the share of the run done before this step (0..1; None: the run has no known end),
        which prune mode reads to return to the full data at the end."""
        if not self.is_active:
            return self._uniform_plan(step)
        return self._active_plan(step)

    def select(self, plan: BatchPlan, scores: torch.Tensor | None = None) -> Selection:
        """The rows to train on. scores float[m] (any device), one per
        ``plan.scored_positions``, when ``plan.needs_scores``."""
        if not plan.needs_scores:
            if plan.prepared is None:
                raise ValueError("this plan has no prepared selection")
            return plan.prepared
        expected = plan.scored_positions.shape
        if scores is None or scores.shape != expected:
            raise ValueError(f"this plan needs one score per scored position ({expected[0]})")
        return self._select_scored(plan, scores.detach().to("cpu"))

    def observe(self, dataset_indices: torch.Tensor, scores: torch.Tensor) -> None:
        """Per-sample scores (the sampler's metric) of rows just trained on or scored.

        dataset_indices int64[m], scores float[m] (any device). Feeds the variance warm-up
        rule and, in history mode, each sample's latest score.
        """
        self._warmup.observe(scores)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue with exactly the same draws (RNG states included)."""
        return {
            "format": STATE_FORMAT,
            "mode": self.mode,
            "config": dataclasses.asdict(self.config),
            "dataset_size": self.dataset_size,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "walker": self._walker.state_dict(),
            "generator": self._generator.get_state(),
            "warmup": self._warmup.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; raises :class:`ConfigError` if it is for another
        setup. A state saved before a configuration field existed counts that field at
        its default (the stored run configuration does the same)."""
        saved = dict(state)
        saved["config"] = dataclasses.asdict(SamplerConfig.from_dict(state.get("config") or {}))
        expected = {
            "format": STATE_FORMAT,
            "mode": self.mode,
            "config": dataclasses.asdict(self.config),
            "dataset_size": self.dataset_size,
            "batch_size": self.batch_size,
        }
        for key, value in expected.items():
            if saved.get(key) != value:
                raise ConfigError(
                    f"the saved sampler state has {key} = {saved.get(key)!r} but this run has "
                    f"{value!r}; resume with the run's original settings and training set"
                )
        self.seed = int(state["seed"])
        self._walker.load_state_dict(state["walker"])
        self._generator.set_state(state["generator"])
        self._warmup.load_state_dict(state["warmup"])

    def _uniform_plan(self, step: int) -> BatchPlan:
        b = self.batch_size
        chosen = self._walker.take(b)
        record = DrawRecord.from_tensors(
            chosen,
            torch.full((b,), math.nan),
            torch.full((b,), 1.0 / self.dataset_size),
            torch.ones(b, dtype=torch.int32),
            torch.ones(b),
        )
        selection = Selection(torch.arange(b), chosen, torch.ones(b), record)
        return BatchPlan(step, chosen, needs_scores=False, prepared=selection)

    def _on_switch(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """Hook run once when importance sampling switches on."""

    @abstractmethod
    def _active_plan(self, step: int) -> BatchPlan:
        """The plan of ``step`` once importance sampling is on (each mode defines it)."""

    def _select_scored(self, plan: BatchPlan, scores: torch.Tensor) -> Selection:
        raise ValueError(f"the {self.mode} sampler never asks for candidate scores")


class PresampleSampler(Sampler):
    """Score B = min(round(r * k), N) fresh uniform candidates, train k of them.

    k = :attr:`trained_count` = max(1, round(train_fraction * b)): b for the paper (r = 8),
    fewer for the cheaper variants (selective back-propagation: B = b loaded, k < b
    trained). Candidates come from the epoch walker (distinct within a step). The record
    covers all B candidates: chosen ones with times_chosen >= 1, the others with 0.
    """

    mode = "presample"

    @property
    def trained_count(self) -> int:
        """Rows trained per step once importance sampling is on: round(train_fraction * b)."""
        return max(1, round(self.config.train_fraction * self.batch_size))

    @property
    def candidate_count(self) -> int:
        k = self.trained_count
        return min(max(round(self.config.presample_ratio * k), k), self.dataset_size)

    def _active_plan(self, step: int) -> BatchPlan:
        return BatchPlan(step, self._walker.take(self.candidate_count), needs_scores=True)

    def _select_scored(self, plan: BatchPlan, scores: torch.Tensor) -> Selection:
        cfg = self.config
        result = draw(
            scores,
            self.trained_count,
            cfg.rule,
            replacement=cfg.replacement,
            floor=cfg.floor,
            weighting=cfg.weighting,
            generator=self._generator,
            power_exponent=cfg.power_exponent,
        )
        n = scores.shape[0]
        times = torch.bincount(result.indices, minlength=n)
        weight = torch.zeros(n)
        weight[result.indices] = result.weights
        record = DrawRecord.from_tensors(
            plan.candidate_indices, scores, result.probabilities, times, weight
        )
        chosen = plan.candidate_indices[result.indices]
        return Selection(result.indices, chosen, result.weights, record)


class HistorySampler(Sampler):
    """Our mode: draw from the dataset-wide CDF of each sample's latest observed score.

    Scores come from :meth:`observe`: the training step's own forward pass gives those of
    the trained rows, and each step also rescores the ``ceil(refresh * b)`` stalest samples
    (the refresh, see :meth:`refresh`), which the engine scores on request (the plan's
    ``score_positions``). Unseen samples (and samples whose latest score was NaN) count as
    the mean of the known scores, fixed when the sampler switches on and refreshed once
    per epoch; negative scores count as 0; ``+inf`` scores take all the non-floor mass
    (the degenerate-score rule of :mod:`.draw`). A Fenwick tree keeps draws and updates at
    O(b log N) with replacement; without replacement, and for ``topk``/``bottomk``, a
    step costs O(N). The record holds the chosen samples (with the score observed at this
    step, the one the next draw uses) and the rescored ones (times_chosen 0): the
    candidate set is the whole dataset.
    """

    mode = "history"

    def __init__(
        self, config: SamplerConfig, dataset_size: int, batch_size: int, seed: int
    ) -> None:
        super().__init__(config, dataset_size, batch_size, seed)
        self._scores = torch.full((dataset_size,), math.nan, dtype=torch.float32)
        self._last_seen = torch.full((dataset_size,), -1, dtype=torch.int64)
        self._step = 0
        self._stale_queue = torch.empty(0, dtype=torch.int64)
        self._stale_cursor = 0
        self._unknown_value = 1.0
        self._infinite_count = 0
        self._tree: FenwickTree | None = None
        self._draws_since_rebuild = 0
        if self.is_active:
            self.refresh()

    @property
    def latest_scores(self) -> torch.Tensor:
        """A copy of each sample's latest observed score, float32[N] (NaN: never seen)."""
        return self._scores.clone()

    @property
    def last_seen(self) -> torch.Tensor:
        """A copy of the step at which each sample's score was observed, int64[N] (-1: never)."""
        return self._last_seen.clone()

    @property
    def refresh_count(self) -> int:
        """Stale samples rescored per step once importance sampling is on: ceil(refresh * b)."""
        return min(math.ceil(self.config.refresh * self.batch_size), self.dataset_size)

    def plan(self, step: int, epoch: int, progress: float | None = None) -> BatchPlan:
        self._step = step
        return super().plan(step, epoch, progress)

    def observe(self, dataset_indices: torch.Tensor, scores: torch.Tensor) -> None:
        super().observe(dataset_indices, scores)
        unique, new = _latest_scores(dataset_indices, scores)
        self._infinite_count += int(torch.isposinf(new).sum()) - int(
            torch.isposinf(self._scores[unique]).sum()
        )
        self._scores[unique] = new
        self._last_seen[unique] = self._step
        if self._tree is None:
            return
        if unique.shape[0] > self.dataset_size // _BULK_FRACTION:  # cheaper to rebuild
            self._tree = FenwickTree(self._tree_values(self._scores))
        else:
            self._tree.update(unique.numpy(), self._tree_values(new).numpy())

    def probabilities(self) -> torch.Tensor:
        """p_i of one pick over the whole dataset now, float64[N] (O(N); for analysis)."""
        if self._tree is None:
            return torch.full((self.dataset_size,), 1.0 / self.dataset_size, dtype=torch.float64)
        values = torch.from_numpy(self._tree.weights.copy())
        values[torch.isposinf(self._scores)] = math.inf
        return probabilities(values, self.config.floor)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["history"] = {
            "scores": self._scores.clone(),
            "last_seen": self._last_seen.clone(),
            "step": self._step,
            "stale_queue": self._stale_queue.clone(),
            "stale_cursor": self._stale_cursor,
            "unknown_value": self._unknown_value,
            "infinite_count": self._infinite_count,
            "tree": None if self._tree is None else self._tree.state(),
            "draws_since_rebuild": self._draws_since_rebuild,
        }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`. A state saved before score ages were kept counts
        every known score as observed at step 0 (so the refresh takes them first)."""
        super().load_state_dict(state)
        history = state["history"]
        self._scores = history["scores"].clone()
        unseen = torch.full((self.dataset_size,), -1, dtype=torch.int64)
        self._last_seen = history.get(
            "last_seen", unseen.masked_fill(~torch.isnan(self._scores), 0)
        ).clone()
        self._step = int(history.get("step", 0))
        self._stale_queue = history.get("stale_queue", torch.empty(0, dtype=torch.int64)).clone()
        self._stale_cursor = int(history.get("stale_cursor", 0))
        self._unknown_value = float(history["unknown_value"])
        self._infinite_count = int(history["infinite_count"])
        tree = history["tree"]
        self._tree = None if tree is None else FenwickTree.from_state(*tree)
        self._draws_since_rebuild = int(history["draws_since_rebuild"])

    def _on_switch(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Once per epoch and when sampling switches on (O(N)): recompute the value of
        unseen samples (the mean of the known scores), rebuild the tree, and queue the
        ``refresh_count * steps_per_epoch`` samples with the oldest scores (never seen
        first, then by the step they were observed), to be rescored over the next epoch,
        ``refresh_count`` per step."""
        known = torch.isfinite(self._scores)
        self._unknown_value = (
            float(self._scores[known].double().clamp_min(0.0).mean()) if bool(known.any()) else 1.0
        )
        self._tree = FenwickTree(self._tree_values(self._scores))
        self._draws_since_rebuild = 0
        stalest = torch.sort(self._last_seen, stable=True).indices
        self._stale_queue = stalest[: self.refresh_count * self.steps_per_epoch].clone()
        self._stale_cursor = 0

    @property
    def _built_tree(self) -> FenwickTree:
        """The tree, once :meth:`refresh` has built it (it runs before every active plan)."""
        assert self._tree is not None, "refresh() builds the tree before it is used"
        return self._tree

    def _tree_values(self, scores: torch.Tensor) -> torch.Tensor:
        """Latest scores float32[m] -> tree weights float64[m] (NaN -> unknown value)."""
        s = scores.to(torch.float64)
        s = torch.where(torch.isnan(s), self._unknown_value, s)
        return torch.where(torch.isfinite(s), s.clamp_min(0.0), 0.0)

    def _active_plan(self, step: int) -> BatchPlan:
        if self._tree is None or self._draws_since_rebuild >= self.steps_per_epoch:
            self.refresh()
        self._draws_since_rebuild += 1
        chosen, share, weights = self._draw(self.batch_size)
        unique, counts = torch.unique(chosen, return_counts=True)
        first = _first_positions(chosen, unique)
        # NaN score: the record gets the score observed by this step's training forward
        record = DrawRecord.from_tensors(
            unique, torch.full(unique.shape, math.nan), share[first], counts, weights[first]
        )
        selection = Selection(torch.arange(chosen.shape[0]), chosen, weights, record)
        stale = self._take_stale(unique)
        if stale.shape[0] == 0:
            return BatchPlan(step, chosen, needs_scores=False, prepared=selection)
        b = chosen.shape[0]
        return BatchPlan(
            step,
            torch.cat([chosen, stale]),
            needs_scores=True,
            prepared=selection,
            score_positions=torch.arange(b, b + stale.shape[0]),
            score_as_trained=True,
        )

    def _select_scored(self, plan: BatchPlan, scores: torch.Tensor) -> Selection:
        """Take in the refreshed scores; the record gains the rescored samples."""
        stale = plan.candidate_indices[plan.scored_positions]
        share = self._pick_probability(stale)  # before the new scores move it
        self.observe(stale, scores)
        zeros = torch.zeros(stale.shape[0])
        rescored = DrawRecord.from_tensors(stale, scores, share, zeros, zeros)
        prepared = plan.prepared
        assert prepared is not None  # history plans always carry their selection
        record = DrawRecord.concatenate([prepared.record, rescored])
        return dataclasses.replace(prepared, record=record)

    def _take_stale(self, chosen: torch.Tensor) -> torch.Tensor:
        """The next ``refresh_count`` queued stale samples, minus those trained this step
        (sorted ``chosen``), which the training forward rescores anyway."""
        end = self._stale_cursor + self.refresh_count
        stale = self._stale_queue[self._stale_cursor : end]
        self._stale_cursor = min(end, self._stale_queue.shape[0])
        return stale[~torch.isin(stale, chosen)]

    def _draw(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(chosen int64[k], each candidate's expected share of the batch for the chosen
        float64[k], loss weights float32[k]) for the configured rule and replacement."""
        cfg = self.config
        if cfg.rule in ("topk", "bottomk"):
            values = torch.from_numpy(self._built_tree.weights.copy())
            values[torch.isposinf(self._scores)] = math.inf
            chosen = rank_indices(values, k, largest=cfg.rule == "topk")
            return chosen, torch.full((k,), 1.0 / k, dtype=torch.float64), torch.ones(k)
        if cfg.replacement:
            chosen = self._draw_picks(k)
            expected = k * self._pick_probability(chosen)
        else:  # O(N): systematic sampling through the full CDF
            pi = inclusion_probabilities(self.probabilities(), k)
            chosen = sample_systematic(pi, self._generator)
            expected = pi[chosen]
        weights = pick_weights(expected, self.dataset_size, k, cfg.weighting, cfg.power_exponent)
        return chosen, expected / k, weights

    def _draw_picks(self, k: int) -> torch.Tensor:
        """k i.i.d. picks from the floor/score mixture, int64[k]."""
        n, gen = self.dataset_size, self._generator
        from_floor = torch.rand(k, generator=gen) < self.config.floor
        if self._infinite_count > 0:
            infinite = torch.nonzero(torch.isposinf(self._scores)).squeeze(1)
            picks = infinite[torch.randint(infinite.shape[0], (k,), generator=gen)]
        elif self._built_tree.total > 0:
            targets = torch.rand(k, generator=gen, dtype=torch.float64) * self._built_tree.total
            picks = torch.from_numpy(self._built_tree.find(targets.numpy()))
        else:
            picks = torch.randint(n, (k,), generator=gen)
        uniform = torch.randint(n, (k,), generator=gen)
        return torch.where(from_floor, uniform, picks)

    def _pick_probability(self, indices: torch.Tensor) -> torch.Tensor:
        """p_i of one pick for the given indices, float64 (O(len(indices)))."""
        floor, n = self.config.floor, self.dataset_size
        if self._infinite_count > 0:
            share = torch.isposinf(self._scores[indices]).double() / self._infinite_count
        elif self._built_tree.total > 0:
            share = (
                torch.from_numpy(self._built_tree.weights[indices.numpy()]) / self._built_tree.total
            )
        else:
            share = torch.full(indices.shape, 1.0 / n, dtype=torch.float64)
        return (1.0 - floor) * share + floor / n


class PruneSampler(Sampler):
    """Epoch-level pruning with the CDF rule (after InfoBatch; the rule is in :mod:`.pruning`).

    Scores come from :meth:`observe` only: the training forward's own scores of the rows
    it trained on (no extra forward pass). Once importance sampling is on, training walks
    passes over the kept samples, b at a time; each pass is drawn from the latest scores
    when it starts (a pass with fewer than b rows left is dropped, as the uniform walker
    drops an incomplete tail; samples never trained have no score and are kept). In the
    last ``prune_tail`` share of the run (from the ``progress`` given to :meth:`plan`)
    every pass keeps all samples with weight 1, and a pruned pass still running when the
    tail starts is cut short. A pass that would keep fewer than b samples keeps all.

    The record holds the trained rows: ``probability`` their share of one pick from the
    pass, ``(1 - p_i) / sum_j (1 - p_j)``; ``weight`` the loss weight (``1 / (1 - p_i)``
    with ``unbiased`` weighting, so ``p_i = 1 - 1 / weight``); the score is the one the
    training forward observes, which the next pass uses.
    """

    mode = "prune"

    def __init__(
        self, config: SamplerConfig, dataset_size: int, batch_size: int, seed: int
    ) -> None:
        super().__init__(config, dataset_size, batch_size, seed)
        self._scores = torch.full((dataset_size,), math.nan, dtype=torch.float32)
        self._order = torch.empty(0, dtype=torch.int64)
        self._drop = torch.zeros(dataset_size, dtype=torch.float64)
        self._weights = torch.ones(dataset_size)
        self._cursor = 0
        self._pass_pruned = False
        self._progress: float | None = None

    @property
    def latest_scores(self) -> torch.Tensor:
        """A copy of each sample's latest observed score, float32[N] (NaN: never seen)."""
        return self._scores.clone()

    @property
    def drop_probabilities(self) -> torch.Tensor:
        """p_i of the current pass, float64[N] (all 0 for a full pass)."""
        return self._drop.clone()

    @property
    def pass_indices(self) -> torch.Tensor:
        """The current pass's kept dataset indices in training order, int64[K]."""
        return self._order.clone()

    def plan(self, step: int, epoch: int, progress: float | None = None) -> BatchPlan:
        self._progress = progress
        return super().plan(step, epoch, progress)

    def observe(self, dataset_indices: torch.Tensor, scores: torch.Tensor) -> None:
        super().observe(dataset_indices, scores)
        unique, new = _latest_scores(dataset_indices, scores)
        self._scores[unique] = new

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["prune"] = {
            "scores": self._scores.clone(),
            "order": self._order.clone(),
            "drop": self._drop.clone(),
            "cursor": self._cursor,
            "pass_pruned": self._pass_pruned,
        }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        saved = state["prune"]
        self._scores = saved["scores"].clone()
        self._order = saved["order"].clone()
        self._drop = saved["drop"].clone()
        self._weights = keep_weights(self._drop, self.config.weighting, self.config.power_exponent)
        self._cursor = int(saved["cursor"])
        self._pass_pruned = bool(saved["pass_pruned"])

    def _active_plan(self, step: int) -> BatchPlan:
        b = self.batch_size
        tail = self._progress is not None and self._progress >= 1.0 - self.config.prune_tail
        if self._cursor + b > self._order.shape[0] or (tail and self._pass_pruned):
            self._start_pass(full=tail)
        chosen = self._order[self._cursor : self._cursor + b].clone()
        self._cursor += b
        keep = 1.0 - self._drop
        weights = self._weights[chosen]
        record = DrawRecord.from_tensors(
            chosen,
            torch.full((b,), math.nan),  # the training forward's score fills it in
            keep[chosen] / keep.sum(),
            torch.ones(b, dtype=torch.int32),
            weights,
        )
        selection = Selection(torch.arange(b), chosen, weights, record)
        return BatchPlan(step, chosen, needs_scores=False, prepared=selection)

    def _start_pass(self, *, full: bool) -> None:
        """Draw the next pass from the latest scores (``full``: keep every sample)."""
        cfg, n = self.config, self.dataset_size
        pruned = False
        if not full:
            order, drop = draw_pass(self._scores, cfg.prune_ratio, self._generator)
            pruned = order.shape[0] >= self.batch_size
        if not pruned:
            order = torch.randperm(n, generator=self._generator)
            drop = torch.zeros(n, dtype=torch.float64)
        self._order, self._drop, self._pass_pruned = order, drop, pruned
        self._weights = keep_weights(drop, cfg.weighting, cfg.power_exponent)
        self._cursor = 0


def _latest_scores(
    dataset_indices: torch.Tensor, scores: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(distinct indices int64[u], each one's last score among ``scores`` float32[u]): what
    the samplers keep for a sample observed more than once in a step."""
    unique, last = last_occurrence(dataset_indices.detach().to("cpu"))
    return unique, scores.detach().to("cpu", torch.float32)[last]


def _first_positions(values: torch.Tensor, unique: torch.Tensor) -> torch.Tensor:
    """For each of the sorted ``unique`` values, the position of its first occurrence."""
    inverse = torch.searchsorted(unique, values)
    first = torch.full(unique.shape, values.shape[0], dtype=torch.int64)
    first.scatter_reduce_(0, inverse, torch.arange(values.shape[0]), "amin")
    return first


_SAMPLER_CLASSES: dict[str, type[Sampler]] = {
    "presample": PresampleSampler,
    "history": HistorySampler,
    "prune": PruneSampler,
}


def make_sampler(config: SamplerConfig, dataset_size: int, batch_size: int, seed: int) -> Sampler:
    """The sampler for ``config.mode`` (``presample``, ``history`` or ``prune``); the
    sampler validates ``config``."""
    config.validate()
    return _SAMPLER_CLASSES[config.mode](config, dataset_size, batch_size, seed)
