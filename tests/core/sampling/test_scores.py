"""Per-sample scores: closed forms equal autograd; the exact norm bounds them."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.sampling import exact_gradient_norms, score_batch, scores_from_outputs
from cdfis_desktop.core.sampling.scores import FeatureClassifier
from cdfis_desktop.core.training.models import SmallCNN


class TinyNet(nn.Module):
    """An MLP with BatchNorm and the sampler protocol."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU())
        self.classifier = nn.Linear(8, 3)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


def _data(n: int = 12) -> tuple[TinyNet, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = TinyNet()
    model.train()
    model(torch.randn(32, 5))  # non-trivial running statistics
    model.eval()
    return model, torch.randn(n, 5), torch.randint(0, 3, (n,))


def _autograd_last_layer_norms(model: TinyNet, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    bias, both = [], []
    for i in range(x.shape[0]):
        model.zero_grad()
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        gw, gb = model.classifier.weight.grad, model.classifier.bias.grad
        bias.append(gb.norm())
        both.append(torch.sqrt(gw.pow(2).sum() + gb.pow(2).sum()))
    return torch.stack(bias), torch.stack(both)


def test_models_follow_the_protocol() -> None:
    assert isinstance(TinyNet(), FeatureClassifier)
    assert isinstance(SmallCNN(), FeatureClassifier)


def test_closed_form_gradient_norms_equal_autograd() -> None:
    model, x, y = _data()
    bias, both = _autograd_last_layer_norms(model, x, y)
    torch.testing.assert_close(score_batch(model, x, y, "gradnorm"), bias, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(score_batch(model, x, y, "gradnorm_wb"), both, rtol=1e-5, atol=1e-6)
    loss = F.cross_entropy(model(x), y, reduction="none").detach()
    torch.testing.assert_close(score_batch(model, x, y, "loss"), loss)


def test_exact_norm_bounds_the_last_layer_norms() -> None:
    model, x, y = _data()
    exact = exact_gradient_norms(model, x, y)
    wb = score_batch(model, x, y, "gradnorm_wb")
    bias = score_batch(model, x, y, "gradnorm")
    assert torch.all(exact >= wb - 1e-5)
    assert torch.all(wb >= bias - 1e-6)
    assert torch.any(exact > wb * 1.01)  # earlier layers do contribute
    # and it is the real per-sample gradient norm
    model.zero_grad()
    F.cross_entropy(model(x[:1]), y[:1]).backward()
    reference = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters()))
    torch.testing.assert_close(exact[0], reference, rtol=1e-4, atol=1e-6)


def test_train_mode_scoring_leaves_model_untouched() -> None:
    model, x, y = _data()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    eval_scores = score_batch(model, x, y, "loss")
    train_scores = score_batch(model, x, y, "loss", train_mode=True)
    assert not torch.allclose(eval_scores, train_scores)  # batch statistics differ
    assert not model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_unknown_metric_and_missing_protocol() -> None:
    logits, y = torch.randn(4, 2), torch.tensor([0, 1, 0, 1])
    with pytest.raises(ConfigError, match="unknown score metric"):
        scores_from_outputs(logits, y, "entropy")
    with pytest.raises(ConfigError, match="features"):
        scores_from_outputs(logits, y, "gradnorm_wb")
    plain = nn.Sequential(nn.Linear(5, 2))
    with pytest.raises(ConfigError, match="forward_features"):
        score_batch(plain, torch.randn(4, 5), y, "gradnorm_wb")
