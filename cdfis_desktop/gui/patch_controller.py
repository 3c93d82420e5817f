"""The selected patch: clicks on the slide, the patch browser, N / P, and the details panel.

Every way of choosing a patch goes through :meth:`AppState.select_patch`; the highlight,
the details panel and the gallery follow the state's events, so they always name the same
patch on the slide the viewer shows (a patch on another slide switches the slide first).

The slide's patch table (for hit-testing; 50,000 rows on a slide-scale slide) and the
gallery's favoured / ignored patches (two aggregate queries over the run) are read off the
GUI thread by two :class:`~.loader.LatestLoader`s, newest request winning: until the table
arrives a click selects nothing, and the gallery says it is loading.
GUI thread only; the reads run in the loaders' threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from cdfis_desktop.core.class_names import label_name
from cdfis_desktop.core.tiling.grid import patch_at
from cdfis_desktop.gui.error_dialog import describe
from cdfis_desktop.gui.gallery import PatchGallery
from cdfis_desktop.gui.loader import LatestLoader
from cdfis_desktop.gui.patch_details import PatchDetails, PatchInfo
from cdfis_desktop.gui.slide_viewer import SlideViewer
from cdfis_desktop.gui.state import AppState
from cdfis_desktop.gui.thumbnails import PatchThumbnailLoader, ThumbnailRequest

if TYPE_CHECKING:
    from cdfis_desktop.core.storage import (
        PatchHistory,
        PatchStat,
        PatchTable,
        Project,
        RunSummary,
        SlideMeasurements,
    )

GALLERY_SIZE = 24
GALLERY_ZOOM = 8  # a gallery patch is centred with this many patch sides across the view


@dataclass(frozen=True)
class TableRequest:
    """The patch table of one slide (a loader request)."""

    project: Project
    slide_id: int


@dataclass(frozen=True)
class GalleryRequest:
    """The galleries of one run under the gallery's filters (a loader request)."""

    project: Project
    run_id: int
    slide_id: int | None
    label: int | None
    epoch: int | None


@dataclass(frozen=True)
class GalleryPatches:
    """What :func:`_read_gallery` gives: ``PatchStat`` lists and the class names."""

    favoured: list[PatchStat]
    ignored: list[PatchStat]
    class_names: list[str]


