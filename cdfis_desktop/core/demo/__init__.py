"""Synthetic H&E-like demo slides with matching QuPath annotations (for ``cdfis demo``,
tests and benchmarks)."""

from __future__ import annotations

from cdfis_desktop.core.demo.generate import DemoSlide, demo_annotations, generate_demo_slides
from cdfis_desktop.core.demo.synthetic import SyntheticSlide

__all__ = ["DemoSlide", "SyntheticSlide", "demo_annotations", "generate_demo_slides"]
