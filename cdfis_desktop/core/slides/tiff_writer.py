"""Pyramidal tiled TIFF writing (JPEG tiles) that OpenSlide reads as a generic tiled TIFF.

Level 0 is the full image; every further level is a 4x box-averaged copy of the one above
(like Aperio SVS), down to the first level that fits in one tile. The resolution tags are
written in pixels per centimetre, so OpenSlide reports ``openslide.mpp-x/-y`` = ``mpp``.

Large slides are written without holding level 0 in memory: :func:`write_pyramidal_tiff_bands`
asks a callback for one horizontal band of ``tile_px`` rows at a time; the downsampled
levels (1/16 of level 0 and less) are accumulated in temporary memory-mapped files in a
scratch folder (``.pyramid-*``) next to the output, whose disk space is reserved first
(:mod:`cdfis_desktop.core.disk`: a full disk is a :class:`StorageFullError`, never a
SIGBUS). Every file is written to a scratch name in the target folder
(:mod:`cdfis_desktop.core.scratch`) and moved into place with ``os.replace``; on failure
the target is left untouched and the scratch removed (a killed writer's scratch is removed
by the next write of the same file, or by ``cdfis check --fix``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import tifffile

from cdfis_desktop.core.disk import full_error, is_full_error, reserved_memmap
from cdfis_desktop.core.errors import CdfisError, SlideWriteError
from cdfis_desktop.core.scratch import remove_orphans_of, scratch_file, scratch_folder
from cdfis_desktop.core.slides.imageops import downsample_box

LEVEL_FACTOR = 4
"""Downsample between consecutive pyramid levels."""

BandFn = Callable[[int, int], np.ndarray]
"""``band_fn(l0_y, band_h) -> uint8[band_h, width, 3]``: rows ``l0_y .. l0_y + band_h`` of
level 0 (``band_h`` is ``tile_px`` except possibly for the last band)."""


def checked_tiff_geometry(size_px: tuple[int, int], mpp: float, tile_px: int) -> tuple[int, int]:
    """``(width, height)`` of a slide to write, in level-0 px, after checking the size, the
    mpp (µm/px) and the tile side (px, a multiple of 16 as TIFF tiles need). Raises
    ValueError for a non-positive size or mpp or a bad tile side."""
    width, height = (int(v) for v in size_px)
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width} x {height}")
    if not mpp > 0:
        raise ValueError(f"mpp must be positive, got {mpp}")
    if tile_px < 16 or tile_px % 16:
        raise ValueError(f"tile size must be a multiple of 16, got {tile_px}")
    return width, height


def pyramid_level_sizes(
    width: int, height: int, tile_px: int, factor: int = LEVEL_FACTOR
) -> list[tuple[int, int]]:
    """(w, h) of each level written for a level-0 image of ``width`` x ``height`` px: each
    level ``factor`` times smaller (rounded up), down to the first that fits in one tile."""
    sizes = [(width, height)]
    while max(sizes[-1]) > tile_px:
        w, h = sizes[-1]
        sizes.append((max(1, -(-w // factor)), max(1, -(-h // factor))))
    return sizes


def write_pyramidal_tiff(
    path: str | os.PathLike[str],
    rgb: np.ndarray,
    mpp: float,
    tile_px: int = 256,
    jpeg_quality: int = 90,
) -> Path:
    """Write ``rgb`` (uint8[h, w, 3], level 0 at ``mpp`` µm/px) as a pyramidal TIFF.

    Returns the path written. Raises ValueError for a wrong shape/dtype, a non-positive
    mpp or a tile size that is not a multiple of 16 (a TIFF requirement).
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8[h, w, 3], got {rgb.dtype}{list(rgb.shape)}")
    height, width = rgb.shape[:2]
    return write_pyramidal_tiff_bands(
        path,
        (width, height),
        lambda l0_y, band_h: rgb[l0_y : l0_y + band_h],
        mpp,
        tile_px=tile_px,
        jpeg_quality=jpeg_quality,
    )


