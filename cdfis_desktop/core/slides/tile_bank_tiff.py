"""Huge pyramidal TIFFs built from a small bank of tiles, for tests and benchmarks.

A slide of 100,000 x 200,000 px has 300,000 tiles of 256 px at level 0, but a generated one
(blank glass, or synthetic tissue regions) only needs a handful of distinct tiles. Here the
caller names a tile id for every tile of every level, each distinct id is rendered and
deflate-compressed once, and all tiles with that id point at the same bytes in the file
(TIFF allows shared tile offsets; libtiff and OpenSlide read them like any other tile). A
100k x 100k slide then takes well under a second and a few MB.

The file is a little-endian BigTIFF with one tiled RGB directory per level (levels as in
:func:`~cdfis_desktop.core.slides.tiff_writer.pyramid_level_sizes`: every ``level_factor``
times smaller, down to one tile; levels below 0 marked reduced-resolution), resolution tags in pixels per centimetre
(so OpenSlide reports ``openslide.mpp-x``) and an ``ImageDescription`` (part of OpenSlide's
quickhash, so two slides with the same tiles but different descriptions get different
fingerprints). OpenSlide opens it as ``generic-tiff``. Written to a temporary name in the
target folder and moved into place with ``os.replace``.
"""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import numpy as np

from cdfis_desktop.core.slides.tiff_writer import checked_tiff_geometry, pyramid_level_sizes

TileIdsFn = Callable[[int, int, int], np.ndarray]
"""``tile_ids(level, cols, rows) -> int64[rows, cols]``: the bank id of each tile of ``level``
(row-major; tile (c, r) covers level px [c * tile_px, (c + 1) * tile_px) x ..., i.e. about
level-0 px [c * tile_px * level_factor**level, ...))."""

TileImageFn = Callable[[int], np.ndarray]
"""``tile_image(tile_id) -> uint8[tile_px, tile_px, 3]``: the pixels of one bank id (called
once per distinct id)."""

_SHORT, _ASCII, _LONG, _RATIONAL, _LONG8 = 3, 2, 4, 5, 16
_FORMATS = {_SHORT: "H", _ASCII: "B", _LONG: "I", _RATIONAL: "I", _LONG8: "Q"}
_DEFLATE, _RGB = 8, 2


