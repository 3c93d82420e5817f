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
from cdfis_desktop.core.heatmap.legend import legend_ticks
from cdfis_desktop.gui.qtimage import array_to_qimage

SCALE_BAR_TARGET_PX = 120
LEGEND_MIN_W = 220.0


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


class Hud(QWidget):
    """Scale bar (bottom left), legend (bottom right: the whole title, ticks, units and a
    caption saying what the ends mean), cursor position and the overlay's value under the
    cursor (top left)."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self._l0_per_screen_px = 0.0
        self._mpp: float | None = None
        self._legend: LegendSpec | None = None
        self._legend_image: QImage | None = None
        self.legend_caption = ""
        self.cursor_text = ""
        self.value_text = ""

    def set_scale(self, l0_per_screen_px: float, mpp: float | None) -> None:
        self._l0_per_screen_px = l0_per_screen_px
        self._mpp = mpp
        self.update()

    def set_legend(self, legend: LegendSpec | None, caption: str = "") -> None:
        """Draw ``legend``; ``caption`` says what its ends mean (e.g. ignored/favoured)."""
        self._legend = legend
        self.legend_caption = caption if legend is not None else ""
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

    def set_value_text(self, text: str) -> None:
        """The overlay's value at the cursor ("" hides it)."""
        self.value_text = text
        self.update()

    def legend_title(self) -> str:
        """The legend's heading: title and units."""
        legend = self._legend
        if legend is None:
            return ""
        return (
            f"{legend.title} ({legend.units})"
            if legend.units and not legend.categories
            else legend.title
        )

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
        y = 8.0
        for text in (self.cursor_text, self.value_text):
            if text:
                y = self._paint_label(painter, 8, y, text).bottom() + 4
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
        metrics = painter.fontMetrics()
        title, caption = self.legend_title(), self.legend_caption
        text_w = max(metrics.horizontalAdvance(t) for t in (title, caption or " "))
        width = float(min(max(LEGEND_MIN_W, text_w), max(LEGEND_MIN_W, self.width() - 60)))
        line, bar_h = float(metrics.height()), 14.0
        rows = 3 + (1 if caption else 0)  # title, bar, ticks, caption
        height = line * (rows - 1) + bar_h + 14
        x, top = self.width() - width - 14.0, self.height() - height - 10.0
        painter.fillRect(QRectF(x - 8, top, width + 16, height), QColor(0, 0, 0, 170))
        painter.setPen(QColor(255, 255, 255))
        elided = metrics.elidedText(title, Qt.TextElideMode.ElideRight, int(width))
        painter.drawText(QRectF(x, top + 4, width, line), Qt.AlignmentFlag.AlignLeft, elided)
        bar_y = top + 6 + line
        painter.drawImage(QRectF(x, bar_y, width, bar_h), image)
        painter.setPen(QPen(QColor(255, 255, 255), 1))
        painter.drawRect(QRectF(x, bar_y, width, bar_h))
        tick_y = bar_y + bar_h
        for tick in legend_ticks(legend.value_range, max_ticks=5):
            tick_x = x + tick.position * width
            painter.drawLine(int(tick_x), int(tick_y), int(tick_x), int(tick_y + 4))
            text_w = metrics.horizontalAdvance(tick.text)
            left = min(max(x - 4, tick_x - text_w / 2), x + width + 4 - text_w)
            painter.drawText(
                QRectF(left, tick_y + 4, text_w + 2, line), Qt.AlignmentFlag.AlignLeft, tick.text
            )
        if caption:
            painter.drawText(
                QRectF(x, tick_y + 6 + line, width, line), Qt.AlignmentFlag.AlignCenter, caption
            )

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
