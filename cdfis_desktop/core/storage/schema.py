"""The project database schema (SQLAlchemy 2.0 typed declarative tables).

The ORM classes are used for the small, rare writes (slides, runs, checkpoints); the bulk
paths (patches, importance history, aggregates) use ``Model.__table__`` with Core or
driver-level ``executemany``. Times are Unix seconds (float, UTC). Coordinates are level-0
pixels, top-left corner of a patch.

Compactness (target: <= 40 MB per million history rows, aggregates included):
``history`` is a WITHOUT ROWID table, so no hidden rowid is stored. It is keyed by (run,
block, patch, step offset), a block being the first step of one flushed batch: each flush
appends at the end of the B-tree (full pages, no secondary index), "all steps of one
patch" is one primary-key seek per block and "all patches of one step" a scan of one
block. Scores and probabilities are float32 values
(the sampler's dtype) stored losslessly as their 32-bit patterns in 4-byte integers.
The per-epoch aggregates take one ``run_aggregates`` row per (run, epoch) holding packed
numpy arrays indexed by patch id (24 bytes per patch of the project, see
:mod:`.aggregates`), whatever the number of history rows.

``SCHEMA_VERSION`` is bumped by every change; :mod:`.migrations` upgrades older files.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 6
"""Version written by this code. 1 = prototype layout (no patient group, no predictions);
2 = history rows keyed by (run, step, patch) with REAL scores and a (run, patch, step)
index; 3 = aggregates as one ``epoch_stats`` row per (run, epoch, patch); 4 = a stored
cumulative ``run_aggregates`` row (``epoch = -1``) rewritten at every flush and a virtual
``history.step`` column; 5 = one row per epoch plus the sum of the earlier epochs
(``epoch = -2``), history without the computed column and the foreign key; 6 = training
dynamics (each trained row's label probability and margin in ``history``, their
per-epoch sums in ``run_aggregates``), stored data maps, review decisions and each
patch's source file name (see :mod:`.migrations`)."""

ALL_EPOCHS = -1
"""The epoch argument that asks for the cumulative aggregates of all epochs so far (not a
stored row since version 5, see :mod:`.aggregates`)."""


def encode_f32(values: np.ndarray) -> list[int]:
    """float[n] -> the float32 bit patterns as Python ints (int32 range), for SQLite."""
    return np.asarray(values, dtype=np.float32).view(np.int32).tolist()


def decode_f32(bits: np.ndarray) -> np.ndarray:
    """int[n] bit patterns stored by :func:`encode_f32` -> float32[n] (exact round trip)."""
    return np.asarray(bits, dtype=np.int64).astype(np.int32).view(np.float32)


NAN_BITS = int(np.array(np.nan, dtype=np.float32).view(np.int32))
"""The float32 NaN bit pattern: what SQL reads in place of a NULL float32 column (``COALESCE(
column, NAN_BITS)``), so :func:`decode_f32` gives NaN there."""


class Base(DeclarativeBase):
    """Declarative base of every table of the project database."""


