"""The heads-up layer painted over the slide viewer: scale bar, legend, cursor position.

It is a transparent child widget of the viewer's canvas (mouse events pass through), so it
is painted in screen pixels and appears in screenshots. GUI thread only.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

from cdfis_desktop.core.heatmap import LegendSpec
from cdfis_desktop.gui.qtimage import array_to_qimage

SCALE_BAR_TARGET_PX = 120


def nice_scale_length(um_per_screen_px: float, target_px: float = SCALE_BAR_TARGET_PX) -> float:
    """A 1/2/5 x 10^k length (in the unit of ``um_per_screen_px``) near ``target_px`` px."""
    if not math.isfinite(um_per_screen_px) or um_per_screen_px <= 0:
        return 0.0
    raw = um_per_screen_px * target_px
    exponent = math.floor(math.log10(raw))
    for step in (5.0, 2.0, 1.0):
        length = step * 10**exponent
        if length <= raw:
            return length
    return 10.0 ** (exponent - 1) * 5.0


def format_length_um(length_um: float) -> str:
    """``250 µm``, ``1 mm``, ``0.5 µm``."""
    if length_um >= 1000:
        return f"{length_um / 1000:g} mm"
    return f"{length_um:g} µm"


def format_value(value: float) -> str:
    """Short legend label: 3 significant digits."""
    return f"{value:.3g}"


class Hud(QWidget):
    """Scale bar (bottom left), legend (bottom right), cursor text (top left)."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self._l0_per_screen_px = 0.0
        self._mpp: float | None = None
        self._legend: LegendSpec | None = None
        self._legend_image: QImage | None = None
        self.cursor_text = ""

    def set_scale(self, l0_per_screen_px: float, mpp: float | None) -> None:
        self._l0_per_screen_px = l0_per_screen_px
        self._mpp = mpp
        self.update()

    def set_legend(self, legend: LegendSpec | None) -> None:
        self._legend = legend
        self._legend_image = None
        if legend is not None:
            lut = np.asarray(legend.lut, dtype=np.uint8)
            rgb = np.ascontiguousarray(lut[None, :, :3])
            self._legend_image = array_to_qimage(rgb)
        self.update()

    @property
    def legend(self) -> LegendSpec | None:
        return self._legend

    def set_cursor_text(self, text: str) -> None:
        self.cursor_text = text
        self.update()

    def scale_bar(self) -> tuple[float, float, str]:
        """``(bar length in screen px, length in µm or px, label)``; µm when mpp is known."""
        if self._l0_per_screen_px <= 0:
            return 0.0, 0.0, ""
        unit_per_px = self._l0_per_screen_px * (self._mpp or 1.0)
        length = nice_scale_length(unit_per_px)
        if length <= 0:
            return 0.0, 0.0, ""
        label = format_length_um(length) if self._mpp else f"{length:g} px (no mpp)"
        return length / unit_per_px, length, label

    def paintEvent(self, event: QPaintEvent) -> None:  # Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF()))
        painter.setFont(font)
        self._paint_scale_bar(painter)
        self._paint_legend(painter)
        if self.cursor_text:
            self._paint_label(painter, 8, 8, self.cursor_text)
        painter.end()

    def _paint_label(self, painter: QPainter, x: float, y: float, text: str) -> QRectF:
        metrics = painter.fontMetrics()
        box = QRectF(x, y, metrics.horizontalAdvance(text) + 10, metrics.height() + 4)
        painter.fillRect(box, QColor(0, 0, 0, 150))
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        return box

    def _paint_scale_bar(self, painter: QPainter) -> None:
        bar_px, _, label = self.scale_bar()
        if bar_px <= 0:
            return
        x, y = 12.0, self.height() - 14.0
        box = QRectF(x - 6, y - 26, bar_px + 12, 34)
        painter.fillRect(box, QColor(0, 0, 0, 150))
        painter.setPen(QPen(QColor(255, 255, 255), 3))
        painter.drawLine(int(x), int(y), int(x + bar_px), int(y))
        painter.drawLine(int(x), int(y - 5), int(x), int(y + 3))
        painter.drawLine(int(x + bar_px), int(y - 5), int(x + bar_px), int(y + 3))
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(QRectF(x, y - 24, bar_px, 18), Qt.AlignmentFlag.AlignCenter, label)

    def _paint_legend(self, painter: QPainter) -> None:
        legend, image = self._legend, self._legend_image
        if legend is None or image is None:
            return
        if legend.categories:
            self._paint_categories(painter, legend)
            return
        width, bar_h = 200.0, 14.0
        x, y = self.width() - width - 14.0, self.height() - 58.0
        painter.fillRect(QRectF(x - 8, y - 22, width + 16, 64), QColor(0, 0, 0, 160))
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(QRectF(x, y - 20, width, 18), Qt.AlignmentFlag.AlignLeft, legend.title)
        painter.drawImage(QRectF(x, y, width, bar_h), image)
        painter.setPen(QPen(QColor(255, 255, 255), 1))
        painter.drawRect(QRectF(x, y, width, bar_h))
        low, high = format_value(legend.vmin), format_value(legend.vmax)
        painter.drawText(QRectF(x, y + bar_h + 2, width, 18), Qt.AlignmentFlag.AlignLeft, low)
        painter.drawText(QRectF(x, y + bar_h + 2, width, 18), Qt.AlignmentFlag.AlignRight, high)

    def _paint_categories(self, painter: QPainter, legend: LegendSpec) -> None:
        row_h, width = 18.0, 200.0
        height = 24.0 + row_h * len(legend.categories)
        x, y = self.width() - width - 14.0, self.height() - height - 10.0
        painter.fillRect(QRectF(x - 8, y, width + 16, height), QColor(0, 0, 0, 160))
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(QRectF(x, y + 2, width, 18), Qt.AlignmentFlag.AlignLeft, legend.title)
        for i, name in enumerate(legend.categories):
            r, g, b = (int(v) for v in legend.lut[i][:3])
            top = y + 22.0 + i * row_h
            painter.fillRect(QRectF(x, top + 3, 14, 12), QColor(r, g, b))
            painter.drawText(
                QRectF(x + 20, top, width - 20, row_h), Qt.AlignmentFlag.AlignLeft, name
            )
