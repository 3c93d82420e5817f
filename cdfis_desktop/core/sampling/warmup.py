"""Warm-up rules: when importance sampling switches on (once, for good).

``SamplerConfig.warmup`` strings:

- ``none``: on from the first step (switch step 0).
- ``steps:N``: on at the first update with ``step >= N``.
- ``epochs:N``: on at the first update with ``epoch >= N`` (an epoch = ceil(len(train)/b) steps).
- ``loss:F``: on when the held-out loss falls below ``F`` x its initial value (the
  authors' rule; 0 < F < 1 in practice). The first ``val_loss`` given is the initial one, so
  the engine should evaluate before the first step.
- ``variance:T``: on when the estimated variance reduction exceeds ``T`` (> 1), after
  Katharopoulos and Fleuret (2018). For sampling with p_i proportional to the score s_i
  and unbiased weights, the second moment of the weighted gradient estimate shrinks by the
  factor ``tau = n * sum(p_i^2)`` (>= 1; 1 = scores all equal, nothing to gain) if the
  scores are the gradient norms. tau is measured on every observed batch of scores and
  smoothed with an exponential moving average (momentum 0.9).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.sampling.draw import importance_weights

WARMUP_KINDS = ("none", "steps", "epochs", "loss", "variance")
VARIANCE_MOMENTUM = 0.9


@dataclass(frozen=True)
class WarmupRule:
    """A parsed warm-up string: ``kind`` (one of :data:`WARMUP_KINDS`) and its ``value``."""

    kind: str
    value: float = 0.0

    @classmethod
    def parse(cls, text: str) -> WarmupRule:
        """Parse ``none``, ``steps:N``, ``epochs:N``, ``loss:F`` or ``variance:T``.

        Raises :class:`ConfigError` naming the string and the accepted forms.
        """
        forms = "none, steps:N, epochs:N, loss:F or variance:T"
        kind, _, value_text = text.strip().partition(":")
        if kind == "none" and not value_text:
            return cls("none")
        if kind not in WARMUP_KINDS or kind == "none" or not value_text:
            raise ConfigError(f"unknown warm-up rule {text!r}; use {forms}")
        try:
            value = float(value_text)
        except ValueError:
            raise ConfigError(f"warm-up rule {text!r}: {value_text!r} is not a number") from None
        if kind in ("steps", "epochs") and (value < 0 or value != int(value)):
            raise ConfigError(f"warm-up rule {text!r}: {kind} must be a whole number >= 0")
        if kind == "loss" and not value > 0:
            raise ConfigError(f"warm-up rule {text!r}: the loss fraction must be positive")
        if kind == "variance" and not value >= 1:
            raise ConfigError(f"warm-up rule {text!r}: the variance reduction must be >= 1")
        return cls(kind, value)


def variance_reduction(importance: torch.Tensor) -> float:
    """tau = n * sum(p_i^2) for p proportional to non-negative importances ``float[n]``."""
    total = importance.sum()
    if importance.numel() == 0 or not bool(total > 0):
        return 1.0
    p = importance / total
    return float(importance.numel() * p.pow(2).sum())


class WarmupState:
    """Tracks a :class:`WarmupRule` until it switches importance sampling on.

    Not thread-safe: owned by the sampler, driven by the training thread.
    """

    def __init__(self, rule: WarmupRule) -> None:
        self.rule = rule
        self.active = rule.kind == "none"
        self.switch_step: int | None = 0 if self.active else None
        self.initial_val_loss: float | None = None
        self.variance_ema: float | None = None

    def observe(self, scores: torch.Tensor) -> None:
        """Feed the scores ``float[n]`` of one observed batch (used by the variance rule)."""
        if self.active or self.rule.kind != "variance" or scores.numel() < 2:
            return
        tau = variance_reduction(importance_weights(scores.detach().to("cpu")))
        if self.variance_ema is None:
            self.variance_ema = tau
        else:
            self.variance_ema = (
                VARIANCE_MOMENTUM * self.variance_ema + (1 - VARIANCE_MOMENTUM) * tau
            )

    def update(self, *, step: int, epoch: int, val_loss: float | None = None) -> bool:
        """Check the rule; returns True only at the update that switches it on."""
        if self.active:
            return False
        kind, value = self.rule.kind, self.rule.value
        if kind == "loss" and val_loss is not None and self.initial_val_loss is None:
            self.initial_val_loss = float(val_loss)
            return False
        on = (
            (kind == "steps" and step >= value)
            or (kind == "epochs" and epoch >= value)
            or (
                kind == "loss"
                and val_loss is not None
                and self.initial_val_loss is not None
                and val_loss < value * self.initial_val_loss
            )
            or (kind == "variance" and self.variance_ema is not None and self.variance_ema > value)
        )
        if on:
            self.active = True
            self.switch_step = int(step)
        return on

    def state_dict(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "switch_step": self.switch_step,
            "initial_val_loss": self.initial_val_loss,
            "variance_ema": self.variance_ema,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.active = bool(state["active"])
        self.switch_step = state["switch_step"]
        self.initial_val_loss = state["initial_val_loss"]
        self.variance_ema = state["variance_ema"]