class Meta(Base):
    """Key/value facts about the database itself: ``schema_version``, ``app_version``."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ClassName(Base):
    """Class label names: ``patches.label`` indexes this table (-1 = unlabelled)."""

    __tablename__ = "class_names"
    label: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(200))


class Slide(Base):
    """A whole-slide image. ``mpp`` is µm/px at level 0 (None when the file has none)."""

    __tablename__ = "slides"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(128), index=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    mpp: Mapped[float | None] = mapped_column(Float, nullable=True)
    mpp_overridden: Mapped[bool] = mapped_column(Boolean, default=False)
    vendor: Mapped[str] = mapped_column(String(64), default="")
    group_name: Mapped[str] = mapped_column(String(200), default="")
    added_at: Mapped[float] = mapped_column(Float)


class Patch(Base):
    """A square patch: level-0 top-left corner, ``l0_size`` level-0 px side, read at ``mpp``
    to ``patch_px`` px. ``split`` is ``train``/``val``/``test`` or None (unassigned).
    ``source`` is the image file a patch-set import read the patch from (its path as the
    patch-set CSV names it; None for patches tiled from a slide)."""

    __tablename__ = "patches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slide_id: Mapped[int] = mapped_column(ForeignKey("slides.id", ondelete="CASCADE"))
    l0_x: Mapped[int] = mapped_column(Integer)
    l0_y: Mapped[int] = mapped_column(Integer)
    l0_size: Mapped[int] = mapped_column(Integer)
    patch_px: Mapped[int] = mapped_column(Integer)
    mpp: Mapped[float] = mapped_column(Float)
    label: Mapped[int] = mapped_column(SmallInteger, default=-1)
    tissue_fraction: Mapped[float] = mapped_column(Float)
    split: Mapped[str | None] = mapped_column(String(8), nullable=True)
    source: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_patches_slide", "slide_id"), Index("ix_patches_split", "split"))


class Run(Base):
    """A training run. ``config`` is ``RunConfig.to_dict()`` as JSON; ``versions`` is JSON
    (python, torch, cdfis). ``writer_pid``/``writer_host`` name the process that holds the
    run's lock while it is ``running`` (see :mod:`.locks`)."""

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    config: Mapped[str] = mapped_column(Text)
    sampler_rule: Mapped[str] = mapped_column(String(16))
    sampler_mode: Mapped[str] = mapped_column(String(16))
    metric: Mapped[str] = mapped_column(String(16))
    seed: Mapped[int] = mapped_column(Integer)
    device: Mapped[str] = mapped_column(String(32))
    n_train: Mapped[int] = mapped_column(Integer)
    versions: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    switch_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    writer_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    writer_host: Mapped[str | None] = mapped_column(String(255), nullable=True)


class History(Base):
    """One row per (run, step, scored patch): the sampler's view of that patch at that step.

    ``block`` is the first step of the flushed batch holding the row and ``step_offset`` the
    step minus ``block`` (the step is ``block + step_offset``).
    ``score_bits``/``probability_bits`` hold the float32 score and probability as their
    IEEE-754 bit patterns read as int32 (decode with ``np.int32 -> view(np.float32)``, see
    :func:`decode_f32`); SQL cannot do arithmetic on them. ``weight`` is 0 where
    the patch was not chosen; SQLite stores whole REALs (0 weights, 0/1 counts) as 0-1 byte
    integers. The epoch of each step is in :class:`HistoryStep`.

    ``label_probability_bits``/``margin_bits`` (float32 bit patterns, NULL where the patch
    was not trained in that step): the training forward pass's softmax probability of the
    patch's label and its margin, the label's logit minus the largest other logit (Pleiss
    et al. 2020), averaged over the rows of the patch in the step; a NULL costs no bytes.

    ``run_id`` has no foreign key: checking it on every insert cost ~10 % of the insert
    time. Rows are only written for an existing run (:class:`HistoryWriter`), and code
    that deletes a run or its steps must delete its history rows too."""

    __tablename__ = "history"
    run_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    block: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    patch_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    step_offset: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    score_bits: Mapped[int] = mapped_column(Integer)
    probability_bits: Mapped[int] = mapped_column(Integer)
    times_chosen: Mapped[int] = mapped_column(Integer)
    weight: Mapped[float] = mapped_column(Float)
    label_probability_bits: Mapped[int | None] = mapped_column(Integer, nullable=True)
    margin_bits: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = ({"sqlite_with_rowid": False},)


class HistoryStep(Base):
    """One row per recorded step of a run: its epoch and the ``history.block`` holding it."""

    __tablename__ = "history_steps"
    run_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    step: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    epoch: Mapped[int] = mapped_column(Integer)
    block: Mapped[int] = mapped_column(Integer)

    __table_args__ = ({"sqlite_with_rowid": False},)