def write_tile_bank_tiff(
    path: str | os.PathLike[str],
    size_px: tuple[int, int],
    mpp: float,
    tile_ids: TileIdsFn,
    tile_image: TileImageFn,
    *,
    tile_px: int = 256,
    level_factor: int = 2,
    description: str = "",
) -> Path:
    """Write a ``size_px`` = (w, h) level-0 slide at ``mpp`` µm/px whose tiles come from a
    bank (see the module docstring); ``level_factor`` = 2 as in Camelyon16's TIFFs (the
    demo writer's 4 makes fewer levels). Returns the path written.

    Raises ValueError for a non-positive size or mpp, a tile size that is not a multiple of
    16, ``tile_ids`` of the wrong shape, or a bank tile that is not uint8[tile_px, tile_px, 3].
    """
    width, height = checked_tiff_geometry(size_px, mpp, tile_px)
    if level_factor < 2:
        raise ValueError(f"the level factor must be at least 2, got {level_factor}")
    target = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            sizes = pyramid_level_sizes(width, height, tile_px, level_factor)
            _write(handle, sizes, mpp, tile_ids, tile_image, tile_px, description)
        os.chmod(tmp_name, 0o644)  # mkstemp makes it private; a slide is an ordinary file
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def _write(
    handle: BinaryIO,
    sizes: list[tuple[int, int]],
    mpp: float,
    tile_ids: TileIdsFn,
    tile_image: TileImageFn,
    tile_px: int,
    description: str,
) -> None:
    handle.write(struct.pack("<2sHHHQ", b"II", 43, 8, 0, 0))
    next_pointer_at = 8  # where the offset of the next directory goes
    stored: dict[int, tuple[int, int]] = {}  # tile id -> (offset, byte count)
    width = sizes[0][0]
    for level, (lv_w, lv_h) in enumerate(sizes):
        cols, rows = -(-lv_w // tile_px), -(-lv_h // tile_px)
        ids = np.asarray(tile_ids(level, cols, rows))
        if ids.shape != (rows, cols) or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(
                f"tile_ids({level}, {cols}, {rows}) returned {ids.dtype}{list(ids.shape)}, "
                f"expected integers of shape [{rows}, {cols}]"
            )
        unique, inverse = np.unique(ids, return_inverse=True)
        for tile_id in unique.tolist():
            if tile_id not in stored:
                blob = zlib.compress(_checked_tile(tile_image(tile_id), tile_id, tile_px).tobytes())
                stored[tile_id] = (handle.tell(), len(blob))
                handle.write(blob)
        offsets = np.array([stored[t][0] for t in unique.tolist()], np.uint64)[inverse.ravel()]
        counts = np.array([stored[t][1] for t in unique.tolist()], np.uint64)[inverse.ravel()]
        px_per_cm = Fraction(1e4 / (mpp * width / lv_w)).limit_denominator(1000)
        resolution = (px_per_cm.numerator, px_per_cm.denominator)
        tags: list[tuple[int, int, tuple[int, ...] | bytes]] = [
            (254, _LONG, (0 if level == 0 else 1,)),  # NewSubfileType: reduced resolution
            (256, _LONG, (lv_w,)),
            (257, _LONG, (lv_h,)),
            (258, _SHORT, (8, 8, 8)),
            (259, _SHORT, (_DEFLATE,)),
            (262, _SHORT, (_RGB,)),
            (277, _SHORT, (3,)),
            (282, _RATIONAL, resolution),
            (283, _RATIONAL, resolution),
            (284, _SHORT, (1,)),  # PlanarConfiguration: contiguous RGB
            (296, _SHORT, (3,)),  # ResolutionUnit: centimetre
            (322, _LONG, (tile_px,)),
            (323, _LONG, (tile_px,)),
            (324, _LONG8, offsets.astype("<u8").tobytes()),
            (325, _LONG8, counts.astype("<u8").tobytes()),
        ]
        if level == 0 and description:
            tags.insert(4, (270, _ASCII, description.encode("ascii", "replace") + b"\0"))
        directory_at = _write_directory(handle, tags)
        handle.seek(next_pointer_at)
        handle.write(struct.pack("<Q", directory_at))
        handle.seek(0, os.SEEK_END)
        next_pointer_at = directory_at + 8 + 20 * len(tags)


def _checked_tile(tile: np.ndarray, tile_id: int, tile_px: int) -> np.ndarray:
    tile = np.asarray(tile)
    if tile.shape != (tile_px, tile_px, 3) or tile.dtype != np.uint8:
        raise ValueError(
            f"tile_image({tile_id}) returned {tile.dtype}{list(tile.shape)}, expected "
            f"uint8[{tile_px}, {tile_px}, 3]"
        )
    return np.ascontiguousarray(tile)


def _write_directory(handle: BinaryIO, tags: list[tuple[int, int, tuple[int, ...] | bytes]]) -> int:
    """Write the values that do not fit in an entry, then the directory (its next-directory
    offset 0); return the directory's offset. ``tags`` are sorted by tag number."""
    entries = []
    for tag, kind, values in tags:
        data = values if isinstance(values, bytes) else _pack(kind, values)
        count = len(data) // struct.calcsize(_FORMATS[kind]) // (2 if kind == _RATIONAL else 1)
        if len(data) <= 8:
            field = data.ljust(8, b"\0")
        else:
            if handle.tell() % 2:
                handle.write(b"\0")  # TIFF values start on a word boundary
            field = struct.pack("<Q", handle.tell())
            handle.write(data)
        entries.append(struct.pack("<HHQ", tag, kind, count) + field)
    if handle.tell() % 2:
        handle.write(b"\0")
    directory_at = handle.tell()
    handle.write(struct.pack("<Q", len(entries)) + b"".join(entries) + struct.pack("<Q", 0))
    return directory_at


def _pack(kind: int, values: tuple[int, ...]) -> bytes:
    return struct.pack(f"<{len(values)}{_FORMATS[kind]}", *values)
