"""The real slides in CDFIS_TEST_DATA/slides (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cdfis_desktop.core.slides import FALLBACK_MPP, MissingMppWarning, open_slide

pytestmark = pytest.mark.realdata


def test_cmu_small_region(real_data: Path) -> None:
    with open_slide(real_data / "slides" / "CMU-1-Small-Region.svs") as slide:
        assert slide.format == "aperio" and slide.vendor == "aperio"
        assert slide.dimensions == (2220, 2967)
        assert slide.mpp == pytest.approx(0.499)
        assert slide.objective_power == 20
        assert slide.associated_image_names == ("label", "macro", "thumbnail")
        assert slide.associated_image("label").shape == (463, 387, 3)
        patch = slide.read_region_at_mpp(1000, 1000, 96, 96, 1.0)
        assert patch.shape == (96, 96, 3) and patch.std() > 5  # tissue, not blank


def test_tcga_without_mpp_warns_and_falls_back(real_data: Path) -> None:
    path = real_data / "slides" / "tcga-cr-7395-01a-01-ts1.svs"
    with pytest.warns(MissingMppWarning, match="tcga-cr-7395"):
        slide = open_slide(path)
    assert slide.mpp is None and slide.objective_power is None
    assert slide.effective_mpp == FALLBACK_MPP and slide.mpp_source == "fallback"
    assert slide.level_count == 2

    overridden = open_slide(path, mpp_override=0.25)
    assert overridden.mpp == 0.25 and overridden.mpp_source == "override"
    # At 0.25 µm/px, 1 µm/px is 4 level-0 px per output px: the same area as 0.5 -> 2x smaller.
    a = overridden.read_region_at_mpp(0, 0, 50, 50, 1.0)
    b = slide.read_region_at_mpp(0, 0, 100, 100, 1.0)
    assert np.abs(a.astype(int) - b[::2, ::2].astype(int)).mean() < 20
