"""Models follow the sampler protocol; the factory rejects bad names and bad weights."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn

from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.training.models import SmallCNN, build_model


def test_smallcnn_follows_the_sampler_protocol() -> None:
    torch.manual_seed(0)
    model = build_model("smallcnn", 3).eval()
    x = torch.randn(4, 3, 96, 96)
    h = model.forward_features(x)
    assert isinstance(model.classifier, nn.Linear)
    assert h.shape == (4, model.classifier.in_features)
    torch.testing.assert_close(model(x), model.classifier(h))
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)


def test_smallcnn_is_compact() -> None:
    n_params = sum(p.numel() for p in SmallCNN().parameters())
    assert 50_000 < n_params < 150_000


def test_unknown_model_and_too_few_classes() -> None:
    with pytest.raises(ConfigError, match="unknown model 'vgg'"):
        build_model("vgg", 2)
    with pytest.raises(ConfigError, match="at least 2 classes"):
        build_model("smallcnn", 1)


@pytest.mark.skipif(
    importlib.util.find_spec("torchvision") is not None, reason="torchvision installed"
)
def test_resnet_without_torchvision_says_what_to_install() -> None:
    with pytest.raises(ConfigError, match=r'pip install "cdfis-desktop\[resnet\]"'):
        build_model("resnet18", 2)


def test_weights_file_round_trip_and_bad_files(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = build_model("smallcnn", 2)
    path = tmp_path / "weights.pt"
    torch.save(source.state_dict(), path)
    loaded = build_model("smallcnn", 2, weights_path=path)
    for a, b in zip(source.state_dict().values(), loaded.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(ConfigError, match="weights file not found"):
        build_model("smallcnn", 2, weights_path=tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ConfigError, match="not a readable PyTorch weights file"):
        build_model("smallcnn", 2, weights_path=garbage)
    with pytest.raises(ConfigError, match="do not fit this model"):
        build_model("smallcnn", 5, weights_path=path)
