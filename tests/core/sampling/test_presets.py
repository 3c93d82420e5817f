"""The sampler preset registry: one home, applied the same way everywhere."""

from __future__ import annotations

import pytest

from cdfis_desktop.core.config import SamplerConfig
from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.experiments import compare
from cdfis_desktop.core.sampling.presets import SAMPLER_PRESETS, preset, preset_config


def test_every_preset_is_a_valid_documented_configuration() -> None:
    for name, entry in SAMPLER_PRESETS.items():
        assert entry.name == name and entry.summary and entry.source
        preset_config(name).validate()


def test_a_preset_sets_its_fields_and_keeps_the_rest() -> None:
    base = SamplerConfig(metric="gradnorm", floor=0.1, warmup="epochs:1", presample_ratio=4)
    history = preset_config("cdf-history", base)
    assert (history.rule, history.mode) == ("cdf", "history")
    assert (history.metric, history.floor, history.warmup) == ("gradnorm", 0.1, "epochs:1")
    assert preset_config("uniform", base).warmup == "none"  # no phase to warm up for


def test_aliases_and_unknown_names() -> None:
    assert preset("cdf") is SAMPLER_PRESETS["cdf-presample"]
    with pytest.raises(ConfigError, match="unknown sampler preset 'best'"):
        preset("best")


def test_compare_uses_the_same_registry() -> None:
    assert compare.SAMPLER_PRESETS is SAMPLER_PRESETS
