"""A procedural H&E-like slide: layout fields at low resolution, pixels rendered by band.

The layout (tissue islands with ragged borders and fat holes, tumour regions) lives in
signed float32 fields on a coarse grid of ``LAYOUT_PX`` level-0 px per cell; a field is
positive inside its region. Level-0 pixels are rendered band by band with a Beer-Lambert
stain model (haematoxylin + eosin optical densities), so a slide of any size can be
streamed into :func:`~cdfis_desktop.core.slides.tiff_writer.write_pyramidal_tiff_bands`.
Nuclei come from a point process seeded per 32-row strip, so every band is reproducible on
its own and nuclei crossing band borders are drawn identically on both sides.

Coordinates: ``l0_*`` level-0 px; ``lr_*`` layout-grid cells, where lr cell centre ``c``
sits at level-0 position ``(c + 0.5) * LAYOUT_PX``. Not thread-safe (one renderer per thread).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

LAYOUT_PX = 16
"""Level-0 px per layout cell."""

_STRIP_PX = 32
_NUCLEUS_RADIUS_PX = 12
_NOISE_MARGIN_PX = 16
# Optical density per unit stain (R, G, B): haematoxylin as Ruifrok & Johnston; eosin
# tuned so that stroma comes out near RGB (235, 150, 190), the pink of real H&E.
_H_OD = np.array([0.65, 0.70, 0.29], np.float32)
_E_OD = np.array([0.15, 1.0, 0.55], np.float32)
_BACKGROUND_OD = np.array([0.035, 0.04, 0.03], np.float32)
# Nuclei per level-0 px^2 (at 0.5 µm/px: tumour ~1 per 60 µm^2 of tissue, stroma sparser).
_TUMOUR_DENSITY = 1 / 200
_STROMA_DENSITY = 1 / 1400


def _streaks(white: np.ndarray, axis: int) -> np.ndarray:
    """Fibre-like streaks along ``axis``: white noise box-averaged over 13 px along the
    axis and 2 px across it (box filters cost the same for any length); std about 0.14."""
    along = ndimage.uniform_filter1d(white, 13, axis=axis)
    return ndimage.uniform_filter1d(along, 2, axis=1 - axis) * 0.7


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise with unit standard deviation, float32[shape]."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return (field / (field.std() + 1e-8)).astype(np.float32)


class SyntheticSlide:
    """An H&E-like slide of ``size_px`` = (w, h) level-0 px at ``mpp`` µm/px (for a seed).

    ``tissue_field`` and ``tumour_field`` (float32[lr_h, lr_w], > 0 inside) define the
    regions that the rendering and the annotations share.
    """

    def __init__(self, size_px: tuple[int, int], mpp: float, seed: int) -> None:
        self.width, self.height = (int(v) for v in size_px)
        self.mpp = float(mpp)
        self.seed = int(seed)
        rng = np.random.default_rng([self.seed, 1])
        lr_w, lr_h = -(-self.width // LAYOUT_PX), -(-self.height // LAYOUT_PX)
        self.tissue_field = self._tissue_layout(rng, lr_w, lr_h)
        self.tumour_field = np.minimum(self.tissue_field, self._tumour_layout(rng, lr_w, lr_h))
        self._fibre_mix = _smooth_noise(rng, (lr_h, lr_w), 6.0)

    def _tissue_layout(self, rng: np.random.Generator, lr_w: int, lr_h: int) -> np.ndarray:
        yy, xx = np.mgrid[0:lr_h, 0:lr_w].astype(np.float32)
        islands = np.full((lr_h, lr_w), -1.0, np.float32)
        n_islands = int(rng.integers(2, 4))
        for i in range(n_islands):
            # Islands spread left to right, each an ellipse with a noisy (ragged) border.
            cx = lr_w * (i + 0.5 + rng.uniform(-0.15, 0.15)) / n_islands
            cy = lr_h * rng.uniform(0.4, 0.6)
            rx = lr_w / n_islands * rng.uniform(0.38, 0.48)
            ry = lr_h * rng.uniform(0.3, 0.42)
            angle = rng.uniform(0, np.pi)
            dx, dy = xx - cx, yy - cy
            u = (dx * np.cos(angle) + dy * np.sin(angle)) / rx
            v = (-dx * np.sin(angle) + dy * np.cos(angle)) / ry
            islands = np.maximum(islands, 1.0 - np.sqrt(u * u + v * v))
        border = 0.12 * _smooth_noise(rng, (lr_h, lr_w), 4.0)
        ragged = 0.025 * _smooth_noise(rng, (lr_h, lr_w), 1.0)
        tissue = islands + border + ragged
        holes = _smooth_noise(rng, (lr_h, lr_w), 1.6) - 2.4  # fat / lumen holes, a few %
        return np.minimum(tissue, -holes).astype(np.float32)

    def _tumour_layout(self, rng: np.random.Generator, lr_w: int, lr_h: int) -> np.ndarray:
        """Tumour: 3-5 blobs centred inside tissue, with irregular noisy outlines."""
        yy, xx = np.mgrid[0:lr_h, 0:lr_w].astype(np.float32)
        inside = np.argwhere(self.tissue_field > 0.25)
        if len(inside) == 0:
            return np.full((lr_h, lr_w), -1.0, np.float32)
        bumps = np.full((lr_h, lr_w), -1.0, np.float32)
        radius = 0.15 * np.sqrt(lr_w * lr_h)
        for _ in range(int(rng.integers(3, 6))):
            cy, cx = inside[rng.integers(len(inside))]
            r = radius * rng.uniform(0.6, 1.1)
            bumps = np.maximum(bumps, 1.0 - np.hypot(xx - cx, yy - cy) / r)
        return (bumps + 0.25 * _smooth_noise(rng, (lr_h, lr_w), 3.0)).astype(np.float32)

    def render_band(self, l0_y: int, band_h: int) -> np.ndarray:
        """Rows ``l0_y .. l0_y + band_h`` of level 0 as uint8[band_h, width, 3] RGB."""
        tissue = self._upsample(self.tissue_field, l0_y, band_h)
        tumour = self._upsample(self.tumour_field, l0_y, band_h)
        fibre_mix = self._upsample(self._fibre_mix, l0_y, band_h)
        tissue_a = np.clip(tissue * 12.0 + 0.5, 0.0, 1.0)
        tumour_a = np.clip(tumour * 12.0 + 0.5, 0.0, 1.0)

        margin = _NOISE_MARGIN_PX
        white = self._white_noise(l0_y - margin, band_h + 2 * margin)
        inner = slice(margin, margin + band_h)
        fibres_h = _streaks(white, axis=1)[inner]
        fibres_v = _streaks(white, axis=0)[inner]
        grain = ndimage.gaussian_filter(white, 1.0, truncate=3.0)[inner] * 1.8
        mix = 1.0 / (1.0 + np.exp(-2.0 * fibre_mix))
        fibres = (mix * fibres_h + (1 - mix) * fibres_v) * 2.2

        eosin = (0.24 + 0.07 * fibres) * (1 - tumour_a) + (0.17 + 0.03 * grain) * tumour_a
        nuclei = self._nuclei(l0_y, band_h) * (0.8 + 0.2 * grain)
        eosin *= 1 - 0.7 * np.clip(nuclei, 0, 1)
        np.clip(eosin, 0, None, out=eosin)
        haem = nuclei + 0.03 + 0.09 * tumour_a
        background = 1 + 0.15 * grain
        rgb = np.empty((band_h, self.width, 3), np.uint8)
        for channel in range(3):  # Beer-Lambert, one channel at a time to save memory
            od = haem * _H_OD[channel]
            od += eosin * _E_OD[channel]
            od *= tissue_a
            od += background * _BACKGROUND_OD[channel]
            od *= -np.log(10.0)
            np.exp(od, out=od)
            od *= 255.0
            rgb[..., channel] = np.clip(od, 0, 255)
        return rgb

    def _white_noise(self, l0_y: int, rows: int) -> np.ndarray:
        """Standard normal noise float32[rows, width] for level-0 rows l0_y.. (may start
        above 0); each 32-row strip has its own seed, so overlapping bands agree."""
        first, last = l0_y // _STRIP_PX, (l0_y + rows - 1) // _STRIP_PX
        strips = [
            np.random.default_rng([self.seed, 2, s + 1_000_000]).standard_normal(
                (_STRIP_PX, self.width), dtype=np.float32
            )
            for s in range(first, last + 1)
        ]
        start = l0_y - first * _STRIP_PX
        return np.concatenate(strips)[start : start + rows]

    def _upsample(self, field: np.ndarray, l0_y: int, band_h: int) -> np.ndarray:
        """Bilinear values of a layout field at the level-0 pixel centres of the band."""
        rows = self._interp_axis(field, np.arange(l0_y, l0_y + band_h), axis=0)
        return self._interp_axis(rows, np.arange(self.width), axis=1)

    @staticmethod
    def _interp_axis(field: np.ndarray, l0_pos: np.ndarray, axis: int) -> np.ndarray:
        n = field.shape[axis]
        lr = np.clip((l0_pos + 0.5) / LAYOUT_PX - 0.5, 0, n - 1)
        i0 = np.minimum(lr.astype(np.int64), max(n - 2, 0))
        i1 = np.minimum(i0 + 1, n - 1)
        f = (lr - i0).astype(np.float32)
        if axis == 0:
            return field[i0] * (1 - f)[:, None] + field[i1] * f[:, None]
        return field[:, i0] * (1 - f) + field[:, i1] * f

    def _nuclei(self, l0_y: int, band_h: int) -> np.ndarray:
        """Haematoxylin density of the nuclei in the band, float32[band_h, width]."""
        r = _NUCLEUS_RADIUS_PX
        first = max(0, (l0_y - r) // _STRIP_PX)
        last = (l0_y + band_h + r) // _STRIP_PX
        params = [self._strip_nuclei(s) for s in range(first, last + 1)]
        x, y, a, b, angle, lobes, phase, conc = (
            np.concatenate(p) for p in zip(*params, strict=True)
        )
        keep = (y > l0_y - r) & (y < l0_y + band_h + r)
        x, y, a, b, angle, lobes, phase, conc = (
            v[keep] for v in (x, y, a, b, angle, lobes, phase, conc)
        )
        out = np.zeros((band_h, self.width), np.float32)
        # Stamp small nuclei with small windows: the cost is n_nuclei x window area.
        reach = np.ceil(np.maximum(a, b) * (1 + 1.6 * lobes) + 1)
        lower = 0
        for radius in (5, 9, r):
            group = (reach > lower) & (reach <= radius)
            lower = radius
            if group.any():
                self._stamp(
                    out, l0_y, radius, *(v[group] for v in (x, y, a, b, angle, lobes, phase, conc))
                )
        return out

    def _stamp(
        self,
        out: np.ndarray,
        l0_y: int,
        radius: int,
        x: np.ndarray,
        y: np.ndarray,
        a: np.ndarray,
        b: np.ndarray,
        angle: np.ndarray,
        lobes: np.ndarray,
        phase: np.ndarray,
        conc: np.ndarray,
    ) -> None:
        """Draw nuclei (centres x, y in level-0 px, semi-axes a, b px) into ``out`` (the band
        starting at row l0_y) with a (2 * radius + 1)^2 window each, keeping the maximum."""
        off = np.arange(-radius, radius + 1, dtype=np.float32)
        dy, dx = np.meshgrid(off, off, indexing="ij")
        dx, dy = dx.ravel()[None, :], dy.ravel()[None, :]
        px = np.floor(x)[:, None] + dx
        py = np.floor(y)[:, None] + dy
        ex, ey = px + 0.5 - x[:, None], py + 0.5 - y[:, None]
        cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
        u = (ex * cos + ey * sin) / a[:, None]
        v = (-ex * sin + ey * cos) / b[:, None]
        rho = np.sqrt(u * u + v * v) + 1e-6
        # Irregular outline: rho scaled by 1 + lobes * (sin(2t + p) + 0.6 sin(3t + 2p)), with
        # t the polar angle, written with cos t = u / rho, sin t = v / rho (no arctan).
        ct, st = u / rho, v / rho
        cp, sp = np.cos(phase)[:, None], np.sin(phase)[:, None]
        c2p, s2p = cp * cp - sp * sp, 2 * sp * cp
        wobble = 2 * st * ct * cp + (ct * ct - st * st) * sp
        wobble += 0.6 * ((3 * st - 4 * st**3) * c2p + (4 * ct**3 - 3 * ct) * s2p)
        rho *= 1 + lobes[:, None] * wobble
        # Vesicular chromatin: nuclei a little paler in the middle than at the rim.
        value = np.clip((1.0 - rho) * 5.0, 0.0, 1.0) * (0.75 + 0.25 * rho) * conc[:, None]
        band_y = py - l0_y
        band_h, width = out.shape
        ok = (value > 0) & (band_y >= 0) & (band_y < band_h) & (px >= 0) & (px < width)
        flat = band_y[ok].astype(np.int64) * width + px[ok].astype(np.int64)
        np.maximum.at(out.reshape(-1), flat, value[ok])

    def _strip_nuclei(self, strip: int) -> tuple[np.ndarray, ...]:
        """Nuclei whose centres lie in rows ``strip*32 .. +32``: x, y, semi-axes a, b (px),
        angle, lobe amplitude, lobe phase, haematoxylin concentration (float32 arrays)."""
        rng = np.random.default_rng([self.seed, 3, strip])
        n = rng.poisson(_TUMOUR_DENSITY * _STRIP_PX * self.width)
        x = rng.uniform(0, self.width, n).astype(np.float32)
        y = (strip * _STRIP_PX + rng.uniform(0, _STRIP_PX, n)).astype(np.float32)
        accept_u = rng.uniform(0, 1, n)
        kind_u = rng.uniform(0, 1, n)
        size_u = rng.uniform(0, 1, (4, n)).astype(np.float32)
        lr_x = np.clip((x / LAYOUT_PX).astype(np.int64), 0, self.tissue_field.shape[1] - 1)
        lr_y = np.clip((y / LAYOUT_PX).astype(np.int64), 0, self.tissue_field.shape[0] - 1)
        in_tissue = self.tissue_field[lr_y, lr_x] > 0
        in_tumour = self.tumour_field[lr_y, lr_x] > 0
        density = np.where(in_tumour, _TUMOUR_DENSITY, np.where(in_tissue, _STROMA_DENSITY, 0))
        keep = accept_u < density / _TUMOUR_DENSITY
        lymphocyte = ~in_tumour & (kind_u < 0.35)
        # Tumour: large, pleomorphic, lobed, dark; stroma: thin spindles; lymphocytes: small dots.
        a = np.where(in_tumour, 6.0 + 4.5 * size_u[0], np.where(lymphocyte, 3.4, 7.5))
        b = np.where(in_tumour, 4.5 + 3.0 * size_u[1], np.where(lymphocyte, 3.2, 2.2))
        lobes = np.where(in_tumour, 0.04 + 0.08 * size_u[2], 0.02)
        conc = np.where(
            in_tumour, 0.75 + 0.45 * size_u[3], np.where(lymphocyte, 1.2, 0.75 + 0.2 * size_u[3])
        )
        angle = rng.uniform(0, np.pi, n)
        phase = rng.uniform(0, 2 * np.pi, n)
        return tuple(
            np.asarray(v[keep], np.float32) for v in (x, y, a, b, angle, lobes, phase, conc)
        )
