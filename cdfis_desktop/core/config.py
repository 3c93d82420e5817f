"""Frozen configuration dataclasses, their validation, and TOML/JSON round trips.

``RunConfig.to_dict()`` is what the store keeps as a run's full configuration; a run is
reproduced from ``RunConfig.from_dict()`` of it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from cdfis_desktop.core.errors import ConfigError

SAMPLER_RULES = ("uniform", "topk", "cdf", "bottomk")
SAMPLER_MODES = ("presample", "history", "prune")
SCORE_METRICS = ("loss", "gradnorm", "gradnorm_wb")
WEIGHTINGS = ("none", "unbiased", "power")
TISSUE_STAINS = ("auto", "brightfield", "fluorescence")
MODEL_NAMES = ("smallcnn", "resnet18", "resnet50")


@dataclass(frozen=True)
class SamplerConfig:
    """How mini-batches are chosen (see ``../METHOD`` in docs/method.md).

    rule: ``uniform`` | ``topk`` | ``cdf`` | ``bottomk``. mode: ``presample`` (score a
    uniform candidate batch fresh each step, as the paper) or ``history`` (draw from the
    dataset-wide CDF of each sample's latest score). metric: ``loss``, ``gradnorm``
    (last-layer bias gradient norm) or ``gradnorm_wb`` (weight + bias).

    Presample mode trains ``k = round(train_fraction * batch)`` rows per step, chosen from
    ``round(presample_ratio * k)`` scored candidates (``presample_ratio`` = candidates per
    trained row; ``train_fraction`` < 1 is how the cheaper variants back-propagate less
    than a batch). History mode rescores the ``refresh * batch`` stalest samples each step
    (0 = never; see docs/method.md). ``score_in_train_mode``: presample scores use the
    BatchNorm batch statistics (True) or the running ones (False). ``score_scale``: side
    length of the presample scoring input as a share of ``input_px`` (0.5: candidates are
    scored at half resolution, about a quarter of the forward cost; training stays at full
    resolution).

    Prune mode (epoch-level pruning, after InfoBatch) trains on passes over the training
    set from which each scored sample is dropped with probability ``prune_ratio * (1 -
    F(s))``, F the empirical CDF of the latest scores, and returns to the full data for
    the last ``prune_tail`` share of the run.

    floor: share of the uniform distribution mixed into p (0..1). weighting: ``none``,
    ``unbiased`` or ``power`` (loss weights; unbiased with and without replacement).
    warmup: ``none``, ``steps:N``, ``epochs:N``, ``loss:F`` (held-out loss below F x its
    initial value, the authors' rule) or ``variance:T`` (estimated variance reduction
    above T).
    """

    rule: str = "uniform"
    mode: str = "presample"
    metric: str = "loss"
    presample_ratio: float = 8.0
    floor: float = 0.0
    weighting: str = "none"
    power_exponent: float = 0.5
    replacement: bool = True
    warmup: str = "none"
    score_in_train_mode: bool = True
    train_fraction: float = 1.0
    refresh: float = 0.25
    score_scale: float = 1.0
    prune_ratio: float = 0.7
    prune_tail: float = 0.125

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplerConfig:
        """The configuration stored as ``dataclasses.asdict``; keys another version added
        are dropped and fields it lacked take their defaults."""
        return cls(**_known_fields(cls, data))

    def validate(self) -> None:
        _one_of("sampler rule", self.rule, SAMPLER_RULES)
        _one_of("sampler mode", self.mode, SAMPLER_MODES)
        _one_of("score metric", self.metric, SCORE_METRICS)
        _one_of("weighting", self.weighting, WEIGHTINGS)
        if self.presample_ratio < 1:
            raise ConfigError(
                f"presample ratio must be >= 1 (got {self.presample_ratio}): the candidate "
                "batch cannot be smaller than the training batch"
            )
        if not 0.0 <= self.floor <= 1.0:
            raise ConfigError(f"floor must be between 0 and 1 (got {self.floor})")
        if not 0.0 < self.power_exponent < 1.0 and self.weighting == "power":
            raise ConfigError(f"power exponent must be in (0, 1) (got {self.power_exponent})")
        if not 0.0 < self.train_fraction <= 1.0:
            raise ConfigError(
                f"train fraction must be in (0, 1] (got {self.train_fraction}): the share of "
                "the batch size that is back-propagated each step"
            )
        if self.train_fraction < 1.0 and self.mode != "presample":
            raise ConfigError(
                "a train fraction below 1 needs presample mode (the rows are chosen among "
                "scored candidates); use --mode presample or a train fraction of 1"
            )
        if not 0.0 < self.score_scale <= 1.0:
            raise ConfigError(
                f"score scale must be in (0, 1] (got {self.score_scale}): the side length of "
                "the scoring input as a share of the input size"
            )
        if self.score_scale < 1.0 and self.mode != "presample":
            raise ConfigError(
                "a score scale below 1 needs presample mode (history and prune scores come "
                "from the full-resolution training forward); use --mode presample"
            )
        if not 0.0 <= self.prune_ratio < 1.0:
            raise ConfigError(
                f"prune ratio must be in [0, 1) (got {self.prune_ratio}): the drop "
                "probability of the lowest score"
            )
        if not 0.0 <= self.prune_tail <= 1.0:
            raise ConfigError(
                f"prune tail must be between 0 and 1 (got {self.prune_tail}): the share of "
                "the run trained on the full data at the end"
            )
        if self.mode == "prune" and self.rule not in ("cdf", "uniform"):
            raise ConfigError(
                f"prune mode drops samples by the CDF rule; rule {self.rule!r} needs "
                "presample or history mode"
            )
        if not 0.0 <= self.refresh <= 4.0:
            raise ConfigError(
                f"refresh must be between 0 and 4 rescored rows per trained row (got "
                f"{self.refresh})"
            )


@dataclass(frozen=True)
class TilingConfig:
    """Patch grid: ``patch_px`` square patches at ``mpp`` µm/px, ``stride_px`` apart (in
    target-mpp pixels; default = patch_px), kept when at least ``min_tissue`` of the patch is
    tissue; labelled with a class covering at least ``min_label_coverage`` of the patch.
    ``stain`` picks the tissue-detection rule: ``brightfield`` (H&E, IHC), ``fluorescence``
    or ``auto`` (guessed per slide from its background; see ``core/tiling/tissue.py``)."""

    patch_px: int = 256
    mpp: float = 0.5
    stride_px: int | None = None
    min_tissue: float = 0.5
    min_label_coverage: float = 0.5
    stain: str = "auto"

    def validate(self) -> None:
        _one_of("stain", self.stain, TISSUE_STAINS)
        if self.patch_px < 8:
            raise ConfigError(f"patch size must be at least 8 px (got {self.patch_px})")
        if self.mpp <= 0:
            raise ConfigError(f"mpp must be positive (got {self.mpp})")
        if self.stride_px is not None and self.stride_px < 1:
            raise ConfigError(f"stride must be at least 1 px (got {self.stride_px})")
        for name, value in (
            ("min tissue", self.min_tissue),
            ("min label coverage", self.min_label_coverage),
        ):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be between 0 and 1 (got {value})")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run. Stored verbatim (``to_dict``) with the run.

    Stop after ``epochs`` epochs, or ``time_budget_s`` seconds of training (evaluation
    excluded), or ``max_steps`` steps, whichever comes first (``None`` = not used).
    device: ``auto`` (CUDA, then MPS, then CPU) or a torch device string.
    val_groups: patients (slide groups) held out for validation, the same for every seed
    (``None``: a seeded split by group, see ``core/training/splits.py``). test_groups:
    patients held out for testing (never trained on nor validated on); the test set is
    scored at the first validation at or after each training time in ``test_at_s`` (None:
    never).
    Validation runs at each epoch end, or every ``val_every_steps`` steps, or each time the
    training time passes a multiple of ``val_every_s`` seconds (at most one of the two).
    num_workers: worker processes that decode the patches before training (0: the
    training thread itself); each opens its own slide handles, the pixels do not depend on it.
    use_review: train with the project's review decisions (relabelled patches train with
    their new label, excluded ones not at all); ``review_as_of``: the Unix time whose
    decisions apply, set by the engine when a run starts (so a resume sees the same).
    """

    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    model: str = "smallcnn"
    batch_size: int = 128
    epochs: int | None = 1
    time_budget_s: float | None = None
    max_steps: int | None = None
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "auto"
    input_px: int = 96
    augment: bool = True
    num_workers: int = 0
    val_every_steps: int | None = None
    history_flush_steps: int = 20
    checkpoint_every_steps: int = 200
    early_stopping_patience: int | None = None
    weights_path: str | None = None
    val_groups: tuple[str, ...] | None = None
    test_groups: tuple[str, ...] | None = None
    test_at_s: tuple[float, ...] | None = None
    val_every_s: float | None = None
    use_review: bool = True
    review_as_of: float | None = None

    def validate(self) -> None:
        self.sampler.validate()
        _one_of("model", self.model, MODEL_NAMES)
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1 (got {self.batch_size})")
        if self.epochs is None and self.time_budget_s is None and self.max_steps is None:
            raise ConfigError("give a stopping rule: epochs, a time budget or a number of steps")
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1 (got {self.epochs})")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ConfigError(f"time budget must be positive (got {self.time_budget_s})")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"steps must be at least 1 (got {self.max_steps})")
        if self.num_workers < 0:
            raise ConfigError(f"workers must be 0 or more (got {self.num_workers})")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning rate must be positive (got {self.learning_rate})")
        if self.val_every_s is not None and self.val_every_s <= 0:
            raise ConfigError(f"validation cadence must be positive (got {self.val_every_s} s)")
        if self.val_every_s is not None and self.val_every_steps is not None:
            raise ConfigError("validate every N steps or every S seconds, not both")
        if self.test_at_s and not self.test_groups:
            raise ConfigError("test times are given but no test groups to score")
        if any(t < 0 for t in self.test_at_s or ()):
            raise ConfigError(f"test times must not be negative (got {self.test_at_s})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        data = dict(data)
        sampler = SamplerConfig.from_dict(data.pop("sampler", {}) or {})
        for key in ("val_groups", "test_groups", "test_at_s"):  # JSON stores lists
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(sampler=sampler, **_known_fields(cls, data))


def _known_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """Drop keys a newer version may have added, so old code can read new configs."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names and k != "sampler"}


def _one_of(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"unknown {what} {value!r}; choose one of: {', '.join(allowed)}")