class RunAggregate(Base):
    """Per-patch aggregates of one epoch (``epoch >= 0``) or of every epoch but the latest
    (``epoch == aggregates.EARLIER_EPOCHS``) of a run, as packed arrays indexed by patch id
    (layout and dtypes: :mod:`.aggregates`); written in the transaction that writes the
    history."""

    __tablename__ = "run_aggregates"
    run_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    n_patches: Mapped[int] = mapped_column(Integer)
    times_scored: Mapped[bytes] = mapped_column(LargeBinary)
    times_chosen: Mapped[bytes] = mapped_column(LargeBinary)
    score_sum: Mapped[bytes] = mapped_column(LargeBinary)
    last_score: Mapped[bytes] = mapped_column(LargeBinary)
    last_step: Mapped[bytes] = mapped_column(LargeBinary)
    label_seen: Mapped[bytes] = mapped_column(LargeBinary)
    label_correct: Mapped[bytes] = mapped_column(LargeBinary)
    label_probability_sum: Mapped[bytes] = mapped_column(LargeBinary)
    margin_sum: Mapped[bytes] = mapped_column(LargeBinary)


METRIC_COLUMNS = (
    "train_loss",
    "val_loss",
    "val_accuracy",
    "val_balanced_accuracy",
    "val_auc",
    "samples_per_s",
)
"""The optional values of a :class:`Metric` row (NULL where not logged)."""


class Metric(Base):
    """Metrics time series; one row per (run, step), values merged when logged twice."""

    __tablename__ = "metrics"
    run_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    step: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    epoch: Mapped[int] = mapped_column(Integer)
    wall_s: Mapped[float] = mapped_column(Float)
    train_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    val_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    val_accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)
    val_balanced_accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)
    val_auc: Mapped[float | None] = mapped_column(Float, nullable=True)
    samples_per_s: Mapped[float | None] = mapped_column(Float, nullable=True)


class Checkpoint(Base):
    """A checkpoint file written by a run (path relative to the project folder if inside)."""

    __tablename__ = "checkpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class Prediction(Base):
    """Per-patch prediction of a run at an epoch's validation/inference pass."""

    __tablename__ = "predictions"
    run_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    patch_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    predicted_label: Mapped[int] = mapped_column(SmallInteger)
    probability: Mapped[float] = mapped_column(Float)

    __table_args__ = ({"sqlite_with_rowid": False},)


class DataMap(Base):
    """A run's stored data map (training dynamics per patch, see :mod:`.datamaps`): packed
    float32 arrays indexed by patch id, computed from the run's per-epoch aggregates up to
    ``last_step`` (recomputed when the run has recorded later steps)."""

    __tablename__ = "data_maps"
    run_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    last_step: Mapped[int] = mapped_column(Integer)
    n_epochs: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[float] = mapped_column(Float)
    n_patches: Mapped[int] = mapped_column(Integer)
    epochs_seen: Mapped[bytes] = mapped_column(LargeBinary)
    confidence: Mapped[bytes] = mapped_column(LargeBinary)
    variability: Mapped[bytes] = mapped_column(LargeBinary)
    correctness: Mapped[bytes] = mapped_column(LargeBinary)
    aum: Mapped[bytes] = mapped_column(LargeBinary)
    final_loss: Mapped[bytes] = mapped_column(LargeBinary)
    region: Mapped[bytes] = mapped_column(LargeBinary)


class ReviewDecision(Base):
    """One review decision on a patch (never deleted: an undo sets ``undone_at``).

    ``action``: ``confirm``, ``relabel``, ``exclude`` or ``skip``; ``label`` the label the
    patch trains with after the decision (the new one for ``relabel``, the original
    otherwise; None for ``exclude``); ``original_label`` the patch's stored label when
    decided (``patches.label`` itself is never changed); ``reason`` why (for ``exclude``
    one of artefact/pen/blur/out-of-focus, else a free note); ``reviewer`` who; ``run_id``
    the run whose queue showed the patch (None when applied without one). Times are Unix
    seconds."""

    __tablename__ = "review_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patch_id: Mapped[int] = mapped_column(ForeignKey("patches.id", ondelete="CASCADE"))
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), nullable=True
    )
    action: Mapped[str] = mapped_column(String(16))
    label: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    original_label: Mapped[int] = mapped_column(SmallInteger)
    reason: Mapped[str] = mapped_column(Text, default="")
    reviewer: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[float] = mapped_column(Float)
    undone_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (Index("ix_review_decisions_patch", "patch_id"),)
