"""Batched, cheap augmentation and normalisation of patch images (torch, CPU or GPU).

Everything works on a whole batch at once: ``uint8[N, 3, H, W]`` in, ``float32[N, 3, H, W]``
out. Per-sample randomness is drawn as small tensors, so the cost is a few passes over the
batch whatever N is:

- flips and 90-degree rotations: the batch is split into the 8 dihedral cases with boolean
  masks and each case is transformed in one tensor op (rotations only for square patches);
- mild H&E stain jitter (Tellez et al. 2018, "HED light"): in optical-density space
  ``od = -ln(rgb)`` the stain separation of ``skimage.color.rgb2hed`` is linear, so scaling
  each stain by ``alpha`` and shifting it by ``beta`` is one per-sample 3x3 matrix and
  offset, applied with a single batched matmul (unlike skimage, stain values are not
  clipped at 0, which makes no visible difference at this jitter strength).

Normalisation uses the ImageNet channel mean/std (what pretrained backbones expect).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from skimage.color.colorconv import hed_from_rgb, rgb_from_hed

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_MIN_INTENSITY = 1.0 / 255.0  # keeps -ln(rgb) finite for black pixels
_STAIN_SCALE = float(-np.log(1e-6))  # skimage's stain unit: od / -ln(1e-6)


@dataclass(frozen=True)
class Augmentation:
    """Which augmentations to apply. ``hed_alpha``: stains scaled by U(1-a, 1+a);
    ``hed_beta``: shifted by U(-b, b) in skimage stain units. 0 switches a part off."""

    flips: bool = True
    rotations: bool = True
    hed_alpha: float = 0.05
    hed_beta: float = 0.01


NO_AUGMENTATION = Augmentation(flips=False, rotations=False, hed_alpha=0.0, hed_beta=0.0)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8[N, 3, H, W] (or float in 0..1) -> float32[N, 3, H, W] with ImageNet mean/std."""
    # one scale and one shift, in place: (x / range - mean) / std = x * scale - shift
    value_range = 255.0 if images.dtype == torch.uint8 else 1.0
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    out = images.to(torch.float32, copy=True)
    return out.mul_(1.0 / (value_range * std)).sub_(mean / std)


def downscale(images: torch.Tensor, scale: float) -> torch.Tensor:
    """float[N, C, H, W] -> float[N, C, round(scale H), round(scale W)] (at least 1 px) by
    area averaging (for scale 1/2: the mean of each 2 x 2 block); ``scale`` 1 returns the
    input itself. Averaging commutes with :func:`normalise`'s per-channel affine map."""
    if scale >= 1.0:
        return images
    height, width = images.shape[-2:]
    size = (max(1, round(scale * height)), max(1, round(scale * width)))
    return torch.nn.functional.interpolate(images, size=size, mode="area")


def augment_and_normalise(
    images: torch.Tensor,
    augmentation: Augmentation | None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """uint8[N, 3, H, W] -> augmented, normalised float32[N, 3, H, W].

    ``augmentation=None`` (or :data:`NO_AUGMENTATION`) only normalises. ``generator`` makes
    the random choices reproducible (it must live on CPU); None uses torch's global RNG,
    which DataLoader seeds differently in each worker.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images [N, 3, H, W], got {list(images.shape)}")
    if augmentation is None:
        return normalise(images)
    if augmentation.flips or augmentation.rotations:
        images = random_dihedral(images, augmentation, generator)
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    if augmentation.hed_alpha > 0 or augmentation.hed_beta > 0:
        x = hed_jitter(x, augmentation.hed_alpha, augmentation.hed_beta, generator)
    return normalise(x)


def random_dihedral(
    images: torch.Tensor, augmentation: Augmentation, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Flip horizontally with p=0.5 and rotate by a random multiple of 90 degrees, per sample.

    images: [N, C, H, W] of any dtype; returns a new tensor of the same shape. Rotations by
    90/270 degrees are used only when H == W.
    """
    n = images.shape[0]
    turns = 4 if augmentation.rotations and images.shape[2] == images.shape[3] else 2
    rotation = (
        torch.randint(0, turns, (n,), generator=generator) * (4 // turns)
        if augmentation.rotations
        else torch.zeros(n, dtype=torch.long)
    )
    flip = (
        torch.rand(n, generator=generator) < 0.5
        if augmentation.flips
        else torch.zeros(n, dtype=torch.bool)
    )
    out = images.clone()
    for k in range(4):
        for flipped in (False, True):
            mask = ((rotation == k) & (flip == flipped)).to(images.device)
            if (k == 0 and not flipped) or not bool(mask.any()):
                continue
            part = images[mask]
            if flipped:
                part = torch.flip(part, dims=(3,))
            out[mask] = torch.rot90(part, k, dims=(2, 3))
    return out


def hed_jitter(
    images: torch.Tensor, alpha: float, beta: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Per-sample haematoxylin/eosin/DAB scale-and-shift of float32[N, 3, H, W] in 0..1.

    Returns float32 in 0..1, same shape. One batched matmul: od' = od @ M_i + c_i with
    M_i = hed_from_rgb @ diag(alpha_i) @ rgb_from_hed and c_i = beta_i @ rgb_from_hed
    (scaled to optical density).
    """
    n = images.shape[0]
    device = images.device
    a = 1.0 + (torch.rand(n, 3, generator=generator) * 2 - 1) * alpha
    b = (torch.rand(n, 3, generator=generator) * 2 - 1) * beta * _STAIN_SCALE
    to_hed = torch.as_tensor(hed_from_rgb, dtype=torch.float32)
    to_rgb = torch.as_tensor(rgb_from_hed, dtype=torch.float32)
    matrices = (to_hed.unsqueeze(0) * a.unsqueeze(1)) @ to_rgb  # [N, 3, 3]
    offsets = b @ to_rgb  # [N, 3]
    od = -torch.log(images.clamp(min=_MIN_INTENSITY))
    flat = od.permute(0, 2, 3, 1).reshape(n, -1, 3)  # [N, H*W, 3]
    jittered = torch.baddbmm(offsets.to(device).unsqueeze(1), flat, matrices.to(device))
    rgb = torch.exp(-jittered).clamp(0.0, 1.0)
    return rgb.reshape(n, images.shape[2], images.shape[3], 3).permute(0, 3, 1, 2).contiguous()
