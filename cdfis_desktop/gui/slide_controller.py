"""The state's slide in the viewer, with its annotation outlines.

Opens the slide when :attr:`AppState.slide_id` changes, reads its annotation file (kept in
the project at import) off the GUI thread and outlines each class, and says on the canvas
what to do when there is no project or no slide. GUI thread only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QColor, QPainterPath

from cdfis_desktop.core.errors import CdfisError
from cdfis_desktop.gui.error_dialog import ErrorReporter
from cdfis_desktop.gui.loader import LatestLoader
from cdfis_desktop.gui.slide_viewer import SlideViewer
from cdfis_desktop.gui.state import AppState

if TYPE_CHECKING:
    from cdfis_desktop.core.storage import Project, SlideRecord

NO_PROJECT = (
    "<b>No project open.</b> Open one with <i>File › Open project</i>, make one with "
    "<i>File › New project</i>, or run <code>cdfis demo</code> for a trained example."
)
NO_SLIDES = (
    "<b>This project has no slides yet.</b> Add some with <i>File › Import slides</i> "
    "(any format OpenSlide reads, with QuPath GeoJSON or ASAP XML annotations)."
)
OTHER_CLASS_COLOR = QColor(255, 255, 255)
Outline = tuple[str, QPainterPath, QColor]
"""An annotation class: its name, its shapes in level-0 px, its colour."""


class SlideController(QObject):
    """``slide_paths`` (slide id -> file) is filled by :meth:`set_project` and shared with
    the other controllers. Signal ``outlines_shown(slide_id, outlines)``: the annotation
    outlines (list of :data:`Outline`, empty when the slide has none or they are
    unreadable) of the slide now shown, or of a slide asked for with
    :meth:`request_outlines` (the review queue's neighbourhood views)."""

    outlines_shown = Signal(int, object)

    def __init__(
        self,
        state: AppState,
        viewer: SlideViewer,
        errors: ErrorReporter,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.viewer = viewer
        self.errors = errors
        self.slide_paths: dict[int, Path] = {}
        self.outlines = LatestLoader("annotations", _read_outlines, latest_only=True, parent=self)
        self.other_outlines = LatestLoader(
            "other annotations", _read_outlines, latest_only=True, parent=self
        )
        for loader in (self.outlines, self.other_outlines):
            loader.loaded.connect(self._on_outlines)
            loader.failed.connect(self._on_outlines_failed)
        state.events.project.connect(self._on_project)
        state.events.slides.connect(self._on_slides)
        state.events.slide.connect(self._on_slide)
        viewer.set_notice(NO_PROJECT)

    def shutdown(self) -> None:
        self.outlines.shutdown()
        self.other_outlines.shutdown()

    def request_outlines(self, slide_id: int) -> None:
        """Read the annotation outlines of any slide of the project off the GUI thread;
        ``outlines_shown`` answers (at once, with none, when it has no annotation file)."""
        from cdfis_desktop.core.tiling.annotations import slide_annotations_path

        project = self.state.project
        record = next((s for s in self.state.slides if s.id == slide_id), None)
        if project is None or record is None:
            return
        annotations = slide_annotations_path(project.folder, slide_id, record.file)
        if annotations is None:
            self.outlines_shown.emit(slide_id, [])
            return
        self.other_outlines.request([(slide_id, annotations, tuple(project.class_names()))])

    def _on_project(self, project: Project | None) -> None:
        if project is None:
            self.slide_paths.clear()
            self.viewer.close_slide()
            self.viewer.set_notice(NO_PROJECT)

    def _on_slides(self, slides: Sequence[SlideRecord]) -> None:
        self.slide_paths.clear()
        if self.state.project is not None:
            self.slide_paths.update({s.id: s.file for s in slides})
            if not slides:
                self.viewer.set_notice(NO_SLIDES)

    def _on_slide(self, slide_id: int | None) -> None:
        self.viewer.close_slide()
        if slide_id is None:
            return
        self.outlines_shown.emit(slide_id, [])  # none until this slide's file is read
        record = self.state.slide
        path = record.file
        try:  # with the project's mpp override, in the viewer and its tile threads
            self.viewer.open_slide(path, lambda _path: record.open())
        except CdfisError as exc:
            self.viewer.set_notice(f"<b>Cannot open {path.name}.</b> {exc}")
            self.errors.show_exception(exc, "Open slide")
            return
        self.viewer.set_notice(None)
        from cdfis_desktop.core.tiling.annotations import slide_annotations_path

        project = self.state.project
        annotations = slide_annotations_path(project.folder, slide_id, path)
        if annotations is not None:
            self.outlines.request([(slide_id, annotations, tuple(project.class_names()))])

    def _on_outlines(
        self, request: tuple[int, Path, tuple[str, ...]], outlines: list[Outline]
    ) -> None:
        if request[0] == self.state.slide_id and self.sender() is self.outlines:
            self.viewer.set_annotations(outlines)
        self.outlines_shown.emit(request[0], outlines)

    def _on_outlines_failed(
        self, request: tuple[int, Path, tuple[str, ...]], error: Exception
    ) -> None:
        if request[0] == self.state.slide_id and self.sender() is self.outlines:
            self.viewer.set_annotations([])
        self.outlines_shown.emit(request[0], [])


def _read_outlines(request: tuple[int, Path, tuple[str, ...]]) -> list[Outline]:
    """Loader thread: one painter path per annotation class, coloured like the class in
    the label overlay (classes the project does not know are white)."""
    from cdfis_desktop.core.heatmap import class_colors
    from cdfis_desktop.core.tiling.annotations import load_annotations

    _, path, class_names = request
    annotations = load_annotations(path)
    colors = class_colors(max(1, len(class_names)))
    outlines = []
    for name, geometry in sorted(annotations.geometries.items()):
        painter_path = QPainterPath()
        for polygon in getattr(geometry, "geoms", [geometry]):
            for ring in (polygon.exterior, *polygon.interiors):
                xy = list(ring.coords)
                painter_path.moveTo(*xy[0])
                for x, y in xy[1:]:
                    painter_path.lineTo(x, y)
                painter_path.closeSubpath()
        known = [n.casefold() for n in class_names]
        color = (
            QColor(*(int(c) for c in colors[known.index(name.casefold())][:3]))
            if name.casefold() in known
            else OTHER_CLASS_COLOR
        )
        outlines.append((name, painter_path, color))
    return outlines