def write_pyramidal_tiff_bands(
    path: str | os.PathLike[str],
    size_px: tuple[int, int],
    band_fn: BandFn,
    mpp: float,
    tile_px: int = 256,
    jpeg_quality: int = 90,
) -> Path:
    """Write a ``size_px`` = (w, h) level-0 image produced band by band by ``band_fn``.

    ``band_fn`` is called once per band, top to bottom, from the calling thread. Memory use
    is a few bands plus nothing of level 0; levels 1.. are kept in temporary memmaps
    (about 1/15 of the level-0 bytes) in a scratch folder next to the target. Raises
    :class:`StorageFullError` when the disk is full and :class:`SlideWriteError` for other
    write failures (the target untouched, no scratch left).
    """
    width, height = checked_tiff_geometry(size_px, mpp, tile_px)
    target = Path(path)
    sizes = pyramid_level_sizes(width, height, tile_px)
    remove_orphans_of(target)
    try:
        tmp = scratch_file(target, ".tmp")
    except OSError as exc:
        raise _write_error(target, exc) from exc
    try:
        scratch = scratch_folder(target.parent, ".pyramid-")
        try:
            levels: list[np.ndarray] = [
                reserved_memmap(
                    scratch / f"level{i}.npy",
                    np.uint8,
                    (h, w, 3),
                    f"the pyramid of {target.name} (level {i}, a temporary file)",
                )
                for i, (w, h) in enumerate(sizes[1:], start=1)
            ]
            with tifffile.TiffWriter(tmp, bigtiff=_needs_bigtiff(sizes)) as tif:
                _write_level(
                    tif,
                    _level0_tiles(band_fn, width, height, tile_px, levels[:1]),
                    (width, height),
                    mpp,
                    tile_px,
                    jpeg_quality,
                    reduced=False,
                )
                for i, level in enumerate(levels):
                    if i + 1 < len(levels):
                        levels[i + 1][...] = downsample_box(level, LEVEL_FACTOR)
                    w, h = sizes[i + 1]
                    _write_level(
                        tif,
                        _array_tiles(level, tile_px),
                        (w, h),
                        mpp * width / w,
                        tile_px,
                        jpeg_quality,
                        reduced=True,
                    )
            del levels
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _write_error(target, exc) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def _write_error(target: Path, exc: OSError) -> CdfisError:
    """A full disk: :class:`StorageFullError`; other OS errors: :class:`SlideWriteError`."""
    if is_full_error(exc):
        return full_error(target, f"the slide {target.name}")
    return SlideWriteError(
        f"cannot write {target}: {exc.strerror or exc}; check the folder's permissions"
    )


def _needs_bigtiff(sizes: list[tuple[int, int]]) -> bool:
    # JPEG tiles are far smaller than raw, but stay safe above 2 GiB of raw pixels.
    return sum(w * h * 3 for w, h in sizes) > 2**31


def _write_level(
    tif: tifffile.TiffWriter,
    tiles: Iterator[np.ndarray],
    size_px: tuple[int, int],
    level_mpp: float,
    tile_px: int,
    jpeg_quality: int,
    *,
    reduced: bool,
) -> None:
    """Write one level; levels below 0 are marked reduced-resolution (NewSubfileType 1),
    which OpenSlide's generic-TIFF reader needs to see them as pyramid levels."""
    px_per_cm = 1e4 / level_mpp
    tif.write(
        tiles,
        shape=(size_px[1], size_px[0], 3),
        dtype=np.uint8,
        tile=(tile_px, tile_px),
        photometric="rgb",
        compression="jpeg",
        compressionargs={"level": jpeg_quality},
        resolution=(px_per_cm, px_per_cm),
        resolutionunit="CENTIMETER",
        subfiletype=1 if reduced else 0,
        metadata=None,
    )


def _level0_tiles(
    band_fn: BandFn, width: int, height: int, tile_px: int, next_level: list[np.ndarray]
) -> Iterator[np.ndarray]:
    """Yield level-0 tiles row-major and fill level 1 (``next_level[0]`` if any)."""
    for l0_y in range(0, height, tile_px):
        band_h = min(tile_px, height - l0_y)
        band = np.asarray(band_fn(l0_y, band_h))
        if band.shape != (band_h, width, 3) or band.dtype != np.uint8:
            raise ValueError(
                f"band_fn({l0_y}, {band_h}) returned {band.dtype}{list(band.shape)}, "
                f"expected uint8{[band_h, width, 3]}"
            )
        if next_level:
            lv_y = l0_y // LEVEL_FACTOR
            small = downsample_box(band, LEVEL_FACTOR)
            next_level[0][lv_y : lv_y + small.shape[0]] = small
        yield from _array_tiles(band, tile_px)


def _array_tiles(image: np.ndarray, tile_px: int) -> Iterator[np.ndarray]:
    """Tiles of ``image`` row-major, edge tiles padded with white to tile_px x tile_px."""
    height, width = image.shape[:2]
    for y in range(0, height, tile_px):
        for x in range(0, width, tile_px):
            tile = image[y : y + tile_px, x : x + tile_px]
            if tile.shape[:2] != (tile_px, tile_px):
                padded = np.full((tile_px, tile_px, 3), 255, np.uint8)
                padded[: tile.shape[0], : tile.shape[1]] = tile
                tile = padded
            yield np.ascontiguousarray(tile)
