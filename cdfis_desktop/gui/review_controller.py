"""Wires the data map and the review queue to the app state, the slide viewer and the
patch controller (issue 17).

When the state's run changes, one quiet job builds the run's review queue (which computes
or reads the stored data map) and hands it to the :class:`~.data_map.DataMapView` and the
:class:`~.review_queue.ReviewQueuePanel`. Linking, both ways:

- a point clicked on the data map selects its patch (the slide switches and centres on
  it, like a gallery click); a rectangle of points outlines those patches on the slide
  shown (:class:`~.data_map.SlideSelection`, redrawn when the slide's patch table arrives);
- the selected patch, however it was chosen (slide click, gallery, N / P, queue), is
  ringed on the data map;
- the queue's shown patch is selected and centred.

GUI thread only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject

from cdfis_desktop.core.datamaps.queue import ReviewQueue, build_queue
from cdfis_desktop.gui.data_map import DataMapView, SlideSelection
from cdfis_desktop.gui.error_dialog import ErrorInfo
from cdfis_desktop.gui.review_queue import ReviewQueuePanel
from cdfis_desktop.gui.thumbnails import PatchThumbnailLoader

if TYPE_CHECKING:
    from cdfis_desktop.core.progress import CancelToken
    from cdfis_desktop.core.storage import PatchTable
    from cdfis_desktop.gui.error_dialog import ErrorReporter
    from cdfis_desktop.gui.jobs import JobRunner
    from cdfis_desktop.gui.patch_controller import PatchController
    from cdfis_desktop.gui.slide_viewer import SlideViewer
    from cdfis_desktop.gui.state import AppState

REVIEW_TOP = 500
"""Entries of the review queue loaded for the GUI (it shows one at a time)."""


class ReviewController(QObject):
    """Owns the data-map view, the review panel and their thumbnail loader."""

    def __init__(
        self,
        state: AppState,
        viewer: SlideViewer,
        patches: PatchController,
        jobs: JobRunner,
        errors: ErrorReporter,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.patches = patches
        self.jobs = jobs
        self.errors = errors
        self.thumbnails = PatchThumbnailLoader(240, parent=self)
        self.data_map_view = DataMapView()
        self.review_panel = ReviewQueuePanel(self.thumbnails)
        self.slide_selection = SlideSelection(viewer)
        state.events.run.connect(lambda _run: self.refresh())
        state.events.project.connect(lambda _project: self._clear())
        state.events.patch.connect(self.data_map_view.mark_patch)
        patches.table_changed.connect(lambda: self._outline(self.data_map_view.selected))
        self.data_map_view.patches_selected.connect(self._on_selected)
        self.review_panel.patch_shown.connect(patches.go_to)
        self.review_panel.ranking_changed.connect(lambda _name: self.refresh())
        self.review_panel.failed.connect(
            lambda message: errors.show(ErrorInfo("Review", message, "", True))
        )

    def shutdown(self) -> None:
        self.thumbnails.shutdown()

    def refresh(self, top: int = REVIEW_TOP) -> None:
        """Build the current run's queue (and data map) in a quiet job, then show both."""
        project, run_id = self.state.project, self.state.run_id
        if project is None or run_id is None:
            self._clear()
            return
        ranking = self.review_panel.ranking

        def work(_cancel: CancelToken, _progress: object) -> ReviewQueue:
            return build_queue(project, run_id, top=top, ranking=ranking)

        self.jobs.run("Data map", work, self._show, quiet=True)

    def _show(self, queue: ReviewQueue) -> None:
        if self.state.project is None or queue.run_id != self.state.run_id:
            return  # the project was closed or another run selected meanwhile
        if queue.ranking != self.review_panel.ranking:
            return  # another order was chosen meanwhile; its job follows
        self.data_map_view.set_data_map(queue.data_map)
        self.data_map_view.mark_patch(self.state.patch_id)
        self.review_panel.set_queue(self.state.project, queue)
        self.slide_selection.clear()

    def _clear(self) -> None:
        self.data_map_view.set_data_map(None)
        self.review_panel.set_queue(None, None)
        self.slide_selection.clear()

    def _on_selected(self, ids: np.ndarray) -> None:
        """One point: go to its patch; several: outline those on the slide shown."""
        project = self.state.project
        if ids.size == 1 and project is not None:
            found = project.patches(patch_ids=ids)
            if len(found):
                self.patches.go_to(_PatchRef(found))
        self._outline(ids)

    def _outline(self, ids: np.ndarray) -> None:
        table: PatchTable | None = self.patches.patches
        if table is None or not ids.size:
            self.slide_selection.clear()
            return
        mine = np.isin(table.id, ids)
        self.slide_selection.show(table.l0_x[mine], table.l0_y[mine], table.l0_size[mine])


class _PatchRef:
    """The first patch of a :class:`PatchTable` as :meth:`PatchController.go_to` reads it."""

    def __init__(self, table: PatchTable) -> None:
        self.patch_id = int(table.id[0])
        self.slide_id = int(table.slide_id[0])
        self.l0_x = int(table.l0_x[0])
        self.l0_y = int(table.l0_y[0])
        self.l0_size = int(table.l0_size[0])
