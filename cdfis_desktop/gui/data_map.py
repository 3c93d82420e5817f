"""The data map of a run as a pyqtgraph scatter, linked both ways with the slide viewer.

:class:`DataMapView` plots every trained patch at (variability, confidence), coloured by
region (easy, ambiguous, hard to learn; :mod:`cdfis_desktop.core.datamaps`). A click on a
point, or moving the selection rectangle, emits ``patches_selected`` with the ids inside;
:meth:`DataMapView.mark_patch` rings the point of a patch chosen elsewhere (a click on
the slide, a gallery or the review queue). :class:`SlideSelection` outlines selected
patches on the slide viewer, one path item for all of them (thousands stay fast).

Thread rules: GUI thread only; the data map is computed in a worker (see
``MainWindow``) and handed over with :meth:`DataMapView.set_data_map`.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Signal
from PySide6.QtGui import QColor, QPainterPath, QPen, QShowEvent
from PySide6.QtWidgets import QGraphicsPathItem, QLabel, QVBoxLayout, QWidget

from cdfis_desktop.core.datamaps import NONE, REGION_NAMES, DataMap

REGION_COLOURS = {0: (42, 157, 143), 1: (233, 196, 106), 2: (231, 111, 81), NONE: (150, 150, 150)}
"""Point colour per region code (the report's colours)."""
Z_SELECTION = 25.0
"""Above the overlay, below the single-patch highlight of the slide viewer."""


class DataMapView(QWidget):
    """The scatter; call :meth:`set_data_map`. Signals: ``patches_selected(ids)`` (int64
    numpy array, possibly empty) on a point click or a move of the selection rectangle.
    The selection works on ``ids`` at once; the points are handed to pyqtgraph when the
    view is first shown, so a hidden tab costs no GUI-thread time at open."""

    patches_selected = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ids = np.zeros(0, np.int64)
        self._x = np.zeros(0)
        self._y = np.zeros(0)
        self.selected = np.zeros(0, np.int64)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMenuEnabled(False)
        self.plot.setLabel("bottom", "variability (std of the label probability across epochs)")
        self.plot.setLabel("left", "confidence (mean label probability)")
        self.plot.setYRange(0, 1)
        # one item per region, each with one brush: a brush per point made setData twice
        # as slow (1.4 s against 0.7 s of GUI-thread CPU for 200,000 points)
        self.scatters = {
            code: pg.ScatterPlotItem(size=5, pen=None, brush=pg.mkBrush(*rgb, 170))
            for code, rgb in REGION_COLOURS.items()
        }
        self._codes = np.zeros(0, np.int64)  # region code per point of ``ids``
        self._drawn = True  # the items show ``ids``
        for code, item in self.scatters.items():
            item.sigClicked.connect(
                lambda _item, points, *_, code=code: self._on_points_clicked(code, points)
            )
            self.plot.addItem(item)
        self.marker = pg.ScatterPlotItem(
            size=16, pen=pg.mkPen((0, 200, 255), width=2.5), brush=None, symbol="o"
        )
        self.marker.setZValue(10)
        self.plot.addItem(self.marker)
        self.roi = pg.RectROI((0.0, 0.0), (0.05, 0.2), pen=pg.mkPen((31, 78, 121), width=2))
        self.roi.setZValue(20)
        self.roi.hide()
        self.roi.sigRegionChangeFinished.connect(self._on_roi_moved)
        self.plot.addItem(self.roi)
        self.summary = QLabel("Select a run to see its data map.")
        self.summary.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.plot, 1)

    def set_data_map(self, data_map: DataMap | None) -> None:
        """Plot the trained patches of ``data_map`` (None: clear)."""
        self.mark_patch(None)
        self.selected = np.zeros(0, np.int64)
        if data_map is None or not data_map.trained_ids().size:
            self.ids = np.zeros(0, np.int64)
            self._x = self._y = np.zeros(0)
            self._codes = np.zeros(0, np.int64)
            self._draw_points()
            self.roi.hide()
            self.summary.setText("This run recorded no training dynamics (no data map).")
            return
        self.ids = data_map.trained_ids()
        self._x = data_map.variability[self.ids].astype(np.float64)
        self._y = data_map.confidence[self.ids].astype(np.float64)
        codes = data_map.region[self.ids]
        self._codes = codes
        self._drawn = False
        if self.isVisible():  # else when first shown: 0.7 s of GUI thread at 200k points
            self._draw_points()
        counts = {name: int((codes == k).sum()) for k, name in enumerate(REGION_NAMES)}
        self.summary.setText(
            f"{self.ids.size:,} trained patches over {data_map.n_epochs} epochs: "
            + ", ".join(f"{n:,} {name}" for name, n in counts.items())
            + ". Click a point or move the rectangle to select patches."
        )
        span = max(float(self._x.max()), 1e-3)
        self.roi.setPos((0.66 * span, 0.0))
        self.roi.setSize((0.34 * span, 1.0))
        self.roi.show()

    def _draw_points(self) -> None:
        """Hand the points to the scatter items (the costly part, GUI thread)."""
        for code, item in self.scatters.items():
            in_region = self._codes == code
            item.setData(x=self._x[in_region], y=self._y[in_region])
        self._drawn = True

    def showEvent(self, event: QShowEvent) -> None:  # Qt override
        if not self._drawn:
            self._draw_points()
        super().showEvent(event)

    def select_in(self, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        """Select the points inside the rectangle (data coordinates); emits and returns
        their ids."""
        inside = (self._x >= x0) & (self._x <= x1) & (self._y >= y0) & (self._y <= y1)
        self._select(self.ids[inside])
        return self.selected

    def mark_patch(self, patch_id: int | None) -> bool:
        """Ring the point of ``patch_id`` (None, or a patch not on the map: no ring);
        returns whether it is on the map."""
        where = np.flatnonzero(self.ids == patch_id) if patch_id is not None else []
        if len(where) == 0:
            self.marker.setData([], [])
            return False
        k = int(where[0])
        self.marker.setData([self._x[k]], [self._y[k]])
        return True

    def marked(self) -> tuple[float, float] | None:
        """(x, y) of the ringed point, or None."""
        x, y = self.marker.getData()
        return None if len(x) == 0 else (float(x[0]), float(y[0]))

    def _on_points_clicked(self, code: int, points: list[pg.SpotItem]) -> None:
        """A click on points of region ``code``'s item: the first point's patch (the
        item holds the region's points in the order of ``ids``)."""
        ids = self.ids[self._codes == code]
        self._select(np.array([int(ids[p.index()]) for p in points[:1]], dtype=np.int64))

    def _on_roi_moved(self) -> None:
        rect = self.roi.parentBounds()
        self.select_in(rect.left(), rect.top(), rect.right(), rect.bottom())

    def _select(self, ids: np.ndarray) -> None:
        self.selected = np.asarray(ids, dtype=np.int64)
        self.patches_selected.emit(self.selected)


class SlideSelection:
    """Outlines of many patches on a :class:`~cdfis_desktop.gui.slide_viewer.SlideViewer`
    (one path item in its view box)."""

    def __init__(self, viewer: object) -> None:
        self.item = QGraphicsPathItem()
        pen = QPen(QColor(255, 200, 0), 2)
        pen.setCosmetic(True)
        self.item.setPen(pen)
        self.item.setZValue(Z_SELECTION)
        viewer.view_box.addItem(self.item, ignoreBounds=True)  # type: ignore[attr-defined]
        self.count = 0

    def show(self, l0_x: np.ndarray, l0_y: np.ndarray, l0_size: np.ndarray) -> None:
        """Outline the squares (level-0 px, top-left corners); empty arrays: clear."""
        path = QPainterPath()
        for x, y, size in zip(l0_x.tolist(), l0_y.tolist(), l0_size.tolist(), strict=True):
            path.addRect(QRectF(QPointF(x, y), QPointF(x + size, y + size)))
        self.item.setPath(path)
        self.count = len(l0_x)

    def clear(self) -> None:
        self.item.setPath(QPainterPath())
        self.count = 0