class PatchController(QObject):
    """Owns the slide's patch table (for hit-testing), its loader, the gallery loader and
    the patch thumbnail loaders. Signals: ``table_changed()`` when :attr:`patches` was
    cleared or loaded, ``load_failed(message)`` when a table or gallery read failed."""

    table_changed = Signal()
    load_failed = Signal(str)

    def __init__(
        self,
        state: AppState,
        viewer: SlideViewer,
        details: PatchDetails,
        slide_paths: dict[int, Path],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.viewer = viewer
        self.details = details
        self.slide_paths = slide_paths  # shared with the window; filled on project open
        self.gallery_thumbs = PatchThumbnailLoader(96, parent=self)
        self.detail_thumbs = PatchThumbnailLoader(128, parent=self)
        self.gallery = PatchGallery(self.gallery_thumbs)
        self.patches: PatchTable | None = None  # of the slide shown; None while loading
        self.table_loader = LatestLoader("patch table", _read_table, latest_only=True, parent=self)
        self.table_loader.loaded.connect(self._on_table)
        self.table_loader.failed.connect(self._on_load_failed)
        self.gallery_loader = LatestLoader(
            "patch browser", _read_gallery, latest_only=True, parent=self
        )
        self.gallery_loader.loaded.connect(self._on_gallery)
        self.gallery_loader.failed.connect(self._on_load_failed)
        self._table_wanted: TableRequest | None = None  # requested, not yet arrived
        self._gallery_wanted: GalleryRequest | None = None
        self._gallery_shown: GalleryRequest | None = None
        self._predictions: dict[tuple[int, int], SlideMeasurements] = {}  # (run, slide)

        state.events.project.connect(self._on_project)
        state.events.slides.connect(lambda _slides: self._refresh_filter_choices())
        state.events.slide.connect(self._on_slide)
        state.events.patch.connect(lambda _patch: self._show_selected())
        state.events.run.connect(self._on_run)
        state.events.runs.connect(self._on_runs)
        viewer.position_clicked.connect(self._on_slide_clicked)
        self.gallery.patch_activated.connect(self.go_to)
        self.gallery.filters_changed.connect(self.refresh_gallery)
        self.detail_thumbs.loaded.connect(self._on_detail_thumbnail)

    def shutdown(self) -> None:
        for loader in (self.table_loader, self.gallery_loader):
            loader.shutdown()
        self.gallery_thumbs.shutdown()
        self.detail_thumbs.shutdown()

    def busy(self) -> bool:
        """The slide's patch table or the galleries are being read."""
        return self._table_wanted is not None or self._gallery_wanted is not None

    # ------------------------------------------------------------------ actions
    def go_to(self, stat: PatchStat) -> None:
        """Select a gallery patch (``PatchStat``) and centre the view on it."""
        self.state.select_patch(stat.patch_id, stat.slide_id)
        if self.state.slide_id == stat.slide_id:
            self.viewer.centre_on(
                stat.l0_x + stat.l0_size / 2,
                stat.l0_y + stat.l0_size / 2,
                l0_width=stat.l0_size * GALLERY_ZOOM,
            )

    def step(self, delta: int) -> None:
        """Go to the next (``delta=1``) or previous gallery patch, from the selected one."""
        stats = self.gallery.all_stats()
        if not stats:
            return
        keys = [(s.slide_id, s.patch_id) for s in stats]
        current = (self.state.slide_id, self.state.patch_id)
        index = keys.index(current) if current in keys else (-1 if delta > 0 else 0)
        self.go_to(stats[(index + delta) % len(stats)])

    def refresh_gallery(self) -> None:
        """Read the galleries of the state's run under the filters (in the loader)."""
        project, run_id = self.state.project, self.state.run_id
        if project is None or run_id is None:
            self._gallery_wanted = self._gallery_shown = None
            self.gallery_loader.request([])
            self.gallery.set_patches([], [], {}, [])
            return
        request = GalleryRequest(project, run_id, **self.gallery.filters())
        if request != self._gallery_shown:
            self.gallery.set_loading()  # a refresh of the same galleries keeps them shown
        self._gallery_wanted = request
        self.gallery_loader.request([request])

    # ----------------------------------------------------------- state events
    def _on_project(self, _project: Project | None) -> None:
        self.patches = None
        self._predictions.clear()
        self.details.clear()
        self._refresh_filter_choices()
        self.refresh_gallery()

    def _on_slide(self, slide_id: int | None) -> None:
        project = self.state.project
        self.patches = None
        self._table_wanted = (
            TableRequest(project, slide_id)
            if project is not None and slide_id is not None
            else None
        )
        self.table_loader.request([] if self._table_wanted is None else [self._table_wanted])
        self.table_changed.emit()
        self._show_selected()

    def _on_table(self, request: TableRequest, table: PatchTable) -> None:
        if request != self._table_wanted or self.sender() is not self.table_loader:
            return
        self._table_wanted = None
        self.patches = table
        self.table_changed.emit()
        self._show_selected()

    def _on_gallery(self, request: GalleryRequest, found: GalleryPatches) -> None:
        if request != self._gallery_wanted or self.sender() is not self.gallery_loader:
            return
        self._gallery_wanted, self._gallery_shown = None, request
        self.gallery.set_patches(found.favoured, found.ignored, self.slide_paths, found.class_names)

    def _on_load_failed(self, request: TableRequest | GalleryRequest, error: Exception) -> None:
        if request == self._table_wanted:
            self._table_wanted = None
        elif request == self._gallery_wanted:
            self._gallery_wanted = self._gallery_shown = None
            self.gallery.set_patches([], [], {}, [])
        else:
            return
        self.load_failed.emit(describe(error, "Patches").message)

    def _on_run(self, _run_id: int | None) -> None:
        self._refresh_filter_choices()
        self.refresh_gallery()
        self._show_selected()

    def _on_runs(self, _runs: Sequence[RunSummary]) -> None:
        """The runs changed (a run trained further): fresh predictions and galleries."""
        self._predictions.clear()
        self._refresh_filter_choices()
        self.refresh_gallery()

    def _refresh_filter_choices(self) -> None:
        project = self.state.project
        if project is None:
            self.gallery.set_filter_choices([], [], [])
            return
        run_id = self.state.run_id
        self.gallery.set_filter_choices(
            [(s.name, s.id) for s in self.state.slides],
            [(name, i) for i, name in enumerate(project.class_names())],
            project.epochs(run_id) if run_id is not None else [],
        )

    # ------------------------------------------------------------------ showing
    def _on_slide_clicked(self, l0_x: float, l0_y: float) -> None:
        table = self.patches
        index = (
            None if table is None else patch_at(table.l0_x, table.l0_y, table.l0_size, l0_x, l0_y)
        )
        self.state.select_patch(None if index is None else int(table.id[index]))

    def _show_selected(self) -> None:
        """Highlight and describe the state's patch, or clear both."""
        patch_id, table = self.state.patch_id, self.patches
        rows = (
            np.flatnonzero(table.id == patch_id)
            if table is not None and patch_id is not None
            else []
        )
        if len(rows) == 0:
            self.viewer.clear_highlight()
            self.details.clear()
            return
        row = int(rows[0])
        l0_x, l0_y, size = int(table.l0_x[row]), int(table.l0_y[row]), int(table.l0_size[row])
        self.viewer.highlight(l0_x, l0_y, size)
        self.details.show_patch(self._patch_info(row), self._history(patch_id))
        slide_id = self.state.slide_id
        self.detail_thumbs.request(
            [ThumbnailRequest(patch_id, self.slide_paths[slide_id], l0_x, l0_y, size)]
        )

    def _patch_info(self, row: int) -> PatchInfo:
        project, table, slide = self.state.project, self.patches, self.state.slide
        names = project.class_names()
        patch_id = int(table.id[row])
        prediction = "—"
        run_id = self.state.run_id
        if run_id is not None:
            key = (run_id, slide.id)
            if key not in self._predictions:
                self._predictions[key] = project.slide_measurements(run_id, slide.id)
            measured = self._predictions[key]
            predicted = int(measured.prediction[np.searchsorted(measured.patch_id, patch_id)])
            if predicted >= 0:
                prediction = label_name(names, predicted)
        return PatchInfo(
            patch_id,
            slide.name,
            int(table.l0_x[row]),
            int(table.l0_y[row]),
            int(table.l0_size[row]),
            label_name(names, int(table.label[row])),
            prediction,
            table.source[row] or "",
        )

    def _history(self, patch_id: int) -> PatchHistory | None:
        run_id = self.state.run_id
        return None if run_id is None else self.state.project.patch_history(run_id, patch_id)

    def _on_detail_thumbnail(self, request: ThumbnailRequest, image: QImage) -> None:
        if request.key == self.details.patch_id and self.sender() is self.detail_thumbs:
            self.details.set_thumbnail(image)


def _read_table(request: TableRequest) -> PatchTable:
    """Loader thread: the slide's patches, by id."""
    return request.project.patches(slide_id=request.slide_id)


def _read_gallery(request: GalleryRequest) -> GalleryPatches:
    """Loader thread: the :data:`GALLERY_SIZE` most favoured and most ignored patches."""
    project = request.project
    filters = {"slide_id": request.slide_id, "label": request.label, "epoch": request.epoch}
    return GalleryPatches(
        project.favoured_patches(request.run_id, GALLERY_SIZE, **filters),
        project.favoured_patches(request.run_id, GALLERY_SIZE, ignored=True, **filters),
        project.class_names(),
    )
