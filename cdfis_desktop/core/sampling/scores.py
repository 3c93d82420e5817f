"""Per-sample importance scores, vectorised, on the model's device.

Model protocol (:class:`FeatureClassifier`): ``forward_features(x) -> h`` returns the
input of the last layer, ``float[B, F]``, and the last layer is an ``nn.Linear(F, C)``
attribute named ``classifier``, so ``model(x) == model.classifier(model.forward_features(x))``.
The models in ``core/training/models.py`` follow it.

Metrics (all per sample, for the un-averaged cross-entropy loss of that sample alone):

- ``loss``: cross-entropy ``-log softmax(z)_y``.
- ``gradnorm``: norm of the gradient of the loss w.r.t. the last layer's bias, which for
  softmax cross-entropy is ``||softmax(z) - onehot(y)||_2`` (the authors' metric).
- ``gradnorm_wb``: norm of the gradient w.r.t. the last layer's weight and bias together:
  the weight gradient is the outer product ``(softmax(z) - onehot(y)) h^T``, so the norm is
  ``||softmax(z) - onehot(y)|| * sqrt(||h||^2 + 1)``.

Bound relation (tested): the last layer's parameters are a subset of all parameters, so
``exact_gradient_norms >= gradnorm_wb >= gradnorm`` for every sample.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn
from torch.nn import functional as F

from cdfis_desktop.core.config import SCORE_METRICS
from cdfis_desktop.core.errors import ConfigError


@runtime_checkable
class FeatureClassifier(Protocol):
    """A classifier whose last layer is ``classifier: nn.Linear`` fed by ``forward_features``."""

    classifier: nn.Linear

    def forward_features(self, x: torch.Tensor) -> torch.Tensor: ...


def scores_from_outputs(
    logits: torch.Tensor,
    targets: torch.Tensor,
    metric: str,
    features: torch.Tensor | None = None,
) -> torch.Tensor:
    """Closed-form scores ``float32[B]`` from logits ``float[B, C]`` and labels ``int64[B]``.

    features ``float[B, F]`` (the classifier's input h) is needed for ``gradnorm_wb`` only.
    Differentiable when the inputs are, but meant to be called on detached outputs (the
    training step's own forward pass gives the scores of the trained rows for free).
    Raises :class:`ConfigError` for an unknown metric or missing features.
    """
    if metric == "loss":
        return F.cross_entropy(logits.float(), targets, reduction="none")
    if metric not in SCORE_METRICS:
        raise ConfigError(
            f"unknown score metric {metric!r}; choose one of: {', '.join(SCORE_METRICS)}"
        )
    residual = torch.softmax(logits.float(), dim=1)
    residual = residual - F.one_hot(targets, num_classes=logits.shape[1]).to(residual.dtype)
    bias_norm = torch.linalg.vector_norm(residual, dim=1)
    if metric == "gradnorm":
        return bias_norm
    if features is None:
        raise ConfigError("metric 'gradnorm_wb' needs the classifier's input features h")
    h_sq = features.float().pow(2).sum(dim=1)
    return bias_norm * torch.sqrt(h_sq + 1.0)


@torch.no_grad()
def score_batch(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, metric: str, *, train_mode: bool = False
) -> torch.Tensor:
    """Scores ``float32[B]`` of a candidate batch from one forward pass without gradients.

    x: model input ``float[B, ...]`` and y: labels ``int64[B]``, on the model's device.
    train_mode: score with the model in training mode (batch statistics in BatchNorm,
    dropout on) instead of evaluation mode. Either way the model's mode and its buffers
    (BatchNorm running statistics) are left exactly as they were. Any thread that owns
    the model may call it (not concurrently with a training step on the same model).
    """
    was_training = model.training
    saved = [b.detach().clone() for b in model.buffers()] if train_mode else []
    model.train(train_mode)
    try:
        if metric == "gradnorm_wb":
            features = _features(model, x)
            logits = _classifier(model)(features)
            return scores_from_outputs(logits, y, metric, features)
        return scores_from_outputs(model(x), y, metric)
    finally:
        model.train(was_training)
        for buffer, value in zip(model.buffers(), saved, strict=False):
            buffer.copy_(value)


def exact_gradient_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Exact per-sample norms ``float32[B]`` of the full-model loss gradient (torch.func).

    Slow (one vectorised backward per sample; memory grows with B x parameters): for
    analysis and for testing the closed forms. The model is evaluated in eval mode
    (BatchNorm uses running statistics, so samples do not interact) and restored after.
    """
    from torch.func import functional_call, grad, vmap

    params = {name: p.detach() for name, p in model.named_parameters()}
    buffers = {name: b.detach() for name, b in model.named_buffers()}

    def sample_loss(
        p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor
    ) -> torch.Tensor:
        logits = functional_call(model, (p, b), (xi.unsqueeze(0),))
        return F.cross_entropy(logits, yi.unsqueeze(0))

    was_training = model.training
    model.eval()
    try:
        grads = vmap(grad(sample_loss), in_dims=(None, None, 0, 0))(params, buffers, x, y)
    finally:
        model.train(was_training)
    squared = sum(g.reshape(g.shape[0], -1).pow(2).sum(dim=1) for g in grads.values())
    return torch.sqrt(squared).float()


def _features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    forward_features = getattr(model, "forward_features", None)
    if forward_features is None:
        raise ConfigError(
            f"model {type(model).__name__} has no forward_features(x); metric 'gradnorm_wb' "
            "needs the sampler protocol (see cdfis_desktop.core.sampling.scores)"
        )
    return forward_features(x)


def _classifier(model: nn.Module) -> nn.Linear:
    classifier = getattr(model, "classifier", None)
    if not isinstance(classifier, nn.Linear):
        raise ConfigError(
            f"model {type(model).__name__} has no nn.Linear 'classifier'; metric "
            "'gradnorm_wb' needs the sampler protocol (see cdfis_desktop.core.sampling.scores)"
        )
    return classifier
