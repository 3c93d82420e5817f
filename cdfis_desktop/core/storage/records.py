"""Immutable values returned by the store's queries (plain Python values and numpy arrays).

They are safe to hand from a worker thread to the GUI thread: nothing in them refers to
the database or to a live session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from cdfis_desktop.core.slides import SlideReader

RUN_STATUSES = ("running", "finished", "interrupted", "failed", "cancelled")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SlideRecord:
    """A slide of the project. ``path`` as stored (relative to the project folder when the
    slide lies inside it); ``file`` the absolute path to open; ``width``/``height`` in
    level-0 px; ``mpp`` µm/px at level 0 (None when unknown), ``mpp_overridden`` when the
    user set it; ``group`` is the patient/case id used to split by patient."""

    id: int
    path: str
    fingerprint: str
    width: int
    height: int
    mpp: float | None
    mpp_overridden: bool
    vendor: str
    group: str
    file: Path

    @property
    def mpp_override(self) -> float | None:
        """The µm/px to open the slide with instead of its metadata (None: use the file's)."""
        return self.mpp if self.mpp_overridden else None

    @property
    def name(self) -> str:
        """A short display name: the file name without folders."""
        return self.file.name

    def open(self) -> SlideReader:
        """Open the slide file with the project's mpp override: how training, the GUI and
        reports open a registered slide. One handle per thread (see ``core.slides``);
        raises :class:`~cdfis_desktop.core.errors.SlideOpenError`."""
        from cdfis_desktop.core.slides import open_slide

        return open_slide(self.file, mpp_override=self.mpp_override)


@dataclass(frozen=True)
class PatchTable:
    """Patches as parallel numpy arrays, all of length n, ordered by id.

    id, slide_id: int64; l0_x, l0_y (top-left corner), l0_size (side): int64 level-0 px;
    patch_px: int32 (side at ``mpp``); mpp: float32 µm/px; label: int16 (-1 = unlabelled);
    tissue_fraction: float32 in [0, 1]; split: object array of ``str | None``; source:
    object array of ``str | None``, the image file of a patch-set import.
    """

    id: np.ndarray
    slide_id: np.ndarray
    l0_x: np.ndarray
    l0_y: np.ndarray
    l0_size: np.ndarray
    patch_px: np.ndarray
    mpp: np.ndarray
    label: np.ndarray
    tissue_fraction: np.ndarray
    split: np.ndarray
    source: np.ndarray

    def __len__(self) -> int:
        return int(self.id.shape[0])


@dataclass(frozen=True)
class SlideMeasurements:
    """Everything a run recorded about the patches of one slide, read in one snapshot.

    Per patch, ordered by id (all ``[n]``): ``patch_id`` int64; ``l0_x``, ``l0_y``,
    ``l0_size`` int64 (level-0 px, top-left corner); ``is_train`` bool (split ``train``);
    ``label`` int64 (-1 = unlabelled); ``times_scored``, ``times_chosen`` int64 (0 when
    never); ``score_sum`` float64 and ``last_score`` float64 (0 when never scored);
    ``prediction`` int64 (-1 = none) and ``prediction_probability`` float64 (NaN = none)
    from ``prediction_epoch``; training dynamics (:mod:`.aggregates`): ``label_seen``,
    ``label_correct`` int64 and ``label_probability_sum``, ``margin_sum`` float64 (0 when
    never trained); ``region`` int64 the data-map region from the run's stored data map
    (0 easy, 1 ambiguous, 2 hard; -1 none or no map stored).

    Per run: ``epoch`` the aggregates are of (None = cumulative over all epochs so far);
    ``run_draws`` the draws of the run in that span over *all* its patches (sum of
    ``times_chosen``, the C of docs/method.md); ``n_train`` its training patches;
    ``score_metric`` what it scored patches by (``loss``, ``gradnorm``, ``gradnorm_wb``);
    ``prediction_epoch`` the epoch of the predictions (None when there are none).
    Derived values (favour, mean score) come from :mod:`cdfis_desktop.core.statistics`.
    """

    run_id: int
    slide_id: int
    epoch: int | None
    patch_id: np.ndarray
    l0_x: np.ndarray
    l0_y: np.ndarray
    l0_size: np.ndarray
    is_train: np.ndarray
    label: np.ndarray
    times_scored: np.ndarray
    times_chosen: np.ndarray
    score_sum: np.ndarray
    last_score: np.ndarray
    prediction: np.ndarray
    prediction_probability: np.ndarray
    prediction_epoch: int | None
    run_draws: int
    n_train: int
    score_metric: str
    label_seen: np.ndarray
    label_correct: np.ndarray
    label_probability_sum: np.ndarray
    margin_sum: np.ndarray
    region: np.ndarray

    def __len__(self) -> int:
        return int(self.patch_id.shape[0])


@dataclass(frozen=True)
class PatchStat:
    """Aggregates of one patch in a run (for an epoch, or cumulative when ``epoch`` is None).

    ``favour = times_chosen - expected_uniform`` (see docs/method.md, "Favoured and ignored
    patches"); ``mean_score``/``last_score`` are NaN when the patch was never scored."""

    patch_id: int
    slide_id: int
    l0_x: int
    l0_y: int
    l0_size: int
    label: int
    times_scored: int
    times_chosen: int
    expected_uniform: float
    favour: float
    mean_score: float
    last_score: float
    epoch: int | None


@dataclass(frozen=True)
class PatchHistory:
    """Every recorded step of one patch in a run, ordered by step: step int64[n], epoch
    int64[n], score/probability/weight float32[n], times_chosen int32[n];
    label_probability/margin float32[n]: the training dynamics where the step trained on
    the patch, NaN elsewhere (see :class:`~.schema.History`)."""

    patch_id: int
    step: np.ndarray
    epoch: np.ndarray
    score: np.ndarray
    probability: np.ndarray
    times_chosen: np.ndarray
    weight: np.ndarray
    label_probability: np.ndarray
    margin: np.ndarray


@dataclass(frozen=True)
class ScoreAges:
    """How old the sampler's scores were at the end of each epoch of a run.

    A patch's score age at step s is s minus the last step that recorded a score for it
    (the history records every score a sampler observes, so this is the age of the score
    the sampler held). Per epoch with history, ascending: ``epoch`` int64[E], ``step``
    int64[E] (its last recorded step), ``median_steps`` / ``p90_steps`` float64[E] (the
    median and 90th percentile of the ages, in steps, over the patches scored so far) and
    ``scored`` int64[E] (how many patches those are).
    """

    epoch: np.ndarray
    step: np.ndarray
    median_steps: np.ndarray
    p90_steps: np.ndarray
    scored: np.ndarray


@dataclass(frozen=True)
class CheckpointRecord:
    """A registered checkpoint; ``path`` is absolute."""

    id: int
    run_id: int
    step: int
    epoch: int
    path: str
    created_at: float


@dataclass(frozen=True)
class RunSummary:
    """One line of the runs table. Times are Unix seconds; ``duration_s`` is end - start
    (now - start while running; None when interrupted); ``steps`` is the last step written
    (history or metrics), None before the first; ``best_val_accuracy`` None if never
    validated. ``config`` is the stored ``RunConfig.to_dict()``."""

    id: int
    name: str
    status: str
    sampler_rule: str
    sampler_mode: str
    metric: str
    seed: int
    device: str
    n_train: int
    steps: int | None
    best_val_accuracy: float | None
    duration_s: float | None
    started_at: float
    ended_at: float | None
    switch_step: int | None
    error: str | None
    versions: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def sampler(self) -> str:
        """Short label, e.g. ``cdf/presample/loss``."""
        return f"{self.sampler_rule}/{self.sampler_mode}/{self.metric}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (used by ``cdfis runs --json``)."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "sampler": self.sampler,
            "sampler_rule": self.sampler_rule,
            "sampler_mode": self.sampler_mode,
            "metric": self.metric,
            "seed": self.seed,
            "device": self.device,
            "n_train": self.n_train,
            "steps": self.steps,
            "best_val_accuracy": self.best_val_accuracy,
            "duration_s": self.duration_s,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "switch_step": self.switch_step,
            "error": self.error,
            "versions": self.versions,
            "config": self.config,
        }


