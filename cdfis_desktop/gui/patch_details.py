"""The panel for one clicked patch: thumbnail, label, prediction, and its importance history
over the run (score per step, and the steps it was chosen in). GUI thread only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget


@dataclass(frozen=True)
class PatchInfo:
    """What the panel shows about a patch (level-0 px position, texts already formatted;
    ``source`` the patch-set image file, "" when none)."""

    patch_id: int
    slide_name: str
    l0_x: int
    l0_y: int
    l0_size: int
    label: str
    prediction: str
    source: str = ""


class PatchDetails(QWidget):
    """Call :meth:`show_patch`, then :meth:`set_thumbnail` when the image arrives."""

    def __init__(self, thumbnail_px: int = 128, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.patch_id: int | None = None
        self.thumbnail = QLabel()
        self.thumbnail.setFixedSize(thumbnail_px, thumbnail_px)
        self.thumbnail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumbnail.setStyleSheet("background: #ccc")
        self.text = QLabel("Click a patch on the slide.")
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setWordWrap(True)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMinimumHeight(140)
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "score")
        self.plot.setMenuEnabled(False)
        self.plot.addLegend(offset=(-5, 5))
        self._score_curve = self.plot.plot(pen=pg.mkPen((31, 119, 180), width=1.5), name="score")
        self._chosen = self.plot.plot(
            pen=None, symbol="t", symbolSize=7, symbolBrush=(214, 39, 40), name="chosen"
        )
        top = QHBoxLayout()
        top.addWidget(self.thumbnail)
        top.addWidget(self.text, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.plot, 1)

    def show_patch(self, info: PatchInfo, history: Any | None) -> None:
        """``history``: a ``PatchHistory`` (step, score, times_chosen arrays) or None."""
        self.patch_id = info.patch_id
        self.thumbnail.clear()
        self.text.setText(
            f"<b>Patch {info.patch_id}</b> on {info.slide_name}<br>"
            f"level-0 x {info.l0_x:,}, y {info.l0_y:,}, size {info.l0_size} px<br>"
            f"label: <b>{info.label}</b> · prediction: <b>{info.prediction}</b>"
            + (f"<br>source: {info.source}" if info.source else "")
        )
        if history is None or len(history.step) == 0:
            self._score_curve.setData([], [])
            self._chosen.setData([], [])
            self.plot.setTitle("no recorded history in this run")
            return
        steps = np.asarray(history.step, dtype=np.float64)
        scores = np.asarray(history.score, dtype=np.float64)
        chosen = np.asarray(history.times_chosen) > 0
        self._score_curve.setData(steps, scores)
        self._chosen.setData(steps[chosen], scores[chosen])
        self.plot.setTitle(
            f"scored {steps.size}×, chosen in {int(chosen.sum())} steps "
            f"({int(np.asarray(history.times_chosen).sum())} draws)"
        )

    def set_thumbnail(self, image: QImage) -> None:
        self.thumbnail.setPixmap(QPixmap.fromImage(image))

    def clear(self) -> None:
        self.patch_id = None
        self.thumbnail.clear()
        self.text.setText("Click a patch on the slide.")
        self._score_curve.setData([], [])
        self._chosen.setData([], [])
