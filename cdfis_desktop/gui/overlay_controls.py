"""Controls of the importance overlay: metric, colormap, opacity, range, epoch replay and
differences.

Emits ``state_changed(OverlayState)`` for everything that needs a re-render,
``opacity_changed(float)`` for the opacity (the viewer applies it without re-rendering) and
``epoch_chosen(epoch or None)`` when the user moves the time slider; the epoch itself
belongs to the window's :class:`~cdfis_desktop.gui.state.AppState`, shown here with
:meth:`OverlayControls.show_epoch`.

The metrics and their definitions come from the registry (``core.heatmap.metrics``). The
default view is "Favoured / ignored vs uniform" on its diverging map centred on 0: what the
training favoured (red) and ignored (blue). Each metric starts on its registry colormap
(sequential for counts and scores, diverging for signed values) and remembers the one the
user picks for it. Metrics the selected run did not record are greyed out with the reason;
the score metric the run did record is marked as the same values as Mean score. The
automatic range is the same for every epoch of the run by default, so the time slider's
colours compare. GUI thread only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QWidget,
)

from cdfis_desktop.core.heatmap import available_colormaps
from cdfis_desktop.core.heatmap.metrics import METRICS, metric
from cdfis_desktop.gui.overlay import OverlayState

REPLAY_INTERVAL_MS = 700
DEFAULT_METRIC = "favour"
RANGE_CHOICES = (
    (
        "run",
        "Same for every epoch",
        "Automatic, over every epoch of the run: the time slider's colours compare",
    ),
    ("view", "Fit this view", "Automatic, over the values shown only"),
    ("manual", "Manual", "The low and high values below"),
)


class OverlayControls(QWidget):
    """The overlay panel. :meth:`set_epochs`, :meth:`set_runs` and :meth:`set_run` fill
    the choices."""

    state_changed = Signal(object)  # OverlayState
    opacity_changed = Signal(float)
    epoch_chosen = Signal(object)  # int | None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._epochs: list[int] = []
        self._colormaps: dict[str, str] = {}  # metric -> the user's colormap for it
        self.metric = QComboBox()
        for entry in METRICS:
            self.metric.addItem(entry.title, entry.key)
            self.metric.setItemData(
                self.metric.count() - 1, entry.definition, Qt.ItemDataRole.ToolTipRole
            )
        self.metric.setCurrentIndex(self.metric.findData(DEFAULT_METRIC))
        self.metric.setToolTip("What each patch is coloured by (hover an entry for its definition)")
        self.colormap = QComboBox()
        for name in available_colormaps():
            self.colormap.addItem(name, name)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(45)
        self.opacity.setToolTip("How much of the slide shows through the overlay")
        self.range_mode = QComboBox()
        for key, text, tip in RANGE_CHOICES:
            self.range_mode.addItem(text, key)
            self.range_mode.setItemData(
                self.range_mode.count() - 1, tip, Qt.ItemDataRole.ToolTipRole
            )
        self.range_mode.setToolTip("Which values the colours span")
        self.range_low = QDoubleSpinBox()
        self.range_high = QDoubleSpinBox()
        for box, end in ((self.range_low, "lowest"), (self.range_high, "highest")):
            box.setRange(-1e9, 1e9)
            box.setDecimals(4)
            box.setKeyboardTracking(False)
            box.setEnabled(False)
            box.setToolTip(f"The value drawn with the colormap's {end} colour")
        self.epoch = QSlider(Qt.Orientation.Horizontal)
        self.epoch.setRange(0, 0)
        self.epoch.setPageStep(1)
        self.epoch.setToolTip("Training time: all epochs together, or one epoch")
        self.epoch_label = QLabel("all epochs")
        self.play = QPushButton("▶ Replay")
        self.play.setCheckable(True)
        self.play.setToolTip("Step the time slider through the epochs")
        self.compare = QComboBox()
        self.compare.addItem("No comparison", "none")
        self.compare.addItem("Difference to epoch…", "epoch")
        self.compare.addItem("Difference to run…", "run")
        self.compare.setToolTip("Show this view minus another epoch or another run")
        self.compare_epoch = QComboBox()
        self.compare_epoch.setToolTip("The epoch subtracted")
        self.compare_run = QComboBox()
        self.compare_run.setToolTip("The run subtracted (at the same epoch)")
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
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Show", self.metric)
        form.addRow("Colormap", self.colormap)
        form.addRow("Opacity", self.opacity)
        form.addRow("Range", self.range_mode)
        form.addRow("", range_row)
        form.addRow("Training time", epoch_row)
        form.addRow("Compare", self.compare)
        form.addRow("Other epoch", self.compare_epoch)
        form.addRow("Other run", self.compare_run)

        self.metric.currentIndexChanged.connect(self._on_metric_changed)
        self.colormap.currentIndexChanged.connect(self._on_colormap_changed)
        for combo in (self.compare, self.compare_epoch, self.compare_run):
            combo.currentIndexChanged.connect(self._emit)
        self.range_mode.currentIndexChanged.connect(self._on_range_mode)
        self.range_low.valueChanged.connect(self._emit)
        self.range_high.valueChanged.connect(self._emit)
        self.epoch.valueChanged.connect(self._on_epoch_moved)
        self.opacity.valueChanged.connect(lambda v: self.opacity_changed.emit(v / 100.0))
        self.play.toggled.connect(self._on_play_toggled)
        self._show_metric_colormap()
        self._sync_enabled()

    # ------------------------------------------------------------------ choices
    def set_run(self, run_id: int | None, score_metric: str | None) -> None:
        """Grey out the metrics run ``run_id`` (scored by ``score_metric``) did not record,
        with the reason as tooltip; mark the one it did as equal to Mean score. When the
        metric shown is greyed out, Mean score is shown instead."""
        model = self.metric.model()
        assert isinstance(model, QStandardItemModel)
        for row, entry in enumerate(METRICS):
            item = model.item(row)
            reason = (
                entry.unavailable_reason(run_id, score_metric)
                if run_id is not None and score_metric is not None
                else None
            )
            item.setEnabled(reason is None)
            text, tip = entry.title, entry.definition
            if reason is not None:
                tip = reason
            elif entry.scored_by is not None and run_id is not None:
                text = f"{entry.title} (= Mean score)"
                tip = f"{entry.definition} Run {run_id} scored by {entry.key}: same map."
            item.setText(text)
            item.setToolTip(tip)
        current = model.item(self.metric.currentIndex())
        if current is not None and not current.isEnabled():
            self.select_metric("mean_score")

    def select_metric(self, key: str) -> None:
        """Show metric ``key`` (a registry key)."""
        index = self.metric.findData(key)
        if index >= 0:
            self.metric.setCurrentIndex(index)

    def colormap_choices(self) -> dict[str, str]:
        """The colormap the user picked per metric (to remember between sessions)."""
        return dict(self._colormaps)

    def set_colormap_choices(self, choices: Mapping[str, str]) -> None:
        """Restore :meth:`colormap_choices` (unknown metrics and colormaps are dropped)."""
        known = set(available_colormaps())
        self._colormaps = {m.key: choices[m.key] for m in METRICS if choices.get(m.key) in known}
        self._show_metric_colormap()
        self._emit()

    def set_epochs(self, epochs: Sequence[int]) -> None:
        """Epochs with history; the slider runs over "all" (0) then each epoch. When the
        slider was on the latest epoch it moves to the new latest (following a live run)
        and says so with ``epoch_chosen``."""
        at_end = self.epoch.value() == self.epoch.maximum() and self.epoch.value() > 0
        shown = self.selected_epoch()
        self._epochs = list(epochs)
        self.epoch.blockSignals(True)
        self.epoch.setRange(0, len(self._epochs))
        self.epoch.setValue(self._position(shown))
        self.epoch.blockSignals(False)
        self._update_epoch_label()
        self._refill(self.compare_epoch, [(f"epoch {e}", e) for e in self._epochs])
        if at_end and self.epoch.value() != self.epoch.maximum():
            self.epoch.setValue(self.epoch.maximum())

    def show_epoch(self, epoch: int | None) -> None:
        """Put the slider on ``epoch`` (None: all epochs) without emitting."""
        self.epoch.blockSignals(True)
        self.epoch.setValue(self._position(epoch))
        self.epoch.blockSignals(False)
        self._update_epoch_label()

    def _position(self, epoch: int | None) -> int:
        return self._epochs.index(epoch) + 1 if epoch in self._epochs else 0

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
        """Display the range the renderer picked (while the range is automatic)."""
        if value_range is None or self.range_mode.currentData() == "manual":
            return
        for box, value in zip((self.range_low, self.range_high), value_range, strict=True):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)

    # -------------------------------------------------------------------- state
    def state(self) -> OverlayState:
        compare = self.compare.currentData()
        mode = self.range_mode.currentData()
        manual = None
        if mode == "manual":
            low, high = sorted((self.range_low.value(), self.range_high.value()))
            manual = (low, high)
        key = self.metric.currentData()
        return OverlayState(
            metric=key,
            colormap=None if metric(key).categorical else self.colormap.currentData(),
            opacity=self.opacity.value() / 100.0,
            value_range=manual,
            range_over="view" if mode == "view" else "run",
            epoch=self.selected_epoch(),
            compare=compare,
            compare_epoch=self.compare_epoch.currentData() if compare == "epoch" else None,
            compare_run=self.compare_run.currentData() if compare == "run" else None,
        )

    def selected_epoch(self) -> int | None:
        position = self.epoch.value()
        return None if position == 0 else self._epochs[position - 1]

    def _emit(self, *_args: Any) -> None:
        self._sync_enabled()
        self.state_changed.emit(self.state())

    def _on_metric_changed(self) -> None:
        self._show_metric_colormap()
        self._emit()

    def _show_metric_colormap(self) -> None:
        """The colormap of the metric shown: the user's pick for it, else its default."""
        entry = metric(self.metric.currentData())
        name = self._colormaps.get(entry.key, entry.default_colormap)
        self.colormap.blockSignals(True)
        if name is not None:
            self.colormap.setCurrentIndex(self.colormap.findData(name))
        self.colormap.blockSignals(False)

    def _on_colormap_changed(self) -> None:
        entry = metric(self.metric.currentData())
        if entry.default_colormap is not None:
            self._colormaps[entry.key] = self.colormap.currentData()
        self._emit()

    def _sync_enabled(self) -> None:
        compare = self.compare.currentData()
        self.compare_epoch.setEnabled(compare == "epoch")
        self.compare_run.setEnabled(compare == "run")
        categorical = metric(self.metric.currentData()).categorical
        self.colormap.setEnabled(not categorical)
        self.colormap.setToolTip(
            "Classes are drawn with one colour each"
            if categorical
            else "Colours of the values; remembered for each metric"
        )
        manual = self.range_mode.currentData() == "manual"
        self.range_low.setEnabled(manual)
        self.range_high.setEnabled(manual)

    def _on_range_mode(self) -> None:
        self._emit()

    def _on_epoch_moved(self) -> None:
        self._update_epoch_label()
        self.epoch_chosen.emit(self.selected_epoch())

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
