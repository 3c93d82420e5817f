"""Data-parallel training across processes (``torchrun``), for the engine.

``torchrun --nproc-per-node N -m cdfis_desktop train ...`` starts N processes with the
environment variables ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`init_from_environment` joins the group (NCCL on CUDA, gloo on the
CPU). How the engine uses it:

- each rank trains on its own shard of the training set (``train[rank::world]``) with its
  own sampler; gradients are averaged by ``DistributedDataParallel``, so weights stay
  identical on every rank. ``--batch`` is the batch **per process**.
- every step each rank's draw record (mapped to patch ids) is gathered to rank 0, which
  alone writes the store (history, metrics, checkpoints, run status); a record's
  probabilities are over that rank's own candidates.
- rank 0 validates; the validation loss and the "stop now" decision are shared with all
  ranks so samplers switch on and stop at the same step.

Without those environment variables (or with ``WORLD_SIZE=1``) everything is a no-op
single process. Thread rules: the training thread of each process only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from cdfis_desktop.core.errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    """This process's place in the group; ``world_size`` 1 = not distributed."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def gather_to_main(self, value: Any) -> list[Any] | None:
        """Every rank's ``value`` (picklable) on rank 0, in rank order; None elsewhere."""
        if not self.enabled:
            return [value]
        gathered: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(value, gathered, dst=0)
        return gathered

    def broadcast_from_main(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank."""
        if not self.enabled:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def any_rank(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is True on at least one."""
        if not self.enabled:
            return flag
        tensor = torch.tensor([1 if flag else 0], dtype=torch.int32)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return bool(tensor.item())


def init_from_environment(device_type: str) -> DistContext:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1; else a single-process context.

    ``device_type``: ``cuda`` selects NCCL (each rank uses GPU ``LOCAL_RANK``), anything
    else gloo. Raises :class:`ConfigError` when the environment is incomplete.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    try:
        rank = int(os.environ["RANK"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError):
        raise ConfigError(
            "WORLD_SIZE is set but RANK is missing or invalid; start multi-process training "
            "with torchrun --nproc-per-node N -m cdfis_desktop train ..."
        ) from None
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=10))
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank)


def shutdown(context: DistContext) -> None:
    """Leave the process group (no-op when not distributed)."""
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()