@dataclass(frozen=True)
class RunComparison:
    """Several runs side by side: their summaries and each run's metric series
    (``metrics[run_id]`` is what :meth:`Project.metrics` returns for it)."""

    summaries: list[RunSummary]
    metrics: dict[int, dict[str, np.ndarray]]


@dataclass(frozen=True)
class StoredDataMap:
    """A run's stored data map (see :mod:`.datamaps`): ``arrays`` name -> read-only numpy
    array indexed by patch id; ``last_step`` the run's last history step it was computed
    from, ``n_epochs`` the epochs folded in, ``computed_at`` Unix seconds; ``fresh`` True
    while the run has recorded no later step."""

    run_id: int
    last_step: int
    n_epochs: int
    computed_at: float
    arrays: dict[str, np.ndarray]
    fresh: bool


REVIEW_ACTIONS = ("confirm", "relabel", "exclude", "skip")
"""What a reviewer decides about a patch (``undo`` takes the latest decision back)."""
EXCLUDE_REASONS = ("artefact", "pen", "blur", "out-of-focus")
"""Why a patch is excluded from training."""


@dataclass(frozen=True)
class ReviewInput:
    """One decision to store (see :class:`~.schema.ReviewDecision`): ``action`` one of
    :data:`REVIEW_ACTIONS` or ``undo``; ``label`` the new label of a ``relabel``;
    ``reason`` one of :data:`EXCLUDE_REASONS` for ``exclude``, else an optional note;
    ``reviewer`` who decides; ``run_id`` the run whose queue showed the patch."""

    patch_id: int
    action: str
    reviewer: str
    label: int | None = None
    reason: str = ""
    run_id: int | None = None


@dataclass(frozen=True)
class ReviewTable:
    """Review decisions as parallel arrays of length n, ordered by decision time then id:
    ``id``, ``patch_id`` int64; ``run_id`` int64 (-1: none); ``action``, ``reason``,
    ``reviewer`` object (str); ``label`` int64 (the label the patch trains with after the
    decision; -1: excluded), ``original_label`` int64; ``decided_at`` float64 Unix s;
    ``undone_at`` float64 (NaN: in force)."""

    id: np.ndarray
    patch_id: np.ndarray
    run_id: np.ndarray
    action: np.ndarray
    label: np.ndarray
    original_label: np.ndarray
    reason: np.ndarray
    reviewer: np.ndarray
    decided_at: np.ndarray
    undone_at: np.ndarray

    def __len__(self) -> int:
        return int(self.id.shape[0])
