"""Training panel: configure a run, start / pause / resume / stop it, watch live plots.

The panel only builds a validated :class:`RunConfig` and emits requests; the main window
runs the training worker and feeds reports back with :meth:`TrainingPanel.add_reports`.
GUI thread only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cdfis_desktop.core.config import MODEL_NAMES, SCORE_METRICS, RunConfig
from cdfis_desktop.core.sampling.presets import SAMPLER_PRESETS, preset_config
from cdfis_desktop.gui.live_plots import LivePlots

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
STOP_RULES = ("epochs", "time budget (s)", "steps")


class TrainingPanel(QWidget):
    """Signals: ``start_requested()`` (the owner then reads :meth:`config`),
    ``pause_requested()``, ``resume_requested()``, ``stop_requested()``."""

    start_requested = Signal()
    pause_requested = Signal()
    resume_requested = Signal()
    stop_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from cdfis_desktop.core.demo.project import demo_run_config
        from cdfis_desktop.core.sampling.presets import DEFAULT_PRESET

        defaults = demo_run_config()
        sampler = defaults.sampler
        self.preset = _combo(tuple(SAMPLER_PRESETS), DEFAULT_PRESET)
        self.preset_note = QLabel()
        self.preset_note.setWordWrap(True)
        self.metric = _combo(SCORE_METRICS, sampler.metric)
        self.presample_ratio = _float_box(1.0, 64.0, sampler.presample_ratio, 1)
        self.floor = _float_box(0.0, 1.0, sampler.floor, 2)
        self.floor.setSingleStep(0.05)
        self.batch_size = _int_box(1, 4096, defaults.batch_size)
        self.stop_by = _combo(STOP_RULES, "steps" if defaults.max_steps else "epochs")
        self.stop_value = _int_box(1, 1_000_000, defaults.max_steps or defaults.epochs or 1)
        self.warmup = QLineEdit(sampler.warmup)
        self.model = _combo(MODEL_NAMES, defaults.model)
        self.device = _combo(DEVICE_CHOICES, defaults.device)
        self.learning_rate = _float_box(1e-6, 1.0, defaults.learning_rate, 6)
        self.seed = _int_box(0, 2**31 - 1, defaults.seed)
        self.augment = QCheckBox("augment")
        self.augment.setChecked(defaults.augment)
        _explain(
            (
                self.metric,
                "Per-patch importance score: loss, or the last layer's gradient "
                "norm (gradnorm; gradnorm_wb with the bias)",
            ),
            (self.presample_ratio, "r: candidates scored per batch slot (presample mode)"),
            (
                self.floor,
                "Share of the uniform distribution mixed into the sampling "
                "probabilities, so no patch is starved (0 = none)",
            ),
            (self.batch_size, "Patches per training step"),
            (self.stop_by, "Stop after this many epochs, seconds of training, or steps"),
            (self.stop_value, "How many epochs, seconds or steps"),
            (
                self.warmup,
                "Uniform sampling until: none, steps:N, epochs:N, loss:F (held-out "
                "loss below F x its first value) or variance:T",
            ),
            (self.model, "Classifier network"),
            (self.device, "auto: CUDA, then MPS, then CPU"),
            (self.learning_rate, "Adam learning rate"),
            (self.seed, "Random seed: the same seed gives the same run"),
            (self.augment, "Random flips and 90° rotations of training patches"),
        )

        self.start = QPushButton("Start")
        self.pause = QPushButton("Pause")
        self.resume = QPushButton("Resume")
        self.stop = QPushButton("Stop")
        self.start.setToolTip("Train a new run with these settings")
        self.pause.setToolTip("Pause after the current step")
        self.resume.setToolTip("Continue a paused run")
        self.stop.setToolTip("Stop the run (it keeps a checkpoint and can be continued)")
        self.status = QLabel("No run in progress.")
        self.status.setWordWrap(True)
        self.start.clicked.connect(self.start_requested)
        self.pause.clicked.connect(self.pause_requested)
        self.resume.clicked.connect(self.resume_requested)
        self.stop.clicked.connect(self.stop_requested)

        form = QFormLayout()
        form.addRow("Sampler", self.preset)
        form.addRow("", self.preset_note)
        form.addRow("Score", self.metric)
        form.addRow("Presample ratio", self.presample_ratio)
        form.addRow("Floor", self.floor)
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
        settings = QWidget()
        settings.setLayout(form)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(settings)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        # the buttons and the status stay in view however small the dock is
        buttons = QHBoxLayout()
        for button in (self.start, self.pause, self.resume, self.stop):
            buttons.addWidget(button)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(4, 4, 4, 4)
        left_layout.addLayout(buttons)
        left_layout.addWidget(self.status)
        left_layout.addWidget(scroll, 1)

        self.plots = LivePlots()
        self.plots.setMinimumHeight(120)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(self.plots)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self._paused = False
        self.preset.currentTextChanged.connect(self._show_preset)
        self._show_preset(self.preset.currentText())
        self.set_running(False)

    def _show_preset(self, name: str) -> None:
        """Describe the chosen preset, put its presample ratio (if it sets one) in the form,
        and enable the fields its mode uses (the ratio only in presample mode, the floor
        not for pruning, the score, floor and warm-up not for uniform)."""
        chosen = SAMPLER_PRESETS[name]
        self.preset_note.setText(chosen.summary)
        self.preset.setToolTip(f"{chosen.summary}\nSource: {chosen.source}")
        if "presample_ratio" in chosen.fields:
            self.presample_ratio.setValue(float(chosen.fields["presample_ratio"]))
        config = chosen.apply()
        sampling = config.rule != "uniform"
        self.presample_ratio.setEnabled(sampling and config.mode == "presample")
        self.floor.setEnabled(sampling and config.mode != "prune")  # pruning mixes in none
        for field in (self.metric, self.warmup):
            field.setEnabled(sampling)

    def config(self) -> RunConfig:
        """The run configuration in the form (the chosen preset, with the form's score,
        presample ratio and warm-up); raises ``ConfigError`` when invalid."""
        stop_by, value = self.stop_by.currentText(), self.stop_value.value()
        sampler = replace(
            preset_config(self.preset.currentText()),
            metric=self.metric.currentText(),
            presample_ratio=self.presample_ratio.value(),
            floor=self.floor.value(),
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
        """Enable the buttons that make sense in this state; while paused, the status
        says so (reports of steps already under way do not overwrite it)."""
        self._paused = running and paused
        if self._paused:
            self.set_status("Paused.")
        self.start.setEnabled(not running)
        self.pause.setEnabled(running and not paused)
        self.resume.setEnabled(running and paused)
        self.stop.setEnabled(running)

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    def add_reports(self, reports: Sequence[Any]) -> None:
        """Feed ``core.training.reports`` values (any order of Step/Epoch reports; the
        patch-loading progress before the first step goes to the status line)."""
        from cdfis_desktop.core.training.reports import EpochReport, LoadProgress, StepReport

        last_step = None
        for report in reports:
            if isinstance(report, LoadProgress):
                self.set_status(
                    f"{report.message.capitalize()}: {report.done}/{report.total} patches"
                )
            elif isinstance(report, StepReport):
                self.plots.add_train_step(report.step, report.train_loss, None)
                self.plots.add_throughput(report.step, report.samples_per_s)
                self.plots.add_share_chosen(report.step, report.chosen_share)
                last_step = report
            elif isinstance(report, EpochReport):
                self.plots.add_validation(report.step, report.val_loss, report.val_accuracy)
        if last_step is not None:
            self.plots.set_scores(last_step.candidate_scores)
            phase = "importance sampling" if last_step.is_active else "uniform warm-up"
            progress = (
                f"step {last_step.step} · epoch {last_step.epoch} ({last_step.epoch_progress:.2f})"
            )
            if self._paused:
                self.set_status(f"Paused at {progress}.")
            else:
                self.set_status(f"{progress} · {last_step.samples_per_s:.0f} samples/s · {phase}")


def _explain(*pairs: tuple[QWidget, str]) -> None:
    for widget, text in pairs:
        widget.setToolTip(text)


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
