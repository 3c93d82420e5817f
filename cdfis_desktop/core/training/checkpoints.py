"""Checkpoint files: everything needed to continue a run exactly where it stopped.

A checkpoint is a ``torch.save`` dict (format :data:`FORMAT`):
``model``/``optimizer``/``scaler`` state dicts, ``samplers`` (one sampler state per
process rank), ``rng`` (per rank: the torch CPU generator state, the CUDA one when
used, and the engine's own generator), ``step`` (steps done), ``epoch`` (float,
fraction of an epoch included), ``train_s`` (training seconds so far, evaluation
excluded), ``engine`` (counters of handlers: early stopping, ever-chosen mask, ...) and
``config`` (``RunConfig.to_dict()``). Numpy arrays in a state (the history sampler's
Fenwick tree) are stored as tensors tagged ``{"__numpy__": tensor}`` and turned back into
arrays on load, so the file holds only tensors, numbers, strings and containers and loads
with ``weights_only=True`` (no arbitrary pickled code runs).

Files are written atomically (a scratch file in the same folder, see
:mod:`cdfis_desktop.core.scratch`, then ``os.replace``), so a crash mid-write never leaves
a truncated checkpoint under the final name; the scratch of a killed write is removed by the
next checkpoint of the same name or by ``cdfis check --fix``. Checkpoints get the mode a
plain ``open`` gives (the umask decides who may read them).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cdfis_desktop.core.disk import is_full_error
from cdfis_desktop.core.errors import StorageFullError, StoreError, TrainingError
from cdfis_desktop.core.scratch import remove_orphans_of, scratch_file

FORMAT = 1


def checkpoint_path(checkpoints_dir: Path, run_id: int, step: int) -> Path:
    """Where run ``run_id`` keeps its checkpoint of ``step``: ``run<id>-step<step>.pt``."""
    return Path(checkpoints_dir) / f"run{run_id:05d}-step{step:09d}.pt"


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (plus the format number) to ``path`` atomically; return ``path``.

    Raises :class:`StorageFullError` when the disk is full and :class:`StoreError` for any
    other write failure; the previous checkpoint files are untouched either way.
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_orphans_of(path)
        tmp = scratch_file(path, ".tmp")
        with tmp.open("wb") as stream:
            torch.save(_to_storable({"format": FORMAT, **state}), stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if is_full_error(exc):
            raise StorageFullError(
                f"{path}: the disk is full; free some space and resume"
            ) from None
        raise StoreError(f"{path}: cannot write the checkpoint ({exc.strerror or exc})") from None
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors on the CPU).

    Raises :class:`TrainingError` when the file is missing, unreadable or of another format.
    """
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"{path}: checkpoint not found; the run cannot be resumed from it")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file raises various types
        raise TrainingError(f"{path}: not a readable checkpoint ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise TrainingError(
            f"{path}: not a cdfis checkpoint of format {FORMAT}; it may come from another "
            "version of cdfis-desktop"
        )
    return _from_storable(state)


_NUMPY_TAG = "__numpy__"


def _to_storable(value: Any) -> Any:
    """Replace numpy arrays (tagged tensors) and numpy scalars (Python numbers), recursively."""
    if isinstance(value, np.ndarray):
        return {_NUMPY_TAG: torch.from_numpy(np.array(value, copy=True))}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: _to_storable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_storable(item) for item in value)
    return value


def _from_storable(value: Any) -> Any:
    """Undo :func:`_to_storable`."""
    if isinstance(value, dict):
        if set(value) == {_NUMPY_TAG}:
            return value[_NUMPY_TAG].numpy()
        return {key: _from_storable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_from_storable(item) for item in value)
    return value
