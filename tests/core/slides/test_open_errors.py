"""Every bad input to ``open_slide`` gives a SlideOpenError naming the file and what to do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cdfis_desktop.core.errors import SlideOpenError
from cdfis_desktop.core.slides import open_slide


def make_bad_input(kind: str, tmp_path: Path, slide_path: Path) -> Path:
    """Create one kind of bad slide input in ``tmp_path`` (shared with the CLI tests)."""
    path = tmp_path / {"folder": "slides", "png": "photo.svs", "text": "notes.tiff"}.get(
        kind, "x.svs"
    )
    if kind == "folder":
        path.mkdir()
    elif kind == "empty":
        path.touch()
    elif kind == "truncated":
        data = slide_path.read_bytes()
        path = tmp_path / "cut.tiff"
        path.write_bytes(data[: len(data) // 2])
    elif kind == "png":
        Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(path, format="PNG")
    elif kind == "text":
        path.write_text("this is not an image\n" * 50)
    return path


BAD_INPUTS = {
    "missing": "no such file",
    "folder": "is a folder",
    "empty": "is empty",
    "truncated": "truncated or damaged",
    "png": "plain PNG image",
    "text": "not in a slide format",
}


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_bad_input(kind: str, tmp_path: Path, synthetic_slide) -> None:
    path = make_bad_input(kind, tmp_path, synthetic_slide.slide_path)
    with pytest.raises(SlideOpenError) as info:
        open_slide(path)
    message = str(info.value)
    assert str(path) in message
    assert BAD_INPUTS[kind] in message


def test_bad_mpp_override(synthetic_slide) -> None:
    with pytest.raises(SlideOpenError, match="positive"):
        open_slide(synthetic_slide.slide_path, mpp_override=0.0)
