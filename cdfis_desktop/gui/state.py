"""The desktop app's single source of truth: the open project, its slides and runs, and
the current slide, run, epoch and patch. Qt-free (an import-linter contract forbids Qt
here), so it is tested without a display and widgets cannot keep a second copy.

Widgets and controllers *observe* it, as napari's ``QtDims`` observes ``Dims``: they
``connect`` to the events in :class:`StateEvents` and update themselves, and they change
the selection only through :class:`AppState`'s setters. The setters keep the selection
coherent: a patch always lies on the current slide (selecting a patch on another slide
switches the slide first), a new slide clears the patch, a new project clears everything.
An event fires only when its value changed, after every value it depends on is set.

Thread rule: GUI thread only (callbacks run synchronously in the setter's thread).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cdfis_desktop.core.storage import Project, RunSummary, SlideRecord


class Event:
    """Callbacks called with the new value, in connection order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._callbacks: list[Callable[[Any], None]] = []

    def connect(self, callback: Callable[[Any], None]) -> None:
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable[[Any], None]) -> None:
        self._callbacks.remove(callback)

    def emit(self, value: Any) -> None:
        for callback in list(self._callbacks):
            callback(value)


class StateEvents:
    """``project(Project | None)``, ``slides(tuple[SlideRecord, ...])``,
    ``runs(tuple[RunSummary, ...])``, ``slide(int | None)``, ``run(int | None)``,
    ``epoch(int | None)`` and ``patch(int | None)`` (ids; epoch None = all epochs)."""

    def __init__(self) -> None:
        self.project = Event("project")
        self.slides = Event("slides")
        self.runs = Event("runs")
        self.slide = Event("slide")
        self.run = Event("run")
        self.epoch = Event("epoch")
        self.patch = Event("patch")


class AppState:
    """What the window shows. Read the properties; change them with the setters."""

    def __init__(self) -> None:
        self.events = StateEvents()
        self._project: Project | None = None
        self._slides: tuple[SlideRecord, ...] = ()
        self._runs: tuple[RunSummary, ...] = ()
        self._slide_id: int | None = None
        self._run_id: int | None = None
        self._epoch: int | None = None
        self._patch_id: int | None = None

    # ------------------------------------------------------------------ reading
    @property
    def project(self) -> Project | None:
        return self._project

    @property
    def slides(self) -> tuple[SlideRecord, ...]:
        return self._slides

    @property
    def runs(self) -> tuple[RunSummary, ...]:
        return self._runs

    @property
    def slide_id(self) -> int | None:
        return self._slide_id

    @property
    def slide(self) -> SlideRecord | None:
        """The record of the current slide."""
        return next((s for s in self._slides if s.id == self._slide_id), None)

    @property
    def run_id(self) -> int | None:
        return self._run_id

    @property
    def run(self) -> RunSummary | None:
        """The summary of the current run."""
        return next((r for r in self._runs if r.id == self._run_id), None)

    @property
    def epoch(self) -> int | None:
        """The epoch shown (None: all epochs, cumulative)."""
        return self._epoch

    @property
    def patch_id(self) -> int | None:
        """The selected patch; it lies on :attr:`slide`."""
        return self._patch_id

    # ------------------------------------------------------------------ changing
    def set_project(
        self,
        project: Project | None,
        slides: Sequence[SlideRecord] = (),
        runs: Sequence[RunSummary] = (),
    ) -> None:
        """A new project (or None) with its catalogue: the selection starts empty, then
        the first slide and the newest run (``runs`` newest first) are chosen."""
        self._set_patch(None)
        self._set_slide(None)
        self._set_run(None)
        self._project = project
        self._slides, self._runs = tuple(slides), tuple(runs)
        self.events.project.emit(project)
        self.events.slides.emit(self._slides)
        self.events.runs.emit(self._runs)
        if self._slides:
            self._set_slide(self._slides[0].id)
        if self._runs:
            self._set_run(self._runs[0].id)

    def set_slides(self, slides: Sequence[SlideRecord]) -> None:
        """The catalogue changed (an import): the current slide stays when still there,
        else the first one is chosen."""
        self._slides = tuple(slides)
        self.events.slides.emit(self._slides)
        ids = [s.id for s in self._slides]
        if self._slide_id not in ids:
            self.set_slide(ids[0] if ids else None)

    def set_runs(self, runs: Sequence[RunSummary], select: int | None = None) -> None:
        """The runs changed (newest first); ``select`` one, else keep the current one
        when still there, else the newest."""
        self._runs = tuple(runs)
        self.events.runs.emit(self._runs)
        ids = [r.id for r in self._runs]
        wanted = select if select in ids else self._run_id
        self.set_run(wanted if wanted in ids else (ids[0] if ids else None))

    def set_slide(self, slide_id: int | None) -> None:
        """Show another slide; the selected patch is cleared."""
        if slide_id == self._slide_id:
            return
        self._set_patch(None)
        self._set_slide(slide_id)

    def set_run(self, run_id: int | None) -> None:
        """Look at another run; the epoch goes back to "all"."""
        if run_id == self._run_id:
            return
        self._set_epoch(None)
        self._set_run(run_id)

    def set_epoch(self, epoch: int | None) -> None:
        self._set_epoch(epoch)

    def select_patch(self, patch_id: int | None, slide_id: int | None = None) -> None:
        """Select ``patch_id`` on ``slide_id`` (default: the current slide), switching the
        slide first when it differs; None clears the selection."""
        if slide_id is not None and slide_id != self._slide_id:
            self._set_patch(None)
            self._set_slide(slide_id)
        self._set_patch(patch_id)

    # ------------------------------------------------------------------ internals
    def _set_slide(self, slide_id: int | None) -> None:
        if slide_id is not None and slide_id not in {s.id for s in self._slides}:
            raise ValueError(f"slide {slide_id} is not in the project")
        if slide_id != self._slide_id:
            self._slide_id = slide_id
            self.events.slide.emit(slide_id)

    def _set_run(self, run_id: int | None) -> None:
        if run_id is not None and run_id not in {r.id for r in self._runs}:
            raise ValueError(f"run {run_id} is not in the project")
        if run_id != self._run_id:
            self._run_id = run_id
            self.events.run.emit(run_id)

    def _set_epoch(self, epoch: int | None) -> None:
        if epoch != self._epoch:
            self._epoch = epoch
            self.events.epoch.emit(epoch)

    def _set_patch(self, patch_id: int | None) -> None:
        if patch_id != self._patch_id:
            self._patch_id = patch_id
            self.events.patch.emit(patch_id)
