"""``open_slide``: check a path, open it with OpenSlide, and explain every failure.

Every problem the user can cause raises :class:`~cdfis_desktop.core.errors.SlideOpenError`
with the file name and what to do: missing file, a folder, an empty file, a plain image
(PNG/JPEG) or other file OpenSlide does not support, a truncated or damaged slide.
A slide without resolution metadata opens with a :class:`MissingMppWarning`.
"""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path

import numpy as np
import openslide
import tifffile
from PIL import Image, UnidentifiedImageError

from cdfis_desktop.core.errors import SlideOpenError
from cdfis_desktop.core.inputs import special_file_kind
from cdfis_desktop.core.slides.openslide_reader import OpenSlideReader
from cdfis_desktop.core.slides.reader import MissingMppWarning

SUPPORTED_FORMATS = (
    "Aperio (.svs, .tif), Hamamatsu (.ndpi, .vms, .vmu), Leica (.scn), MIRAX (.mrxs), "
    "Philips (.tiff), Sakura (.svslide), Trestle (.tif), Ventana (.bif, .tif), "
    "DICOM WSI (a folder of .dcm files, or one of them), Zeiss (.czi), generic tiled TIFF (.tif)"
)


def open_slide(
    path: str | os.PathLike[str], *, mpp_override: float | None = None
) -> OpenSlideReader:
    """Open a whole-slide image. ``mpp_override`` (µm/px at level 0) replaces the metadata.

    ``path`` may be a DICOM-WSI folder: its first ``.dcm`` file is opened (the reader's
    ``path`` is that file). The returned reader is owned by the caller (``close()`` it, or use ``with``); open one
    per thread or worker process, or share through ``SlideHandleCache``.
    Raises SlideOpenError (see the module docstring); warns MissingMppWarning when the
    slide has no mpp and no override is given.
    """
    slide_path = Path(path).expanduser()
    if mpp_override is not None and not mpp_override > 0:
        raise SlideOpenError(
            f"{slide_path}: the mpp override must be a positive number of µm per pixel "
            f"(got {mpp_override}); a 20x scan is about 0.5, 40x about 0.25"
        )
    if slide_path.is_dir():
        slide_path = _dicom_file_in(slide_path)
    _check_file(slide_path)
    try:
        slide = openslide.OpenSlide(str(slide_path))
    except openslide.OpenSlideUnsupportedFormatError:
        raise SlideOpenError(_unsupported_message(slide_path)) from None
    except openslide.OpenSlideError as exc:
        raise SlideOpenError(_damaged_message(slide_path, exc)) from None
    reader = OpenSlideReader(slide_path, slide, mpp_override)
    try:
        _check_decodes(reader)
    except SlideOpenError:
        reader.close()
        raise
    if reader.mpp is None:
        warnings.warn(
            f"{slide_path} has no resolution (mpp) metadata; using {reader.effective_mpp:g} "
            f"µm/px ({reader.mpp_source}). Set the real value with an mpp override "
            "(e.g. 0.25 for 40x, 0.5 for 20x) so that patch sizes are right.",
            MissingMppWarning,
            stacklevel=2,
        )
    return reader


def _dicom_file_in(folder: Path) -> Path:
    """The first ``.dcm`` file of a DICOM-WSI folder (OpenSlide finds the rest of the series
    beside it), or the folder itself when it holds none (then refused as a folder)."""
    try:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".dcm" and p.is_file())
    except OSError:
        return folder
    return files[0] if files else folder


def _check_file(path: Path) -> None:
    if not path.exists():
        raise SlideOpenError(f"{path}: no such file; check the path and spelling")
    if path.is_dir():
        raise SlideOpenError(
            f"{path} is a folder, not a slide file; give the slide file itself "
            "(for MIRAX the .mrxs file next to its data folder) or a DICOM-WSI folder of "
            ".dcm files"
        )
    special = special_file_kind(path)
    if special is not None:
        raise SlideOpenError(
            f"{path} is {special}, not a slide file; reading it could wait forever. "
            "Give the slide file itself"
        )
    try:
        size = path.stat().st_size
        with path.open("rb"):
            pass
    except OSError as exc:
        raise SlideOpenError(
            f"{path}: cannot be read ({exc.strerror}); check permissions"
        ) from None
    if size == 0:
        raise SlideOpenError(
            f"{path} is empty (0 bytes); the copy or download failed: copy it again"
        )


