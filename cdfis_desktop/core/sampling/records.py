"""Immutable values the samplers hand to the training engine and the history store.

``DrawRecord`` holds plain numpy arrays (no live tensors), so it can cross threads and be
written to SQLite by the store's batched writer as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

_RECORD_DTYPES = {
    "dataset_index": np.int64,
    "score": np.float32,
    "probability": np.float32,
    "times_chosen": np.int32,
    "weight": np.float32,
}


@dataclass(frozen=True)
class DrawRecord:
    """What one draw looked at: one entry per candidate, all arrays of length n.

    dataset_index int64[n]: index into the training set. score float32[n]: the score the
    draw used (the sampler's metric; NaN where the draw used no score, e.g. the uniform
    phase, until :meth:`Selection.completed_record` fills in the observed score).
    probability float32[n]: p_i of one pick (sums to 1 over the candidate set; in history
    mode the candidate set is the whole dataset and only the chosen entries are recorded).
    times_chosen int32[n]: how often the entry was picked (0 = looked at, not chosen).
    weight float32[n]: its loss weight when chosen, 0 where not chosen.
    """

    dataset_index: np.ndarray
    score: np.ndarray
    probability: np.ndarray
    times_chosen: np.ndarray
    weight: np.ndarray

    def __post_init__(self) -> None:
        n = self.dataset_index.shape[0]
        for name, dtype in _RECORD_DTYPES.items():
            array = getattr(self, name)
            if array.dtype != dtype or array.shape != (n,):
                raise ValueError(
                    f"DrawRecord.{name} must be {np.dtype(dtype).name}[{n}], "
                    f"got {array.dtype}{list(array.shape)}"
                )

    def __len__(self) -> int:
        return int(self.dataset_index.shape[0])

    @classmethod
    def concatenate(cls, records: list[DrawRecord]) -> DrawRecord:
        """One record holding the entries of ``records`` in order."""
        if len(records) == 1:
            return records[0]
        return cls(
            *(np.concatenate([getattr(r, name) for r in records]) for name in _RECORD_DTYPES)
        )

    @classmethod
    def from_tensors(
        cls,
        dataset_index: torch.Tensor,
        score: torch.Tensor,
        probability: torch.Tensor,
        times_chosen: torch.Tensor,
        weight: torch.Tensor,
    ) -> DrawRecord:
        """Copy tensors (any device) into a record with the documented dtypes."""
        values = (dataset_index, score, probability, times_chosen, weight)
        arrays = [
            t.detach().to("cpu").numpy().astype(dtype, copy=True)
            for t, dtype in zip(values, _RECORD_DTYPES.values(), strict=True)
        ]
        return cls(*arrays)


@dataclass(frozen=True)
class Selection:
    """The mini-batch to train on, as chosen by a sampler.

    positions int64[b]: indices into the plan's ``candidate_indices``. dataset_indices
    int64[b]: the chosen training-set indices (``candidate_indices[positions]``; repeats
    possible when drawing with replacement). weights float32[b]: per-row loss weights (all
    1 for the paper's unweighted rule); train on ``(weights * per_sample_loss).mean()``.
    record: the draw as seen at draw time (see :class:`DrawRecord`).
    """

    positions: torch.Tensor
    dataset_indices: torch.Tensor
    weights: torch.Tensor
    record: DrawRecord

    def completed_record(self, observed_scores: torch.Tensor) -> DrawRecord:
        """The record with NaN scores of chosen entries replaced by the observed ones.

        observed_scores: float[b], aligned with :attr:`dataset_indices` (the per-sample
        metric measured by the training step on the rows it trained on; for a row chosen
        more than once, its last repeat's). Scores the draw already used are kept. Pure:
        returns a new record, changes nothing.
        """
        chosen = self.dataset_indices.detach().cpu().numpy()
        observed = observed_scores.detach().float().cpu().numpy()
        if observed.shape != chosen.shape:
            raise ValueError(
                f"observed scores have shape {observed.shape}, expected {chosen.shape} "
                "(one per trained row)"
            )
        order = np.argsort(chosen, kind="stable")
        sorted_chosen = chosen[order]
        # a row chosen twice keeps the score of its last repeat, as the history sampler does
        where = np.searchsorted(sorted_chosen, self.record.dataset_index, side="right") - 1
        where = np.clip(where, 0, len(chosen) - 1)
        found = sorted_chosen[where] == self.record.dataset_index
        score = self.record.score.copy()
        fill = found & np.isnan(score)
        score[fill] = observed[order[where[fill]]]
        return DrawRecord(
            dataset_index=self.record.dataset_index,
            score=score,
            probability=self.record.probability,
            times_chosen=self.record.times_chosen,
            weight=self.record.weight,
        )


@dataclass(frozen=True)
class BatchPlan:
    """What the engine must load and score for one step.

    candidate_indices int64[n] (CPU): training-set indices to load. needs_scores: True
    when the sampler wants per-sample scores before choosing: of every candidate
    (presample mode once importance sampling is on, n = B), or only of the rows at
    ``score_positions`` (history mode's refresh of stale scores). The engine scores them
    with a forward pass without gradients: when ``score_as_trained``, exactly as the
    training forward sees a row (augmented input, BatchNorm batch statistics), so the
    scores match those the training step observes; otherwise on the clean rows, with the
    normalisation ``SamplerConfig.score_in_train_mode`` asks for. prepared: the selection made while
    planning (history mode and the uniform phase); engines pass the plan (and the scores,
    when asked) to ``sampler.select`` and need not look at it.
    """

    step: int
    candidate_indices: torch.Tensor
    needs_scores: bool
    prepared: Selection | None = None
    score_positions: torch.Tensor | None = None
    score_as_trained: bool = False

    @property
    def scored_positions(self) -> torch.Tensor:
        """Positions (into ``candidate_indices``) to score when ``needs_scores``, int64[m]."""
        if self.score_positions is not None:
            return self.score_positions
        return torch.arange(self.candidate_indices.shape[0])
