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


def _reference_forward(model: SmallCNN, x: torch.Tensor) -> torch.Tensor:
    """The SmallCNN forward with plain 2 x 2 max pools (the layout before small inputs
    were accepted)."""
    for layer in model.features:
        x = nn.functional.max_pool2d(x, 2) if isinstance(layer, nn.MaxPool2d) else layer(x)
    return model.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def test_smallcnn_takes_small_inputs_and_is_unchanged_where_it_worked() -> None:
    """A candidate scored at half resolution (24 px for 48 px patches) must go through;
    at sizes plain pooling handles, the output is exactly the old one."""
    torch.manual_seed(0)
    model = SmallCNN().eval()
    for px in (31, 32, 48, 96):
        x = torch.randn(2, 3, px, px)
        torch.testing.assert_close(model(x), _reference_forward(model, x), rtol=0, atol=0)
    for px in (8, 16, 24):
        x = torch.randn(2, 3, px, px)
        assert model(x).shape == (2, 2)
        with pytest.raises(RuntimeError):  # what plain pooling did
            _reference_forward(model, x)


def test_downscale_averages_blocks() -> None:
    from cdfis_desktop.core.training.augment import downscale

    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    torch.testing.assert_close(downscale(x, 0.5), nn.functional.avg_pool2d(x, 2))
    assert downscale(x, 1.0) is x
    assert downscale(x, 0.3).shape == (2, 3, 2, 2)


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
