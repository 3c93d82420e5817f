"""``OpenSlideReader``: every format openslide-bin reads (Aperio SVS, Hamamatsu NDPI, MIRAX,
Leica SCN, Philips TIFF, Ventana, DICOM, generic tiled TIFF...).

Thread rules: the OpenSlide C library is thread-safe, so one reader may serve several
threads (that is what ``SlideHandleCache`` relies on); a reader must not cross a
``fork``: every worker process opens its own.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import openslide

from cdfis_desktop.core.errors import SlideOpenError
from cdfis_desktop.core.slides.guards import check_read_size
from cdfis_desktop.core.slides.imageops import rgba_to_rgb_on_white
from cdfis_desktop.core.slides.reader import BaseSlideReader


class OpenSlideReader(BaseSlideReader):
    """A slide opened with OpenSlide. Use :func:`~cdfis_desktop.core.slides.open_slide`,
    which checks the file first and turns OpenSlide's errors into ``SlideOpenError``."""

    def __init__(self, path: Path, slide: openslide.OpenSlide, mpp_override: float | None) -> None:
        self._path = path
        self._slide = slide
        self._format = openslide.OpenSlide.detect_format(str(path)) or "unknown"
        self._level_dimensions = tuple((int(w), int(h)) for w, h in slide.level_dimensions)
        self._level_downsamples = tuple(float(d) for d in slide.level_downsamples)
        self._properties = dict(slide.properties)
        self._metadata_mpp = _metadata_mpp(self._properties)
        self._objective_power = _positive_float(
            self._properties.get(openslide.PROPERTY_NAME_OBJECTIVE_POWER)
        )
        self._mpp_override = mpp_override
        self._associated_names = tuple(sorted(slide.associated_images))

    def read_region(self, l0_x: int, l0_y: int, level: int, lv_w: int, lv_h: int) -> np.ndarray:
        """uint8[lv_h, lv_w, 3] RGB of ``level`` from level-0 corner (l0_x, l0_y); areas
        outside the slide or transparent are white. Raises SlideOpenError when the file
        cannot be decoded there (truncated or damaged), SlideTooLargeError (before reading)
        when the region passes the read-size limit (:mod:`.guards`)."""
        check_read_size(self._path, lv_w, lv_h, f"of level {level}")
        try:
            image = self._slide.read_region(
                (int(l0_x), int(l0_y)), int(level), (int(lv_w), int(lv_h))
            )
        except openslide.OpenSlideError as exc:
            raise SlideOpenError(
                f"{self._path}: cannot read pixels at level {level}, ({l0_x}, {l0_y}) ({exc}); "
                "the file is probably truncated or damaged: copy it again from the source"
            ) from None
        return rgba_to_rgb_on_white(np.asarray(image))

    def associated_image(self, name: str) -> np.ndarray:
        """An associated image (label, macro, thumbnail...) as uint8[h, w, 3]; KeyError if
        absent, SlideOpenError when it cannot be decoded (a damaged file)."""
        if name not in self._associated_names:
            raise KeyError(f"{self._path} has no associated image {name!r}")
        try:
            image = self._slide.associated_images[name]
        except openslide.OpenSlideError as exc:
            raise SlideOpenError(
                f"{self._path}: cannot read its associated image {name!r} ({exc}); the file "
                "is probably truncated or damaged: copy it again from the source"
            ) from None
        return rgba_to_rgb_on_white(np.asarray(image.convert("RGBA")))

    def fingerprint(self) -> str:
        """A content identity that survives renames and moves: OpenSlide's quickhash-1 when
        the format has one, else a SHA-256 of the size, first and last MiB of the file."""
        quickhash = self._properties.get(openslide.PROPERTY_NAME_QUICKHASH1)
        if quickhash:
            return f"quickhash1:{quickhash}"
        return f"sha256-headtail:{file_head_tail_hash(self._path)}"

    def close(self) -> None:
        self._slide.close()


def file_head_tail_hash(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """SHA-256 hex of a file's size, first and last ``chunk_bytes`` bytes."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    digest.update(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(chunk_bytes))
        if size > chunk_bytes:
            handle.seek(max(chunk_bytes, size - chunk_bytes))
            digest.update(handle.read(chunk_bytes))
    return digest.hexdigest()


def _metadata_mpp(properties: dict[str, str]) -> float | None:
    """Mean of OpenSlide's mpp-x and mpp-y (µm/px), None when missing or not positive."""
    values = [
        _positive_float(properties.get(name))
        for name in (openslide.PROPERTY_NAME_MPP_X, openslide.PROPERTY_NAME_MPP_Y)
    ]
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _positive_float(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and value > 0 else None
