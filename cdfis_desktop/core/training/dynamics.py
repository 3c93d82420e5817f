"""Training dynamics of one step: each trained patch's label probability and margin.

Data cartography (Swayamdipta et al. 2020) needs the probability the model gives each
training sample's label, epoch after epoch; the area under the margin (Pleiss et al.
2020) needs the margin, the label's logit minus the largest other logit. Both are read
off the logits the training step computes anyway (train mode, augmented input, weights
before the update, as both papers record them), so recording costs a copy of the [b, C]
logits to the CPU and a softmax there per step (``benchmarks/dynamics_overhead.py``).

Thread rules: pure functions, called by the training thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cdfis_desktop.core.sampling import DrawRecord


@dataclass(frozen=True)
class StepDynamics:
    """One entry per entry of the step's :class:`DrawRecord` (length n):
    ``label_probability`` float32[n] in [0, 1] and ``margin`` float32[n] (logit units),
    averaged over the step's rows of that entry; NaN where the step did not train on it
    (candidates looked at but not chosen)."""

    label_probability: np.ndarray
    margin: np.ndarray

    @classmethod
    def concatenate(cls, parts: list[StepDynamics]) -> StepDynamics:
        """The dynamics of several records joined in order (one per rank)."""
        if len(parts) == 1:
            return parts[0]
        return cls(
            np.concatenate([p.label_probability for p in parts]),
            np.concatenate([p.margin for p in parts]),
        )


def label_outputs(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(label probability float64[b], margin float64[b]) of ``logits`` float[b, C] for
    ``labels`` int[b]. With one class the margin is +inf (no other class to prefer).

    numpy on the CPU copy: torch's softmax on a [128, 2] tensor took milliseconds on a
    loaded CPU (its thread pool), numpy takes microseconds."""
    scores = np.asarray(logits, dtype=np.float64)
    rows = np.arange(scores.shape[0])
    own = scores[rows, labels]
    shifted = scores - scores.max(axis=1, keepdims=True)
    probability = np.exp(shifted[rows, labels]) / np.exp(shifted).sum(axis=1)
    others = scores.copy()
    others[rows, labels] = -np.inf
    return probability, own - others.max(axis=1)


def step_dynamics(
    logits: torch.Tensor,
    labels: torch.Tensor,
    trained_indices: torch.Tensor,
    record: DrawRecord,
) -> StepDynamics:
    """The dynamics of the rows a step trained on, placed on ``record``'s entries.

    ``logits`` float[b, C] and ``labels`` int64[b] (any device): the training forward
    pass's rows; ``trained_indices`` int64[b]: their training-set indices (repeats
    allowed: a row drawn twice is averaged); ``record``: the step's draw record, whose
    entries with the same ``dataset_index`` receive the values."""
    probability, margin = label_outputs(
        logits.detach().float().cpu().numpy(), labels.detach().cpu().numpy()
    )
    trained = trained_indices.detach().cpu().numpy().astype(np.int64)
    unique, inverse = np.unique(trained, return_inverse=True)
    counts = np.bincount(inverse, minlength=unique.shape[0])
    means = [np.bincount(inverse, v, unique.shape[0]) / counts for v in (probability, margin)]
    at = np.minimum(np.searchsorted(unique, record.dataset_index), unique.shape[0] - 1)
    found = unique[at] == record.dataset_index
    out = [np.where(found, m[at], np.nan).astype(np.float32) for m in means]
    return StepDynamics(label_probability=out[0], margin=out[1])
