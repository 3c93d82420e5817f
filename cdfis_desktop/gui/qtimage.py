"""The one place numpy images become Qt images.

Safe in any thread: a :class:`QImage` (unlike a ``QPixmap``) may be built in a worker
thread and handed to the GUI thread through a queued signal.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


def array_to_qimage(image: np.ndarray) -> QImage:
    """Copy ``uint8[h, w, 3]`` (RGB) or ``uint8[h, w, 4]`` (RGBA, straight alpha) into an
    owning :class:`QImage`. Raises ``ValueError`` for other shapes or dtypes."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected uint8[h, w, 3|4], got {image.dtype}{list(image.shape)}")
    data = np.ascontiguousarray(image)
    height, width, channels = data.shape
    fmt = QImage.Format.Format_RGB888 if channels == 3 else QImage.Format.Format_RGBA8888
    # QImage does not own numpy memory: copy() detaches it before ``data`` is freed.
    return QImage(data.data, width, height, width * channels, fmt).copy()


def qimage_to_array(image: QImage) -> np.ndarray:
    """``uint8[h, w, 4]`` RGBA copy of any :class:`QImage` (for tests and screenshots)."""
    converted = image.convertToFormat(QImage.Format.Format_RGBA8888)
    width, height = converted.width(), converted.height()
    buffer = np.frombuffer(converted.constBits(), dtype=np.uint8, count=converted.sizeInBytes())
    rows = buffer.reshape(height, converted.bytesPerLine())[:, : width * 4]
    return rows.reshape(height, width, 4).copy()
