"""Warm-up rules: parsing, switching once, recording the step."""

from __future__ import annotations

import pytest
import torch

from cdfis_desktop.core.config import SamplerConfig
from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.sampling import WarmupRule, make_sampler
from cdfis_desktop.core.sampling.warmup import WarmupState, variance_reduction


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("none", "none", 0.0),
        ("steps:100", "steps", 100),
        ("epochs:2", "epochs", 2),
        ("loss:0.5", "loss", 0.5),
        ("variance:1.5", "variance", 1.5),
    ],
)
def test_parse(text: str, kind: str, value: float) -> None:
    assert WarmupRule.parse(text) == WarmupRule(kind, value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("later", "unknown warm-up rule"),
        ("steps:", "unknown warm-up rule"),
        ("steps:abc", "not a number"),
        ("steps:1.5", "whole number"),
        ("loss:0", "positive"),
        ("variance:0.5", ">= 1"),
        ("none:3", "unknown warm-up rule"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        WarmupRule.parse(text)


def test_bad_warmup_in_config_is_rejected_by_make_sampler() -> None:
    with pytest.raises(ConfigError, match="warm-up"):
        make_sampler(SamplerConfig(rule="cdf", warmup="soon"), 100, 10, 0)


def test_steps_and_epochs() -> None:
    state = WarmupState(WarmupRule.parse("steps:3"))
    assert [state.update(step=s, epoch=0) for s in range(5)] == [False, False, False, True, False]
    assert state.active and state.switch_step == 3
    state = WarmupState(WarmupRule.parse("epochs:2"))
    assert not state.update(step=10, epoch=1)
    assert state.update(step=20, epoch=2) and state.switch_step == 20


def test_loss_rule_uses_first_value_as_initial() -> None:
    state = WarmupState(WarmupRule.parse("loss:0.5"))
    assert not state.update(step=0, epoch=0, val_loss=2.0)
    assert not state.update(step=5, epoch=0)  # no evaluation this step
    assert not state.update(step=10, epoch=0, val_loss=1.2)
    assert state.update(step=15, epoch=0, val_loss=0.9)
    assert state.switch_step == 15
    assert not state.update(step=20, epoch=0, val_loss=5.0)  # one way
    assert state.active


def test_variance_rule() -> None:
    assert variance_reduction(torch.ones(10, dtype=torch.float64)) == pytest.approx(1.0)
    spiky = torch.tensor([10.0] + [0.1] * 9, dtype=torch.float64)
    assert variance_reduction(spiky) > 5
    state = WarmupState(WarmupRule.parse("variance:2"))
    state.observe(torch.ones(10, dtype=torch.float64))
    assert not state.update(step=1, epoch=0)
    for step in range(2, 40):
        state.observe(spiky)
        if state.update(step=step, epoch=0):
            break
    assert state.active and 2 < state.switch_step < 40


def test_sampler_records_switch_and_uniform_never_switches() -> None:
    sampler = make_sampler(SamplerConfig(rule="cdf", warmup="steps:2"), 100, 10, 0)
    assert not sampler.is_active and sampler.switch_step is None
    assert not sampler.plan(0, 0).needs_scores
    assert sampler.update_warmup(step=2, epoch=0)
    assert sampler.is_active and sampler.switch_step == 2
    assert sampler.plan(2, 0).needs_scores
    uniform = make_sampler(SamplerConfig(rule="uniform"), 100, 10, 0)
    assert not uniform.update_warmup(step=5, epoch=5)
    assert not uniform.is_active and not uniform.plan(0, 0).needs_scores
