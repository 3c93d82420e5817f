"""Immutable reports yielded by :meth:`Trainer.iter_run` (plain numbers and numpy copies).

They hold no live tensors and no reference to the model, so a worker thread can hand them
to the GUI thread (queued signals) and the CLI can print them. Times: ``wall_s`` is
training time in seconds since the run started, evaluation excluded (the paper's
convention; it continues across a resume).

Epochs (one convention everywhere: store, reports, CLI, GUI, docs): ``epoch`` is the
0-based index of the epoch a step runs in, ``(step - 1) // steps_per_epoch``, the epoch
under which the store files the step's history, metrics and predictions. A validation
belongs to the epoch of the step it follows (the one at step 0, before training, to
epoch 0). ``epoch_progress`` is the fractional count of epochs trained so far.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cdfis_desktop.core.training.metrics import ClassificationMetrics


@dataclass(frozen=True)
class RunStarted:
    """The run is set up and about to train.

    ``resumed_from_step``: the checkpoint step a resumed run continues from (None = new
    run). ``split_method``: ``groups`` (``val_groups``), ``preset`` (stored split), ``group`` or
    ``spatial``; ``warning``: "" or a sentence for the user (e.g. the spatial fallback).
    ``steps_per_epoch``: ceil(n_train / batch). ``max_steps``: the step limit implied by
    epochs/steps (None when only a time budget limits the run).
    """

    run_id: int
    n_train: int
    n_val: int
    device: str
    split_method: str
    warning: str
    steps_per_epoch: int
    max_steps: int | None
    resumed_from_step: int | None


@dataclass(frozen=True)
class LoadProgress:
    """Patches being decoded before the first step (:meth:`PatchDataset.iter_load`):
    ``done`` of ``total`` patches; ``message`` says where to (RAM or the disk cache).
    Sent about every percent; none when the patches are in RAM or cached already."""

    run_id: int
    done: int
    total: int
    message: str


@dataclass(frozen=True)
class StepReport:
    """One training step done (``step`` counts from 1) in epoch ``epoch`` (0-based);
    ``epoch_progress`` = step / steps per epoch.

    ``candidate_scores float32[n]``: the scores the sampler saw at this step (the presample
    candidates, or the chosen rows in history mode and in the uniform phase), for the score
    histogram/CDF plot. ``chosen_share``: fraction of training patches chosen at least
    once so far. ``is_active``: importance sampling is switched on. ``samples_forwarded``
    / ``samples_backpropagated``: rows this step sent through the model (scored and
    trained) / trained on, all processes together; ``samples_per_s`` counts trained rows.
    """

    run_id: int
    step: int
    epoch: int
    epoch_progress: float
    wall_s: float
    train_loss: float
    samples_per_s: float
    is_active: bool
    candidate_scores: np.ndarray
    chosen_share: float
    samples_forwarded: int = 0
    samples_backpropagated: int = 0


@dataclass(frozen=True)
class EpochReport:
    """A validation pass (at each epoch end, every ``val_every_steps`` steps or
    ``val_every_s`` training seconds, and once at step 0).

    ``epoch``: the 0-based epoch of ``step`` (see the module docstring: after the first
    epoch's last step it is 0, as in the store and the GUI's time slider). Metrics as in :mod:`.metrics` (nan when undefined).
    ``switched_on``: importance sampling switched on at this validation (warm-up ended).
    ``is_best``: lowest validation loss so far. ``samples_forwarded`` /
    ``samples_backpropagated``: rows sent through the model (scoring passes included) /
    rows trained on since the run started, all processes. ``test``: the test set's metrics
    when it was scored at this validation (``RunConfig.test_at_s``), else None.
    """

    run_id: int
    step: int
    epoch: int
    wall_s: float
    val_loss: float
    val_accuracy: float
    val_balanced_accuracy: float
    val_auc: float
    switched_on: bool
    is_best: bool
    samples_forwarded: int = 0
    samples_backpropagated: int = 0
    test: ClassificationMetrics | None = None


@dataclass(frozen=True)
class RunFinished:
    """The run ended. ``status``: ``finished``, ``cancelled`` or ``failed``; ``message``:
    the error for ``failed``, how to resume for ``cancelled``, else "".
    ``checkpoint``: the path of the last checkpoint written ("" when none)."""

    run_id: int
    status: str
    step: int
    wall_s: float
    message: str
    checkpoint: str


Report = RunStarted | LoadProgress | StepReport | EpochReport | RunFinished
