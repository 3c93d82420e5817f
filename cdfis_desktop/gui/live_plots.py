"""Live training plots (pyqtgraph): loss, accuracy, samples/s, score histogram + CDF, and the
share of patches ever chosen.

Data go into preallocated arrays (:class:`Series`, doubling when full) as reports arrive;
the curves are redrawn by a timer at most ``refresh_hz`` times a second and only when
something changed, so a fast run cannot flood the GUI thread with repaints. GUI thread only.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QWidget

_COLORS = {"train": (31, 119, 180), "val": (214, 39, 40), "other": (44, 160, 44)}


def _series_key() -> str:
    """``train`` and ``validation`` in their curve colours (HTML, for a plot title)."""
    train, val = ("#{:02x}{:02x}{:02x}".format(*_COLORS[k]) for k in ("train", "val"))
    return f"<span style='color:{train}'>train</span> · <span style='color:{val}'>validation</span>"


class Series:
    """A growing ``(x, y)`` float64 series backed by preallocated arrays."""

    def __init__(self, capacity: int = 1024) -> None:
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float64)
        self.size = 0

    def append(self, x: float, y: float) -> None:
        if self.size == self._x.shape[0]:
            self._x = np.resize(self._x, self.size * 2)
            self._y = np.resize(self._y, self.size * 2)
        self._x[self.size] = x
        self._y[self.size] = y
        self.size += 1

    def clear(self) -> None:
        self.size = 0

    @property
    def x(self) -> np.ndarray:
        return self._x[: self.size]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self.size]


class LivePlots(pg.GraphicsLayoutWidget):
    """Five small plots in a grid. Feed with :meth:`add_train_step`, :meth:`add_validation`,
    :meth:`add_throughput`, :meth:`add_share_chosen` and :meth:`set_scores`."""

    def __init__(self, parent: QWidget | None = None, refresh_hz: float = 10.0) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.series: dict[str, Series] = {
            name: Series()
            for name in ("train_loss", "val_loss", "train_acc", "val_acc", "samples_per_s", "share")
        }
        key = _series_key()  # in the titles: a legend box would hide the latest points
        self._loss = self._plot(0, 0, f"Loss: {key}", "step")
        self._acc = self._plot(0, 1, f"Accuracy: {key}", "step")
        self._speed = self._plot(0, 2, "Samples / s", "step")
        self._scores = self._plot(1, 0, "Scores of the last draw (histogram, CDF)", "score")
        self._share = self._plot(1, 1, "Share of patches ever chosen", "step")
        self._acc.setYRange(0, 1)
        self._share.setYRange(0, 1)
        self._curves = {
            "train_loss": self._curve(self._loss, "train"),
            "val_loss": self._curve(self._loss, "val", symbol=True),
            "train_acc": self._curve(self._acc, "train"),
            "val_acc": self._curve(self._acc, "val", symbol=True),
            "samples_per_s": self._curve(self._speed, "other"),
            "share": self._curve(self._share, "other"),
        }
        self._histogram = pg.PlotDataItem(
            stepMode="center",
            fillLevel=0,
            brush=(31, 119, 180, 120),
            pen=pg.mkPen(_COLORS["train"]),
        )
        self._cdf = pg.PlotDataItem(pen=pg.mkPen(_COLORS["val"], width=2))
        self._scores.addItem(self._histogram)
        self._scores.addItem(self._cdf)
        self._scores.setYRange(0, 1)
        self._dirty = False
        self.redraws = 0
        self._timer = QTimer(self)
        self._timer.setInterval(int(1000 / refresh_hz))
        self._timer.timeout.connect(self._redraw)
        self._timer.start()

    def _plot(self, row: int, col: int, title: str, x_label: str) -> pg.PlotItem:
        plot = self.addPlot(row=row, col=col, title=title)
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.setLabel("bottom", x_label)
        plot.setMenuEnabled(False)
        return plot

    def _curve(self, plot: pg.PlotItem, color: str, symbol: bool = False) -> pg.PlotDataItem:
        return plot.plot(
            pen=pg.mkPen(_COLORS[color], width=1.5),
            symbol="o" if symbol else None,
            symbolSize=5,
            symbolBrush=_COLORS[color],
        )

    def clear_data(self) -> None:
        for series in self.series.values():
            series.clear()
        self._histogram.setData([], [])
        self._cdf.setData([], [])
        self._dirty = True

    def show_metrics(self, metrics: dict[str, np.ndarray]) -> None:
        """Replace the curves with a stored run's metric series (``Project.metrics``)."""
        self.clear_data()
        steps = metrics.get("step", np.zeros(0))
        pairs = (
            ("train_loss", "train_loss"),
            ("val_loss", "val_loss"),
            ("val_acc", "val_accuracy"),
            ("samples_per_s", "samples_per_s"),
        )
        for name, column in pairs:
            values = metrics.get(column)
            if values is None:
                continue
            for step, value in zip(steps, values, strict=True):
                if np.isfinite(value):
                    self.series[name].append(float(step), float(value))
        self._dirty = True

    def show_chosen_shares(self, steps: np.ndarray, shares: np.ndarray) -> None:
        """Replace the share curve with a stored run's per-epoch shares
        (``Project.chosen_shares``: step int64[E], share float64[E])."""
        self.series["share"].clear()
        for step, share in zip(steps, shares, strict=True):
            self.series["share"].append(float(step), float(share))
        self._dirty = True

    def add_train_step(self, step: int, loss: float, accuracy: float | None) -> None:
        self.series["train_loss"].append(step, loss)
        if accuracy is not None:
            self.series["train_acc"].append(step, accuracy)
        self._dirty = True

    def add_validation(self, step: int, loss: float, accuracy: float) -> None:
        self.series["val_loss"].append(step, loss)
        self.series["val_acc"].append(step, accuracy)
        self._dirty = True

    def add_throughput(self, step: int, samples_per_s: float) -> None:
        self.series["samples_per_s"].append(step, samples_per_s)
        self._dirty = True

    def add_share_chosen(self, step: int, share: float) -> None:
        self.series["share"].append(step, share)
        self._dirty = True

    def set_scores(self, scores: np.ndarray, bins: int = 40) -> None:
        """Histogram (normalised to a peak of 1) and empirical CDF of ``scores`` (float[n])."""
        finite = np.asarray(scores, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size == 0:
            return
        counts, edges = np.histogram(finite, bins=bins)
        self._histogram.setData(edges, counts / max(1, counts.max()))
        ordered = np.sort(finite)
        self._cdf.setData(ordered, np.arange(1, ordered.size + 1) / ordered.size)

    def _redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.redraws += 1
        for name, curve in self._curves.items():
            series = self.series[name]
            curve.setData(series.x, series.y)
