"""Every bad input to ``open_slide`` gives a SlideOpenError naming the file and what to do."""

from __future__ import annotations

import pytest

from cdfis_desktop.core.errors import SlideOpenError
from cdfis_desktop.core.slides import open_slide

BAD_SLIDE_INPUTS = {
    "missing": "no such file",
    "folder": "is a folder",
    "empty": "is empty",
    "truncated": "truncated or damaged",
    "png": "plain PNG image",
    "text": "not in a slide format",
}


@pytest.mark.parametrize("kind", sorted(BAD_SLIDE_INPUTS))
def test_bad_input(kind: str, bad_slide_input) -> None:
    path = bad_slide_input(kind)
    with pytest.raises(SlideOpenError) as info:
        open_slide(path)
    message = str(info.value)
    assert str(path) in message
    assert BAD_SLIDE_INPUTS[kind] in message


def test_bad_mpp_override(synthetic_slide) -> None:
    with pytest.raises(SlideOpenError, match="positive"):
        open_slide(synthetic_slide.slide_path, mpp_override=0.0)


def test_a_folder_of_dcm_files_is_opened_through_its_first_file(tmp_path) -> None:
    """OpenSlide opens a DICOM-WSI series from any of its files; a folder is read through
    its first .dcm file (here not a slide: the message names that file)."""
    folder = tmp_path / "case 7"
    folder.mkdir()
    for name in ("b.dcm", "a.DCM", "notes.txt"):
        (folder / name).write_text("not DICOM at all\n" * 20)
    with pytest.raises(SlideOpenError) as info:
        open_slide(folder)
    assert str(folder / "a.DCM") in str(info.value)
    assert "not in a slide format" in str(info.value)
