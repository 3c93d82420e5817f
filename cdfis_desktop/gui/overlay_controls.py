"""Controls of the importance overlay: metric, colormap, opacity, range, epoch replay and
differences. Emits ``state_changed(OverlayState)`` for everything that needs a re-render
and ``opacity_changed(float)`` for the opacity (the viewer applies it without re-rendering).
GUI thread only.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QWidget,
)

from cdfis_desktop.core.heatmap import DEFAULT_COLORMAP, available_colormaps
from cdfis_desktop.core.heatmap.metrics import METRICS
from cdfis_desktop.gui.overlay import OverlayState

REPLAY_INTERVAL_MS = 700


class OverlayControls(QWidget):
    """The overlay panel. :meth:`set_epochs` and :meth:`set_runs` fill the choices."""

    state_changed = Signal(object)  # OverlayState
    opacity_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._epochs: list[int] = []
        self.metric = QComboBox()
        for entry in METRICS:
            self.metric.addItem(entry.title, entry.key)
            self.metric.setItemData(
                self.metric.count() - 1, entry.definition, Qt.ItemDataRole.ToolTipRole
            )
        self.metric.setCurrentIndex(self.metric.findData(OverlayState().metric))
        self.colormap = QComboBox()
        for name in available_colormaps():
            self.colormap.addItem(name, name)
        self.colormap.setCurrentIndex(self.colormap.findData(DEFAULT_COLORMAP))
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(45)
        self.auto_range = QCheckBox("Auto (2nd–98th percentile)")
        self.auto_range.setChecked(True)
        self.range_low = QDoubleSpinBox()
        self.range_high = QDoubleSpinBox()
        for box in (self.range_low, self.range_high):
            box.setRange(-1e9, 1e9)
            box.setDecimals(4)
            box.setKeyboardTracking(False)
            box.setEnabled(False)
        self.epoch = QSlider(Qt.Orientation.Horizontal)
        self.epoch.setRange(0, 0)
        self.epoch.setPageStep(1)
        self.epoch_label = QLabel("all epochs")
        self.play = QPushButton("▶ Replay")
        self.play.setCheckable(True)
        self.compare = QComboBox()
        self.compare.addItem("No comparison", "none")
        self.compare.addItem("Difference to epoch…", "epoch")
        self.compare.addItem("Difference to run…", "run")
        self.compare_epoch = QComboBox()
        self.compare_run = QComboBox()
        self._replay = QTimer(self)
        self._replay.setInterval(REPLAY_INTERVAL_MS)
        self._replay.timeout.connect(self._advance_replay)

        range_row = QHBoxLayout()
        range_row.addWidget(self.range_low)
        range_row.addWidget(QLabel("to"))
        range_row.addWidget(self.range_high)
        epoch_row = QHBoxLayout()
        epoch_row.addWidget(self.epoch, 1)
        epoch_row.addWidget(self.epoch_label)
        epoch_row.addWidget(self.play)
        form = QFormLayout(self)
        form.addRow("Show", self.metric)
        form.addRow("Colormap", self.colormap)
        form.addRow("Opacity", self.opacity)
        form.addRow("Range", self.auto_range)
        form.addRow("", range_row)
        form.addRow("Training time", epoch_row)
        form.addRow("Compare", self.compare)
        form.addRow("Other epoch", self.compare_epoch)
        form.addRow("Other run", self.compare_run)

        for combo in (
            self.metric,
            self.colormap,
            self.compare,
            self.compare_epoch,
            self.compare_run,
        ):
            combo.currentIndexChanged.connect(self._emit)
        self.auto_range.toggled.connect(self._on_auto_toggled)
        self.range_low.valueChanged.connect(self._emit)
        self.range_high.valueChanged.connect(self._emit)
        self.epoch.valueChanged.connect(self._on_epoch_moved)
        self.opacity.valueChanged.connect(lambda v: self.opacity_changed.emit(v / 100.0))
        self.play.toggled.connect(self._on_play_toggled)
        self._sync_enabled()

    # ------------------------------------------------------------------ choices
    def set_epochs(self, epochs: Sequence[int]) -> None:
        """Epochs with history; the slider runs over "all" (0) then each epoch."""
        at_end = self.epoch.value() == self.epoch.maximum() and self.epoch.value() > 0
        self._epochs = list(epochs)
        self.epoch.blockSignals(True)
        self.epoch.setRange(0, len(self._epochs))
        if at_end:  # follow a live run when the user is looking at the latest epoch
            self.epoch.setValue(self.epoch.maximum())
        self.epoch.blockSignals(False)
        self._update_epoch_label()
        self._refill(self.compare_epoch, [(f"epoch {e}", e) for e in self._epochs])

    def set_runs(self, runs: Sequence[tuple[str, int]]) -> None:
        """Runs to compare against, as ``(text, run id)``."""
        self._refill(self.compare_run, list(runs))

    def _refill(self, combo: QComboBox, choices: Sequence[tuple[str, int]]) -> None:
        combo.blockSignals(True)
        previous = combo.currentData()
        combo.clear()
        for text, value in choices:
            combo.addItem(text, value)
        combo.setCurrentIndex(max(0, combo.findData(previous)))
        combo.blockSignals(False)

    def show_auto_range(self, value_range: tuple[float, float] | None) -> None:
        """Display the range the renderer picked (while auto-range is on)."""
        if value_range is None or not self.auto_range.isChecked():
            return
        for box, value in zip((self.range_low, self.range_high), value_range, strict=True):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)

    # -------------------------------------------------------------------- state
    def state(self) -> OverlayState:
        compare = self.compare.currentData()
        manual = None
        if not self.auto_range.isChecked():
            low, high = sorted((self.range_low.value(), self.range_high.value()))
            manual = (low, high)
        return OverlayState(
            metric=self.metric.currentData(),
            colormap=self.colormap.currentData(),
            opacity=self.opacity.value() / 100.0,
            value_range=manual,
            epoch=self.selected_epoch(),
            compare=compare,
            compare_epoch=self.compare_epoch.currentData() if compare == "epoch" else None,
            compare_run=self.compare_run.currentData() if compare == "run" else None,
        )

    def selected_epoch(self) -> int | None:
        position = self.epoch.value()
        return None if position == 0 else self._epochs[position - 1]

    def _emit(self) -> None:
        self._sync_enabled()
        self.state_changed.emit(self.state())

    def _sync_enabled(self) -> None:
        compare = self.compare.currentData()
        self.compare_epoch.setEnabled(compare == "epoch")
        self.compare_run.setEnabled(compare == "run")

    def _on_auto_toggled(self, auto: bool) -> None:
        self.range_low.setEnabled(not auto)
        self.range_high.setEnabled(not auto)
        self._emit()

    def _on_epoch_moved(self) -> None:
        self._update_epoch_label()
        self._emit()

    def _update_epoch_label(self) -> None:
        epoch = self.selected_epoch()
        self.epoch_label.setText("all epochs" if epoch is None else f"epoch {epoch}")

    def _on_play_toggled(self, playing: bool) -> None:
        if playing and self._epochs:
            self.epoch.setValue(1)
            self._replay.start()
        else:
            self._replay.stop()
            self.play.setChecked(False)

    def _advance_replay(self) -> None:
        if self.epoch.value() >= self.epoch.maximum():
            self.play.setChecked(False)
            return
        self.epoch.setValue(self.epoch.value() + 1)
