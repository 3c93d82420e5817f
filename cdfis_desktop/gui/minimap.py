"""The overview (minimap) drawn in a corner of the slide viewer.

Shows the slide thumbnail and the visible rectangle; a click or drag centres the view there.
GUI thread only.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import QWidget


class Minimap(QWidget):
    """``centre_requested(l0_x, l0_y)`` when the user clicks or drags on the overview."""

    centre_requested = Signal(float, float)

    def __init__(self, parent: QWidget | None = None, max_px: int = 180) -> None:
        super().__init__(parent)
        self._max_px = max_px
        self._thumbnail: QPixmap | None = None  # pre-scaled to the widget, drawn 1:1
        self._l0_size = (1.0, 1.0)
        self._l0_view = QRectF()
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Overview: click or drag to move the view")
        # fully painted by itself: the view underneath need not be redrawn for it
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.hide()

    def set_thumbnail(self, thumbnail: QImage | None, l0_width: int, l0_height: int) -> None:
        """``thumbnail`` of the whole slide whose level-0 size is ``l0_width x l0_height``."""
        self._l0_size = (float(max(1, l0_width)), float(max(1, l0_height)))
        if thumbnail is None:
            self._thumbnail = None
            self.hide()
            return
        scaled = thumbnail.scaled(
            self._max_px,
            self._max_px,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
        self._thumbnail = QPixmap.fromImage(scaled)
        self.setFixedSize(scaled.width() + 2, scaled.height() + 2)
        self.show()
        self.update()

    def set_view_rect(self, l0_rect: QRectF) -> None:
        """The visible part of the slide, in level-0 px."""
        self._l0_view = QRectF(l0_rect)
        self.update()

    def _scale(self) -> tuple[float, float]:
        return ((self.width() - 2) / self._l0_size[0], (self.height() - 2) / self._l0_size[1])

    def paintEvent(self, event: QPaintEvent) -> None:  # Qt override
        if self._thumbnail is None:
            return
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(30, 30, 30))
        painter.drawPixmap(1, 1, self._thumbnail)
        sx, sy = self._scale()
        view = QRectF(
            1 + self._l0_view.x() * sx,
            1 + self._l0_view.y() * sy,
            max(2.0, self._l0_view.width() * sx),
            max(2.0, self._l0_view.height() * sy),
        )
        painter.setPen(QPen(QColor(255, 60, 60), 1.5))
        painter.drawRect(view.intersected(QRectF(0, 0, self.width() - 1, self.height() - 1)))
        painter.setPen(QPen(QColor(200, 200, 200), 1))
        painter.drawRect(QRectF(0, 0, self.width() - 1, self.height() - 1))
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # Qt override
        self._centre_at(event.position())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # Qt override
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._centre_at(event.position())

    def _centre_at(self, pos: QPointF) -> None:
        sx, sy = self._scale()
        self.centre_requested.emit((pos.x() - 1) / sx, (pos.y() - 1) / sy)
