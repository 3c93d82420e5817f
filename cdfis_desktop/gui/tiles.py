"""Slide tiles for the viewer: keys, a bounded LRU cache, and a background loader.

Tiles are squares of ``TILE_PX`` pixels *at their pyramid level*; tile ``(col, row)`` of
level ``lv`` covers level-0 px ``[col * TILE_PX * ds, (col + 1) * TILE_PX * ds)`` with
``ds = level_downsamples[lv]`` (edge tiles are cropped to the slide).

Thread rules: :class:`TileCache` and :class:`TileLoader` belong to the GUI thread. The loader
(a :class:`~cdfis_desktop.gui.loader.LatestLoader`) reads in its own pool threads; every
pool thread opens its own slide handle (handles are never shared between threads) and
hands back a :class:`QImage` through the queued ``loaded`` signal. Requests replace the
queue, so tiles that scrolled away before a worker reached them are never read.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QImage

from cdfis_desktop.gui.handles import PerThreadSlides, SlideOpener
from cdfis_desktop.gui.loader import LatestLoader
from cdfis_desktop.gui.qtimage import array_to_qimage

TILE_PX = 512
DEFAULT_THREADS = max(1, min(4, (os.cpu_count() or 2) - 1))
"""Reader threads: all cores but one (kept for the GUI thread), at most 4."""


@dataclass(frozen=True, order=True)
class TileKey:
    """Tile ``(col, row)`` of pyramid ``level``."""

    level: int
    col: int
    row: int


@dataclass(frozen=True)
class TileGeometry:
    """Where one tile sits: its read request and its level-0 rectangle."""

    l0_x: int
    l0_y: int
    lv_w: int
    lv_h: int
    l0_w: float
    l0_h: float


def tile_geometry(
    key: TileKey, level_dimensions: Sequence[tuple[int, int]], level_downsamples: Sequence[float]
) -> TileGeometry:
    """Level-0 origin and size of ``key``, cropped at the slide's edge."""
    lv_width, lv_height = level_dimensions[key.level]
    downsample = float(level_downsamples[key.level])
    lv_x, lv_y = key.col * TILE_PX, key.row * TILE_PX
    lv_w = max(0, min(TILE_PX, lv_width - lv_x))
    lv_h = max(0, min(TILE_PX, lv_height - lv_y))
    return TileGeometry(
        l0_x=int(round(lv_x * downsample)),
        l0_y=int(round(lv_y * downsample)),
        lv_w=lv_w,
        lv_h=lv_h,
        l0_w=lv_w * downsample,
        l0_h=lv_h * downsample,
    )


def tiles_covering(
    level: int,
    l0_rect: tuple[float, float, float, float],
    level_dimensions: Sequence[tuple[int, int]],
    level_downsamples: Sequence[float],
) -> list[TileKey]:
    """Keys of ``level`` that intersect ``l0_rect = (x, y, w, h)`` (level-0 px), ordered
    from the centre of the rectangle outwards so the middle of the view arrives first."""
    downsample = float(level_downsamples[level])
    lv_width, lv_height = level_dimensions[level]
    cols = max(1, -(-lv_width // TILE_PX))
    rows = max(1, -(-lv_height // TILE_PX))
    l0_x, l0_y, l0_w, l0_h = l0_rect
    span = TILE_PX * downsample
    col0 = max(0, int(l0_x // span))
    row0 = max(0, int(l0_y // span))
    col1 = min(cols - 1, int((l0_x + l0_w) // span))
    row1 = min(rows - 1, int((l0_y + l0_h) // span))
    if col1 < col0 or row1 < row0:
        return []
    mid_col, mid_row = (col0 + col1) / 2, (row0 + row1) / 2
    keys = [TileKey(level, c, r) for r in range(row0, row1 + 1) for c in range(col0, col1 + 1)]
    keys.sort(key=lambda k: (k.col - mid_col) ** 2 + (k.row - mid_row) ** 2)
    return keys


class TileCache:
    """LRU cache of decoded tiles, bounded by ``max_mb`` megabytes of image memory."""

    def __init__(self, max_mb: float = 256.0) -> None:
        self.max_bytes = int(max_mb * 1024 * 1024)
        self._images: OrderedDict[TileKey, QImage] = OrderedDict()
        self.bytes_used = 0

    def get(self, key: TileKey) -> QImage | None:
        image = self._images.get(key)
        if image is not None:
            self._images.move_to_end(key)
        return image

    def __contains__(self, key: object) -> bool:
        return key in self._images

    def __len__(self) -> int:
        return len(self._images)

    def put(self, key: TileKey, image: QImage) -> None:
        old = self._images.pop(key, None)
        if old is not None:
            self.bytes_used -= old.sizeInBytes()
        self._images[key] = image
        self.bytes_used += image.sizeInBytes()
        while self.bytes_used > self.max_bytes and len(self._images) > 1:
            _, evicted = self._images.popitem(last=False)
            self.bytes_used -= evicted.sizeInBytes()

    def clear(self) -> None:
        self._images.clear()
        self.bytes_used = 0


class TileLoader(LatestLoader):
    """Reads tiles of one slide in background threads (a :class:`LatestLoader` whose
    requests are :class:`TileKey` and results ``QImage``; a read that raises arrives as
    ``failed(key, exception)``). Every pool thread opens its own slide handle;
    :meth:`shutdown` closes them after the reads ended."""

    def __init__(
        self,
        slide_path: Path,
        level_dimensions: Sequence[tuple[int, int]],
        level_downsamples: Sequence[float],
        opener: SlideOpener,
        threads: int = DEFAULT_THREADS,
        parent: QObject | None = None,
    ) -> None:
        self.slide_path = Path(slide_path)
        self._level_dimensions = list(level_dimensions)
        self._level_downsamples = list(level_downsamples)
        self._slides = PerThreadSlides(opener)
        super().__init__(
            f"tiles:{self.slide_path.name}", self._read_tile, threads=threads, parent=parent
        )

    def shutdown(self) -> None:
        super().shutdown()
        self._slides.close_all()

    def _read_tile(self, key: TileKey) -> QImage | None:
        """Pool thread: the tile's pixels, None for an empty edge tile."""
        geometry = tile_geometry(key, self._level_dimensions, self._level_downsamples)
        if geometry.lv_w == 0 or geometry.lv_h == 0:
            return None
        rgb = self._slides.get(self.slide_path).read_region(
            geometry.l0_x, geometry.l0_y, key.level, geometry.lv_w, geometry.lv_h
        )
        return array_to_qimage(rgb)
