"""Checkpoint files are atomic and checked on load; device names are validated."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cdfis_desktop.core.errors import ConfigError, StoreError, TrainingError
from cdfis_desktop.core.training.checkpoints import (
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
)
from cdfis_desktop.core.training.devices import out_of_memory_as_training_error, resolve_device


def test_checkpoint_round_trip_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = checkpoint_path(tmp_path / "checkpoints", run_id=3, step=40)
    state = {"step": 40, "weights": torch.arange(5.0), "nested": {"rng": torch.get_rng_state()}}
    save_checkpoint(path, state)
    loaded = load_checkpoint(path)
    assert loaded["step"] == 40
    torch.testing.assert_close(loaded["weights"], state["weights"])
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_overwriting_keeps_a_complete_file(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 1})
    save_checkpoint(path, {"step": 2})
    assert load_checkpoint(path)["step"] == 2


def test_bad_checkpoints_raise_training_error(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00" * 10)
    with pytest.raises(TrainingError, match="not a readable checkpoint"):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {}}, foreign)
    with pytest.raises(TrainingError, match="not a cdfis checkpoint"):
        load_checkpoint(foreign)


def test_unwritable_checkpoint_folder_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot write the checkpoint"):
        save_checkpoint(blocker / "c.pt", {"step": 1})


def test_device_names() -> None:
    setup = resolve_device("cpu")
    assert setup.device.type == "cpu" and not setup.mixed_precision and not setup.pin_memory
    assert resolve_device("auto").device.type in ("cpu", "cuda", "mps")
    with pytest.raises(ConfigError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_out_of_memory_names_a_smaller_batch() -> None:
    with pytest.raises(TrainingError, match="--batch 64"):
        with out_of_memory_as_training_error(128):
            raise torch.OutOfMemoryError("CUDA out of memory")


def test_numpy_arrays_in_a_state_round_trip_exactly(tmp_path: Path) -> None:
    import numpy as np

    tree = np.random.default_rng(0).random(7)
    state = {"sampler": {"tree": (tree, tree * 2, np.float64(3.5)), "ids": np.arange(4)}}
    save_checkpoint(tmp_path / "c.pt", state)
    loaded = load_checkpoint(tmp_path / "c.pt")["sampler"]
    assert isinstance(loaded["tree"], tuple) and loaded["tree"][2] == 3.5
    np.testing.assert_array_equal(loaded["tree"][0], tree)
    assert loaded["ids"].dtype == np.int64 and loaded["tree"][1].dtype == np.float64
