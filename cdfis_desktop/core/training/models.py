"""Patch classifiers and a factory by name.

Every model here follows the protocol the importance sampler relies on
(``cdfis_desktop.core.sampling``): ``forward_features(x) -> h`` returns the input of the
last layer, ``float[N, F]``, and the last layer is an ``nn.Linear(F, num_classes)`` named
``classifier``, so ``forward(x) == classifier(forward_features(x))`` and per-sample
last-layer gradient norms have a closed form.

Inputs are normalised RGB images ``float32[N, 3, H, W]``; outputs are logits
``float32[N, num_classes]``.

- ``smallcnn``: 4 conv blocks (conv 3x3 - batch norm - ReLU - max pool 2, skipped on a
  1 px map), 16/32/64/128 channels, the first conv with stride 2, global average pooling; about 98k parameters.
  The strided first conv is what makes it fast: measured on the 2-core CPU at 96 px and
  batch 128, about 1,100 training samples/s with it against about 180 without (same
  parameter count). For demos and tests.
- ``resnet18`` / ``resnet50``: torchvision ResNets (the optional extra ``[resnet]``),
  randomly initialised or from a local weights file; nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from cdfis_desktop.core.config import MODEL_NAMES
from cdfis_desktop.core.errors import ConfigError


class _PoolUnlessSinglePixel(nn.MaxPool2d):
    """Max pooling 2 x 2 (stride 2) that passes a feature map of 1 px a side through
    unchanged, so a small input (e.g. a candidate scored at half resolution) reaches the
    global pooling instead of failing. Identical to ``nn.MaxPool2d(2)`` wherever that works
    (maps of 2 px or more a side); no parameters, so state dicts are unchanged."""

    def __init__(self) -> None:
        super().__init__(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < 2:
            return x
        return super().forward(x)


class SmallCNN(nn.Module):
    """A compact CNN for tissue patches (96 px is the default; the convolutions need 31
    px for a full-size final map, smaller inputs skip the pools that would empty it)."""

    def __init__(self, num_classes: int = 2, channels: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        in_ch = 3
        for i, out_ch in enumerate(channels):
            blocks += [
                nn.Conv2d(in_ch, out_ch, 3, stride=2 if i == 0 else 1, padding=1, bias=False),
                nn.BatchNorm2d(out_ch),
                nn.ReLU(inplace=True),
                _PoolUnlessSinglePixel(),
            ]
            in_ch = out_ch
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Linear(in_ch, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``float[N, 3, H, W]`` -> pooled features ``float[N, channels[-1]]``."""
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


class ResNetClassifier(nn.Module):
    """A torchvision ResNet whose ``fc`` is replaced by ``classifier`` (sampler protocol)."""

    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__()
        head = backbone.fc
        assert isinstance(head, nn.Linear), "a torchvision ResNet ends in a Linear fc"
        backbone.fc = nn.Identity()
        self.backbone = backbone
        self.classifier = nn.Linear(head.in_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``float[N, 3, H, W]`` -> pooled features ``float[N, 512 or 2048]``."""
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


def build_model(
    name: str, num_classes: int, *, weights_path: str | Path | None = None
) -> nn.Module:
    """A fresh model by name (one of :data:`MODEL_NAMES`) with ``num_classes`` outputs.

    ``weights_path``: a local ``state_dict`` file (``torch.save``) loaded into the backbone
    before the classifier is replaced (ImageNet ResNet weights, say); keys of a saved
    whole model (``backbone.``/``classifier.`` prefixes) are accepted too. Raises
    :class:`ConfigError` for an unknown name, fewer than 2 classes, a missing or unreadable
    weights file, or a ResNet without torchvision installed.
    """
    if num_classes < 2:
        raise ConfigError(f"a classifier needs at least 2 classes (got {num_classes})")
    if name == "smallcnn":
        model: nn.Module = SmallCNN(num_classes)
        if weights_path is not None:
            _load_weights(model, weights_path)
        return model
    if name in ("resnet18", "resnet50"):
        return _build_resnet(name, num_classes, weights_path)
    raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(MODEL_NAMES)}")


def _build_resnet(name: str, num_classes: int, weights_path: str | Path | None) -> nn.Module:
    try:
        from torchvision import models as tv_models
    except ImportError:
        raise ConfigError(
            f"model {name!r} needs torchvision, which is not installed; install it with "
            'pip install "cdfis-desktop[resnet]" or choose --model smallcnn'
        ) from None
    model = ResNetClassifier(getattr(tv_models, name)(weights=None), num_classes)
    if weights_path is not None:
        state = _read_state_dict(weights_path)
        if any(key.startswith(("backbone.", "classifier.")) for key in state):
            _load_into(model, state, weights_path)
        else:  # torchvision's own layout: load the backbone, drop its ImageNet head
            state = {k: v for k, v in state.items() if not k.startswith("fc.")}
            _load_into(model.backbone, state, weights_path)
    return model


def _load_weights(model: nn.Module, weights_path: str | Path) -> None:
    _load_into(model, _read_state_dict(weights_path), weights_path)


def _read_state_dict(weights_path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(weights_path).expanduser()
    if not path.is_file():
        raise ConfigError(f"{path}: weights file not found; give the path of a saved state_dict")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt or foreign file
        raise ConfigError(f"{path}: not a readable PyTorch weights file ({exc})") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # one of our checkpoints
    if not isinstance(state, dict):
        raise ConfigError(f"{path}: expected a state_dict (a dict of tensors)")
    return state


def _load_into(module: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"{path}: weights do not fit this model ({first})") from None
