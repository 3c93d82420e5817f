"""Small numpy/Pillow image helpers shared by the slide readers and the TIFF writer."""

from __future__ import annotations

import numpy as np
from PIL import Image


def downsample_box(image: np.ndarray, factor: int) -> np.ndarray:
    """Box-average uint8[h, w, 3] by an integer ``factor`` -> uint8[ceil(h/f), ceil(w/f), 3]
    (Pillow's ``reduce``; the last partial block averages the pixels it has)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected uint8[h, w, 3], got {image.dtype}{list(image.shape)}")
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).reduce(factor))


def rgba_to_rgb_on_white(rgba: np.ndarray) -> np.ndarray:
    """Composite uint8[h, w, 4] (straight alpha, as openslide-python returns) over white."""
    rgb = rgba[..., :3]
    alpha = rgba[..., 3]
    if alpha.min() == 255:
        return np.ascontiguousarray(rgb)
    a = alpha[..., None].astype(np.uint16)
    return ((rgb.astype(np.uint16) * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)


def resize_rgb(
    rgb: np.ndarray, out_w: int, out_h: int, box: tuple[float, float, float, float] | None = None
) -> np.ndarray:
    """Resize uint8[h, w, 3] (optionally only the float ``box`` = (x0, y0, x1, y1) of it) to
    uint8[out_h, out_w, 3]: area averaging when shrinking, bilinear when enlarging."""
    height, width = rgb.shape[:2]
    box = box or (0.0, 0.0, float(width), float(height))
    if (out_w, out_h) == (width, height) and box == (0.0, 0.0, float(width), float(height)):
        return rgb
    shrinking = out_w < box[2] - box[0] or out_h < box[3] - box[1]
    resample = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    image = Image.fromarray(np.ascontiguousarray(rgb))
    return np.asarray(image.resize((out_w, out_h), resample, box=box))
