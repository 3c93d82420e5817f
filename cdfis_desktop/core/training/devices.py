"""Choosing the compute device and the mixed-precision setup for it.

``auto`` picks CUDA when available, then Apple MPS, then the CPU. Mixed precision
(``torch.autocast`` in float16 with a ``GradScaler``) is used on CUDA only: on the CPU
bfloat16 autocast is slower than float32 for small convolutional nets, and MPS autocast
support varies with the torch version.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from cdfis_desktop.core.errors import ConfigError, TrainingError


@dataclass(frozen=True)
class DeviceSetup:
    """Where tensors live and how the forward pass runs there.

    ``pin_memory``: host tensors are pinned before the copy (helps CUDA only).
    """

    device: torch.device
    mixed_precision: bool
    pin_memory: bool

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """Context for forward passes: float16 autocast on CUDA, nothing elsewhere."""
        if self.mixed_precision:
            return torch.autocast(device_type=self.device.type, dtype=torch.float16)
        return contextlib.nullcontext()

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A loss scaler, enabled only with mixed precision (a no-op pass-through otherwise)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.mixed_precision)


def resolve_device(name: str = "auto") -> DeviceSetup:
    """The device for ``name``: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

    Raises :class:`ConfigError` for an unknown name or a device this machine lacks.
    """
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif _mps_available():
            name = "mps"
        else:
            name = "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                "device 'cuda' asked for, but no CUDA GPU is available; use --device cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {name!r} asked for, but this machine has "
                f"{torch.cuda.device_count()} CUDA GPU(s)"
            )
    elif device.type == "mps" and not _mps_available():
        raise ConfigError(
            "device 'mps' asked for, but Apple MPS is not available; use --device cpu"
        )
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device {name!r} is not supported; use auto, cpu, cuda, cuda:N or mps")
    is_cuda = device.type == "cuda"
    return DeviceSetup(device=device, mixed_precision=is_cuda, pin_memory=is_cuda)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


@contextlib.contextmanager
def out_of_memory_as_training_error(batch_size: int) -> Iterator[None]:
    """Turn a device out-of-memory error into a :class:`TrainingError` that says what to try."""
    try:
        yield
    except torch.OutOfMemoryError:
        smaller = max(1, batch_size // 2)
        raise TrainingError(
            f"the device ran out of memory at batch size {batch_size}; try --batch {smaller} "
            "(or a smaller presample ratio or model)"
        ) from None