def _check_decodes(reader: OpenSlideReader) -> None:
    """Decode a few pixels of the smallest level and of level 0, so a truncated file fails
    now with a clear message rather than later in the middle of an import."""
    last = reader.level_count - 1
    lv_w, lv_h = reader.level_dimensions[last]
    reader.read_region(0, 0, last, min(lv_w, 64), min(lv_h, 64))
    width, height = reader.dimensions
    reader.read_region(max(0, width - 16), max(0, height - 16), 0, 16, 16)


def _unsupported_message(path: Path) -> str:
    if _is_truncated_tiff(path):
        return _damaged_message(path, "the file ends before its image data")
    kind = _plain_image_kind(path)
    if kind is not None:
        return (
            f"{path} is a plain {kind} image, not a whole-slide image (whatever its name "
            "says); import patch images with 'cdfis import-patches', or give a slide in "
            f"one of these formats: {SUPPORTED_FORMATS}"
        )
    return (
        f"{path} is not in a slide format OpenSlide can read; convert it to a pyramidal "
        f"tiled TIFF or give a slide in one of these formats: {SUPPORTED_FORMATS}"
    )


def _damaged_message(path: Path, exc: Exception | str) -> str:
    return (
        f"{path} looks like a slide but cannot be read ({exc}); the file is probably "
        "truncated or damaged: copy it again from the source"
    )


def _plain_image_kind(path: Path) -> str | None:
    """Pillow's name of the image format (PNG, JPEG, TIFF...), None when not an image."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # damaged files make Pillow warn; we only ask "what"
        try:
            with Image.open(path) as image:
                return str(image.format)
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
            return None  # a bomb: a huge untiled image, not a plain picture either


def _is_truncated_tiff(path: Path) -> bool:
    """True when ``path`` starts like a TIFF but a directory or its image data lies past the
    end of the file (a copy or download that stopped early)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        header = handle.read(16)
        layout = _TIFF_LAYOUTS.get(header[:4])
        if layout is None:
            return False
        order, offset_fmt, count_fmt, entry_bytes = layout
        offset_at = 8 if offset_fmt == "Q" else 4
        if len(header) < offset_at + struct.calcsize(offset_fmt):
            return True
        (ifd_offset,) = struct.unpack_from(order + offset_fmt, header, offset_at)
        seen: set[int] = set()
        while ifd_offset and ifd_offset not in seen:  # walk the directory chain
            seen.add(ifd_offset)
            count_bytes = struct.calcsize(count_fmt)
            if ifd_offset + count_bytes > size:
                return True
            handle.seek(ifd_offset)
            (n_entries,) = struct.unpack(order + count_fmt, handle.read(count_bytes))
            next_at = ifd_offset + count_bytes + n_entries * entry_bytes
            if next_at + struct.calcsize(offset_fmt) > size:
                return True
            handle.seek(next_at)
            (ifd_offset,) = struct.unpack(
                order + offset_fmt, handle.read(struct.calcsize(offset_fmt))
            )
    try:
        with tifffile.TiffFile(path) as tif:
            for page in tif.pages:
                offsets = np.asarray(page.dataoffsets, np.int64)
                counts = np.asarray(page.databytecounts, np.int64)
                if offsets.size and int((offsets + counts).max()) > size:
                    return True
    except (tifffile.TiffFileError, OSError, ValueError, struct.error):
        return True
    return False


# magic -> (byte order, offset format, entry-count format, bytes per directory entry)
_TIFF_LAYOUTS = {
    b"II*\x00": ("<", "I", "H", 12),
    b"MM\x00*": (">", "I", "H", 12),
    b"II+\x00": ("<", "Q", "Q", 20),
    b"MM\x00+": (">", "Q", "Q", 20),
}
