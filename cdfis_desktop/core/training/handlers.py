"""Small handlers the engine calls at its events (step done, validation done, run end).

Each one owns one concern and has ``state_dict()``/``load_state_dict()`` when it keeps
counters, so a resumed run continues them exactly. Thread rules: used by the training
thread only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from cdfis_desktop.core.sampling import DrawRecord
from cdfis_desktop.core.storage import HistoryWriter
from cdfis_desktop.core.training.dynamics import StepDynamics


class HistoryRecorder:
    """Sends each step's :class:`DrawRecord` and training dynamics to the store's batched
    history writer.

    The writer flushes every ``flush_every_steps`` steps; the engine calls :meth:`flush`
    before every checkpoint so a resume never loses recorded steps.
    """

    def __init__(self, writer: HistoryWriter) -> None:
        self.writer = writer

    def on_step(
        self,
        step: int,
        epoch: int,
        patch_ids: np.ndarray,
        record: DrawRecord,
        dynamics: StepDynamics,
    ) -> None:
        """``patch_ids int64[n]``: the store patch id of each entry of ``record``;
        ``dynamics``: aligned with ``record``'s entries."""
        self.writer.record(
            step,
            epoch,
            patch_ids,
            record.score,
            record.probability,
            record.times_chosen,
            record.weight,
            label_probability=dynamics.label_probability,
            margin=dynamics.margin,
        )

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class ChosenTracker:
    """Which training indices were chosen at least once (``chosen_share`` for the GUI)."""

    def __init__(self, n_train: int) -> None:
        self.ever_chosen = np.zeros(n_train, dtype=bool)

    def on_step(self, record: DrawRecord) -> None:
        self.ever_chosen[record.dataset_index[record.times_chosen > 0]] = True

    @property
    def share(self) -> float:
        """Fraction of training indices chosen so far, in [0, 1]."""
        return float(self.ever_chosen.mean()) if self.ever_chosen.size else 0.0

    def state_dict(self) -> dict[str, Any]:
        return {"ever_chosen": torch.from_numpy(np.packbits(self.ever_chosen))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        bits = np.unpackbits(state["ever_chosen"].numpy())
        self.ever_chosen = bits[: self.ever_chosen.size].astype(bool)


class EarlyStopping:
    """Stop after ``patience`` validations in a row without a lower validation loss
    (``patience`` None: never). A nan loss never counts as an improvement."""

    def __init__(self, patience: int | None) -> None:
        self.patience = patience
        self.best_loss = math.inf
        self.bad_validations = 0

    def on_validation(self, val_loss: float) -> bool:
        """Record a validation; returns True when it is the best so far."""
        if val_loss < self.best_loss:
            self.best_loss = val_loss
            self.bad_validations = 0
            return True
        self.bad_validations += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad_validations >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best_loss": self.best_loss, "bad_validations": self.bad_validations}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_loss = float(state["best_loss"])
        self.bad_validations = int(state["bad_validations"])
