"""The importance overlay on the viewer: rendered off the GUI thread for the state's slide,
run and epoch and the overlay controls' choices, with the newest request winning.

When there is nothing to draw, the canvas says why (no run yet, a validation slide the
training never drew from, a metric the run did not record), with a link to what can be
shown instead. GUI thread only; the rendering runs in the loader's thread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Signal

from cdfis_desktop.core.errors import CdfisError
from cdfis_desktop.core.heatmap.metrics import METRICS, metric
from cdfis_desktop.core.tiling.grid import patch_at
from cdfis_desktop.gui.error_dialog import describe
from cdfis_desktop.gui.loader import LatestLoader
from cdfis_desktop.gui.overlay import OverlayState, build_overlay
from cdfis_desktop.gui.overlay_controls import OverlayControls
from cdfis_desktop.gui.slide_viewer import SlideViewer
from cdfis_desktop.gui.state import AppState

if TYPE_CHECKING:
    from cdfis_desktop.core.heatmap.overlay import Overlay
    from cdfis_desktop.core.storage import PatchTable, Project, RunSummary, SlideRecord

NOT_FROM_HISTORY = frozenset({"label", "prediction", "prediction_probability"})
HISTORY_METRICS = frozenset(m.key for m in METRICS) - NOT_FROM_HISTORY
"""Metrics recorded only for patches the training drew candidates from."""


@dataclass(frozen=True)
class OverlayRequest:
    """What one rendering is for (hashable: the loader's request)."""

    project: Project
    run_id: int
    slide: SlideRecord
    state: OverlayState


@dataclass(frozen=True)
class OverlayResult:
    """A rendered layer, or ``notice`` (HTML) saying why there is nothing to draw."""

    layer: Overlay | None
    notice: str | None = None


class OverlayController(QObject):
    """Signals: ``overlay_updated()`` after the layer was redrawn (or explained away),
    ``overlay_failed(message)`` when it could not be rendered."""

    overlay_updated = Signal()
    overlay_failed = Signal(str)

    def __init__(
        self,
        state: AppState,
        viewer: SlideViewer,
        controls: OverlayControls,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.viewer = viewer
        self.controls = controls
        self.loader = LatestLoader("overlay", _render, latest_only=True, parent=self)
        self.loader.loaded.connect(self._on_rendered)
        self.loader.failed.connect(self._on_failed)
        self._latest: OverlayRequest | None = None  # requested, not yet shown
        self.layer: Overlay | None = None  # shown
        self.last_failure: str | None = None

        state.events.slide.connect(lambda _slide: self.refresh())
        state.events.run.connect(self._on_run)
        state.events.runs.connect(self._on_runs)
        state.events.epoch.connect(self._on_epoch)
        controls.state_changed.connect(lambda _state: self.refresh())
        controls.epoch_chosen.connect(state.set_epoch)
        controls.opacity_changed.connect(viewer.set_overlay_opacity)
        viewer.notice_link_activated.connect(self._on_notice_link)
        viewer.cursor_moved.connect(self._show_value_at)

    def shutdown(self) -> None:
        self.loader.shutdown()

    def busy(self) -> bool:
        """A rendering is queued, running, or on its way to the GUI thread."""
        return self._latest is not None

    def shown(self) -> bool:
        return self.viewer.overlay_item.isVisible()

    def request_state(self) -> OverlayState:
        """The controls' choices at the state's epoch."""
        return dataclasses.replace(self.controls.state(), epoch=self.state.epoch)

    def refresh(self) -> None:
        """Render the overlay for the current slide, run, epoch and controls."""
        project, slide, run_id = self.state.project, self.state.slide, self.state.run_id
        if project is None or slide is None:
            self._clear_layer()  # the slide controller says what to do
            return
        if run_id is None:
            self._clear(
                "<b>No training run yet.</b> Start one in the <i>Training</i> tab below "
                "(or with <code>cdfis train</code>); its overlay will show here."
            )
            return
        request = OverlayRequest(project, run_id, slide, self.request_state())
        self._latest = request
        self.loader.request([request])

    # ------------------------------------------------------------------ events
    def _on_run(self, run_id: int | None) -> None:
        project, run = self.state.project, self.state.run
        self.controls.set_epochs(project.epochs(run_id) if project and run_id else [])
        self.controls.set_run(run_id, run.metric if run is not None else None)
        self.refresh()

    def _on_runs(self, runs: Sequence[RunSummary]) -> None:
        self.controls.set_runs([(f"#{r.id} {r.name or r.sampler}", r.id) for r in runs])
        project, run_id = self.state.project, self.state.run_id
        if project is not None and run_id is not None:
            self.controls.set_epochs(project.epochs(run_id))  # may move the epoch (live run)
            self.refresh()

    def _on_epoch(self, epoch: int | None) -> None:
        self.controls.show_epoch(epoch)
        self.refresh()

    def _on_notice_link(self, target: str) -> None:
        kind, _, value = target.partition(":")
        if kind == "metric":
            self.controls.select_metric(value)
        elif kind == "epoch":
            self.state.set_epoch(None)

    def _on_rendered(self, request: OverlayRequest, result: OverlayResult) -> None:
        if request != self._latest or self.sender() is not self.loader:
            return
        self.last_failure = None
        self._latest = None
        if result.layer is None:
            self._clear(result.notice)
        else:
            layer = result.layer
            self.layer = layer
            self.viewer.set_notice(None)
            self.viewer.set_overlay(layer.rgba, layer.l0_rect)
            self.viewer.set_overlay_opacity(self.controls.state().opacity)
            self.viewer.set_legend(layer.legend, legend_caption(layer))
            self.controls.show_auto_range(layer.value_range)
        self.overlay_updated.emit()

    def _on_failed(self, request: OverlayRequest, error: Exception) -> None:
        if request != self._latest:
            return
        info = describe(error, "Overlay")
        self.last_failure = info.message
        self._latest = None
        if isinstance(error, CdfisError):
            self._clear(f"<b>Nothing to show.</b> {_escape(info.message)}")
        else:  # a bug: the dialog carries the traceback
            self._clear(None)
            parent = self.parent()
            errors = getattr(parent, "errors", None)
            if errors is not None:
                errors.show(info)
        self.overlay_failed.emit(info.message)

    def _show_value_at(self, l0_x: float, l0_y: float) -> None:
        """The hud's line for the overlay's value under the cursor."""
        self.viewer.hud.set_value_text(value_text(self.layer, l0_x, l0_y) if self.layer else "")

    def _clear(self, notice: str | None) -> None:
        """No layer; ``notice`` (HTML) says why."""
        self._clear_layer()
        self.viewer.set_notice(notice)

    def _clear_layer(self) -> None:
        self._latest = None
        self.layer = None
        self.viewer.hud.set_value_text("")
        self.viewer.set_overlay(None)
        self.viewer.set_legend(None)


def _render(request: OverlayRequest) -> OverlayResult:
    """Loader thread: the layer, or why there is none."""
    state = request.state
    run = request.project.run(request.run_id)
    entry = metric(state.metric)
    if entry.unavailable_reason(run.id, run.metric) is not None:
        return OverlayResult(
            None,
            f"<b>Run #{run.id} did not record {entry.title.lower()}</b>: its sampler scored "
            f"patches by {metric(run.metric).title.lower()}. "
            f"{link('metric:mean_score', 'Show the mean score')} (the same values)",
        )
    layer = build_overlay(request.project, request.run_id, request.slide, state)
    if layer.rgba[..., 3].any():
        return OverlayResult(layer)
    return OverlayResult(None, _empty_reason(request, run))


def _empty_reason(request: OverlayRequest, run: RunSummary) -> str:
    """Why a slide has no value for the metric (HTML with links to what can be shown)."""
    project, state, slide = request.project, request.state, request.slide
    name = _escape(slide.name)
    patches = project.patches(slide_id=slide.id)
    title = metric(state.metric).title.lower()
    predictions = link("metric:prediction", "Show the predictions")
    if len(patches) == 0:
        return f"<b>{name} has no patches</b>: no tissue was found on it at import."
    if state.metric not in HISTORY_METRICS:
        return f"<b>Run #{run.id} has no {title} for {name}.</b>"
    if state.epoch is not None:
        return f"<b>No patch of {name} was a candidate in epoch {state.epoch}.</b> " + link(
            "epoch:all", "Show all epochs"
        )
    if _validated(project, run.id, slide.id, patches):
        return (
            f"<b>{name} is a validation slide</b>: training never drew patches from it "
            f"(its patient was held out to validate the model), so it has no {title}. "
            f"{predictions} of run #{run.id} instead."
        )
    return (
        f"<b>Run #{run.id} never drew from {name}</b>: the slide was imported after the run, "
        "or holds no labelled patch. Train a new run to include it."
    )


def _validated(project: Project, run_id: int, slide_id: int, patches: PatchTable) -> bool:
    """The slide's patches validated run ``run_id``: split ``val`` in the store, or
    predicted at the run's first epoch (the engine predicts only validation patches at
    the end of each epoch, and every patch once at the end of the run)."""
    if all(split == "val" for split in patches.split):
        return True
    epochs = project.epochs(run_id)
    if not epochs:
        return False
    measured = project.slide_measurements(run_id, slide_id, epochs[0])
    return bool((measured.prediction >= 0).any())


def legend_caption(layer: Overlay) -> str:
    """What the ends of a signed legend mean ("" for the others)."""
    request = layer.request
    if request.comparing:
        other = (
            f"epoch {request.compare_epoch}"
            if request.compare == "epoch"
            else f"run {request.compare_run}"
        )
        return f"below 0: less than {other} · above 0: more"
    if layer.metric.kind == "signed":
        return "below 0: ignored · 0: as uniform · above 0: favoured"
    return ""


def value_text(layer: Overlay, l0_x: float, l0_y: float) -> str:
    """``Title: value units`` of the patch under the level-0 point ("" off the patches)."""
    values = layer.values
    index = patch_at(values.l0_x, values.l0_y, values.l0_size, l0_x, l0_y)
    if index is None:
        return ""
    value = float(values.value[index])
    title = layer.legend.title
    if not np.isfinite(value):
        return f"{title}: no value (patch {int(values.patch_id[index])})"
    if layer.legend.categories:
        classes = layer.legend.categories
        name = classes[int(value)] if 0 <= int(value) < len(classes) else f"class {int(value)}"
        return f"{title}: {name}"
    sign = "+" if layer.metric.kind == "signed" or layer.request.comparing else ""
    return f"{title}: {value:{sign}.3g} {layer.legend.units}".rstrip()


def link(target: str, text: str) -> str:
    """An action link of the canvas notice, readable on its dark box."""
    return f"<a href='{target}' style='color: #8cc8ff'>{text}</a>"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
