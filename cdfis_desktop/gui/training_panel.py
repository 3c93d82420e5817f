"""Training panel: configure a run, start / pause / resume / stop it, watch live plots.

The panel only builds a validated :class:`RunConfig` and emits requests; the main window
runs the training worker and feeds reports back with :meth:`TrainingPanel.add_reports`.
GUI thread only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cdfis_desktop.core.config import (
    MODEL_NAMES,
    SAMPLER_MODES,
    SAMPLER_RULES,
    SCORE_METRICS,
    RunConfig,
    SamplerConfig,
)
from cdfis_desktop.gui.live_plots import LivePlots

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


class TrainingPanel(QWidget):
    """Signals: ``start_requested()`` (the owner then reads :meth:`config`),
    ``pause_requested()``, ``resume_requested()``, ``stop_requested()``."""

    start_requested = Signal()
    pause_requested = Signal()
    resume_requested = Signal()
    stop_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rule = _combo(SAMPLER_RULES, "cdf")
        self.mode = _combo(SAMPLER_MODES, "presample")
        self.metric = _combo(SCORE_METRICS, "loss")
        self.presample_ratio = _float_box(1.0, 64.0, 8.0, 1)
        self.batch_size = _int_box(1, 4096, 64)
        self.stop_by = _combo(("epochs", "time budget (s)", "steps"), "epochs")
        self.stop_value = _int_box(1, 1_000_000, 3)
        self.warmup = QLineEdit("none")
        self.warmup.setToolTip("none, steps:N, epochs:N, loss:F (e.g. loss:0.75) or variance:T")
        self.model = _combo(MODEL_NAMES, "smallcnn")
        self.device = _combo(DEVICE_CHOICES, "auto")
        self.learning_rate = _float_box(1e-6, 1.0, 1e-3, 6)
        self.seed = _int_box(0, 2**31 - 1, 0)
        self.augment = QCheckBox("augment")
        self.augment.setChecked(True)

        self.start = QPushButton("Start")
        self.pause = QPushButton("Pause")
        self.resume = QPushButton("Resume")
        self.stop = QPushButton("Stop")
        self.status = QLabel("No run in progress.")
        self.status.setWordWrap(True)
        self.start.clicked.connect(self.start_requested)
        self.pause.clicked.connect(self.pause_requested)
        self.resume.clicked.connect(self.resume_requested)
        self.stop.clicked.connect(self.stop_requested)

        form = QFormLayout()
        form.addRow("Sampler", self.rule)
        form.addRow("Mode", self.mode)
        form.addRow("Score", self.metric)
        form.addRow("Presample ratio", self.presample_ratio)
        form.addRow("Batch size", self.batch_size)
        stop_row = QHBoxLayout()
        stop_row.addWidget(self.stop_by)
        stop_row.addWidget(self.stop_value)
        form.addRow("Stop after", stop_row)
        form.addRow("Warm-up", self.warmup)
        form.addRow("Model", self.model)
        form.addRow("Device", self.device)
        form.addRow("Learning rate", self.learning_rate)
        form.addRow("Seed", self.seed)
        form.addRow("", self.augment)
        buttons = QHBoxLayout()
        for button in (self.start, self.pause, self.resume, self.stop):
            buttons.addWidget(button)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addLayout(form)
        left_layout.addLayout(buttons)
        left_layout.addWidget(self.status)
        left_layout.addStretch(1)

        self.plots = LivePlots()
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(self.plots)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self.set_running(False)

    def config(self) -> RunConfig:
        """The run configuration in the form; raises ``ConfigError`` when invalid."""
        stop_by, value = self.stop_by.currentText(), self.stop_value.value()
        sampler = SamplerConfig(
            rule=self.rule.currentText(),
            mode=self.mode.currentText(),
            metric=self.metric.currentText(),
            presample_ratio=self.presample_ratio.value(),
            warmup=self.warmup.text().strip() or "none",
        )
        config = RunConfig(
            sampler=sampler,
            model=self.model.currentText(),
            batch_size=self.batch_size.value(),
            epochs=value if stop_by == "epochs" else None,
            time_budget_s=float(value) if stop_by.startswith("time") else None,
            max_steps=value if stop_by == "steps" else None,
            learning_rate=self.learning_rate.value(),
            seed=self.seed.value(),
            device=self.device.currentText(),
            augment=self.augment.isChecked(),
        )
        config.validate()
        return config

    def set_running(self, running: bool, paused: bool = False) -> None:
        """Enable the buttons that make sense in this state."""
        self.start.setEnabled(not running)
        self.pause.setEnabled(running and not paused)
        self.resume.setEnabled(running and paused)
        self.stop.setEnabled(running)

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    def add_reports(self, reports: Sequence[Any]) -> None:
        """Feed ``core.training.reports`` values (any order of Step/Epoch reports)."""
        from cdfis_desktop.core.training.reports import EpochReport, StepReport

        last_step = None
        for report in reports:
            if isinstance(report, StepReport):
                self.plots.add_train_step(report.step, report.train_loss, None)
                self.plots.add_throughput(report.step, report.samples_per_s)
                self.plots.add_share_chosen(report.step, report.chosen_share)
                last_step = report
            elif isinstance(report, EpochReport):
                self.plots.add_validation(report.step, report.val_loss, report.val_accuracy)
        if last_step is not None:
            self.plots.set_scores(last_step.candidate_scores)
            phase = "importance sampling" if last_step.is_active else "uniform warm-up"
            self.set_status(
                f"step {last_step.step} · epoch {last_step.epoch} ({last_step.epoch_progress:.2f}) · "
                f"{last_step.samples_per_s:.0f} samples/s · {phase}"
            )


def _combo(choices: Sequence[str], current: str) -> QComboBox:
    combo = QComboBox()
    combo.addItems(list(choices))
    combo.setCurrentText(current)
    return combo


def _int_box(low: int, high: int, value: int) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    return box


def _float_box(low: float, high: float, value: float, decimals: int) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setDecimals(decimals)
    box.setRange(low, high)
    box.setValue(value)
    return box
