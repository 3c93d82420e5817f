"""Tissue detection on the 34 real tiles of CDFIS_TEST_DATA/tiles_tissue (skipped when absent).

A tile "counts as tissue" when its tissue fraction reaches the default grid threshold
(``TilingConfig.min_tissue`` = 0.5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cdfis_desktop.core.config import TilingConfig
from cdfis_desktop.core.tiling.tissue import pen_mask, tissue_mask

pytestmark = pytest.mark.realdata
THRESHOLD = TilingConfig().min_tissue


def _tiles(real_data: Path) -> dict[str, np.ndarray]:
    folder = real_data / "tiles_tissue"
    tiles = {p.stem: np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))}
    assert len(tiles) == 34
    return tiles


def test_real_tiles(real_data: Path) -> None:
    tiles = _tiles(real_data)
    fraction = {name: float(tissue_mask(rgb).mean()) for name, rgb in tiles.items()}
    report = "\n".join(f"{v:.3f} {k}" for k, v in fraction.items())
    blank = [n for n in tiles if n.startswith(("no-tissue", "almost-white")) and "pen" not in n]
    pen_only = [n for n in tiles if "pen" in n and not n.startswith("high-nuclei")]
    tissue = [n for n in tiles if n.startswith("tissue-")]
    assert len(blank) == 6 and len(pen_only) == 4 and len(tissue) == 6
    for name in blank:
        assert fraction[name] < 0.05, report
    # Ink-covered tiles; blurred dark-purple ink (no-tissue-red-pen, ~0.24) has the colour
    # of haematoxylin and is partly kept, but stays far below the threshold.
    for name in pen_only:
        assert fraction[name] < THRESHOLD, report
    for name in tissue:
        assert fraction[name] >= THRESHOLD, report


def test_ink_found_on_pen_tiles_only(real_data: Path) -> None:
    tiles = _tiles(real_data)
    ink = {name: float(pen_mask(rgb).mean()) for name, rgb in tiles.items()}
    report = "\n".join(f"{v:.3f} {k}" for k, v in ink.items())
    for name, share in ink.items():
        if "pen" in name:
            assert share > 0.05, report
        elif name.startswith(("tissue-", "no-tissue", "almost-white", "liver", "high-nuclei")):
            assert share < 0.02, report


@pytest.mark.parametrize(
    ("name", "stain"),
    [
        ("ndpi/test3-DAPI-2.ndpi", "fluorescence"),
        ("ndpi/test3 TRITC 2 (560).ndpi", "fluorescence"),
        ("CMU-1-Small-Region.svs", "brightfield"),
        ("tcga-cr-7395-01a-01-ts1.svs", "brightfield"),
    ],
)
def test_real_slides_get_their_stain_rule(real_data: Path, name: str, stain: str) -> None:
    """The NDPI slides are fluorescence: the H&E rule took the dark glass of the DAPI slide
    for tissue (100% of the slide); the fluorescence rule keeps the tissue and drops the
    glass around it (the slides' edges are glass, see their thumbnails)."""
    import warnings

    from cdfis_desktop.core.slides import open_slide
    from cdfis_desktop.core.tiling.tissue import detect_tissue

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TCGA slide has no mpp
        slide = open_slide(real_data / "slides" / name)
    with slide:
        tissue = detect_tissue(slide)
    assert tissue.stain == stain
    assert 0.2 < tissue.mask.mean() < 0.95
    if stain == "fluorescence":  # the bottom rows of both slides are glass
        assert tissue.mask[-3:].mean() < 0.2
