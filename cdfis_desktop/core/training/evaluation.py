"""Evaluation passes: validation metrics and per-patch predictions.

Thread rules: called by the training thread that owns the model, between steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from cdfis_desktop.core.training.datasets import PatchDataset
from cdfis_desktop.core.training.devices import DeviceSetup
from cdfis_desktop.core.training.metrics import ClassificationMetrics, classification_metrics

EVAL_BATCH = 256


@dataclass(frozen=True)
class Evaluation:
    """One pass over ``indices`` of a dataset: ``probabilities float32[n, C]``,
    ``labels int64[n]``, ``patch_ids int64[n]`` and the metrics (loss in nats)."""

    probabilities: np.ndarray
    labels: np.ndarray
    patch_ids: np.ndarray
    metrics: ClassificationMetrics

    @property
    def predicted(self) -> np.ndarray:
        """Predicted class ``int64[n]`` (argmax)."""
        return self.probabilities.argmax(axis=1).astype(np.int64)

    @property
    def predicted_probability(self) -> np.ndarray:
        """Probability of the predicted class ``float32[n]``."""
        return self.probabilities.max(axis=1)


@torch.no_grad()
def evaluate(
    model: nn.Module, dataset: PatchDataset, indices: np.ndarray, setup: DeviceSetup
) -> Evaluation:
    """Evaluate ``model`` (eval mode, no augmentation) on ``dataset[indices]``.

    The model's train/eval mode is restored afterwards. Empty ``indices`` give nan metrics.
    """
    was_training = model.training
    model.eval()
    probabilities: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    ids: list[np.ndarray] = []
    loss_sum = 0.0
    try:
        for start in range(0, len(indices), EVAL_BATCH):
            chunk = indices[start : start + EVAL_BATCH]
            x, y, patch_ids = dataset.batch(chunk, augment=False)
            x = x.to(setup.device, non_blocking=setup.pin_memory)
            y = y.to(setup.device)
            with setup.autocast():
                logits = model(x)
            logits = logits.float()
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            probabilities.append(torch.softmax(logits, dim=1).cpu().numpy())
            labels.append(y.cpu().numpy())
            ids.append(patch_ids.numpy())
    finally:
        model.train(was_training)
    n = len(indices)
    probs = np.concatenate(probabilities) if probabilities else np.zeros((0, 2), np.float32)
    label_array = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    loss = loss_sum / n if n else float("nan")
    return Evaluation(
        probabilities=probs.astype(np.float32),
        labels=label_array.astype(np.int64),
        patch_ids=np.concatenate(ids).astype(np.int64) if ids else np.zeros(0, np.int64),
        metrics=classification_metrics(label_array, probs, loss),
    )
