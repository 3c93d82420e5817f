"""The main window: project, slides and runs, the slide viewer with its importance overlay,
patch details, patch browser, training and exports.

Layout: slides and runs on the left, the viewer in the centre, overlay controls and the
clicked patch on the right, training and the patch browser in tabs at the bottom.
Long work (slide thumbnails, training, exports, imports) runs in worker threads
(:mod:`.workers`); the window itself only queries the store (fast, WAL readers never wait
for the training thread's writes). GUI thread only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cdfis_desktop.core.class_names import label_name
from cdfis_desktop.core.datamaps.queue import ReviewQueue, build_queue
from cdfis_desktop.core.errors import CdfisError
from cdfis_desktop.core.heatmap.overlay import Overlay
from cdfis_desktop.core.progress import Progress
from cdfis_desktop.gui.data_map import DataMapView, SlideSelection
from cdfis_desktop.gui.error_dialog import ErrorInfo, ErrorReporter
from cdfis_desktop.gui.gallery import PatchGallery
from cdfis_desktop.gui.overlay import OverlayState, build_overlay
from cdfis_desktop.gui.overlay_controls import OverlayControls
from cdfis_desktop.gui.patch_details import PatchDetails, PatchInfo
from cdfis_desktop.gui.qtimage import array_to_qimage
from cdfis_desktop.gui.review_queue import ReviewQueuePanel
from cdfis_desktop.gui.slide_viewer import SlideViewer
from cdfis_desktop.gui.thumbnails import PatchThumbnailLoader, ThumbnailRequest
from cdfis_desktop.gui.training_panel import TrainingPanel
from cdfis_desktop.gui.workers import JobFn, JobWorker, StreamWorker

MAX_RECENT = 8
GALLERY_SIZE = 24
_ROLE_ID = Qt.ItemDataRole.UserRole + 1
REVIEW_TOP = 500
"""Entries of the review queue loaded for the GUI (it shows one at a time)."""


class MainWindow(QMainWindow):
    """Signals: ``overlay_updated()`` after the overlay layer was redrawn, ``overlay_failed(message)``
    when it could not be (e.g. a metric the run did not record); ``project_opened()``."""

    overlay_updated = Signal()
    overlay_failed = Signal(str)
    project_opened = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("cdfis-desktop")
        self.settings = QSettings()
        self.errors = ErrorReporter(self)
        self.project: Any = None
        self.slide: Any = None  # SlideRecord shown in the viewer
        self.run_id: int | None = None
        self._patches: Any = None  # PatchTable of the slide shown
        self._slide_paths: dict[int, Path] = {}
        self._predictions: dict[tuple[int, int], Any] = {}  # (run, slide) -> SlideMeasurements
        self._gallery_index = -1
        self._jobs: list[JobWorker] = []
        self.training: StreamWorker | None = None
        self._overlay_worker: JobWorker | None = None
        self._overlay_pending: _OverlayRequest | None = None

        self.viewer = SlideViewer()
        self.overlay_controls = OverlayControls()
        self.patch_details = PatchDetails()
        self._gallery_thumbs = PatchThumbnailLoader(96, parent=self)
        self._detail_thumbs = PatchThumbnailLoader(128, parent=self)
        self.gallery = PatchGallery(self._gallery_thumbs)
        self._review_thumbs = PatchThumbnailLoader(240, parent=self)
        self.data_map_view = DataMapView()
        self.review_panel = ReviewQueuePanel(self._review_thumbs)
        self.training_panel = TrainingPanel()
        self.slide_list = QListWidget()
        self.slide_list.setIconSize(QPixmap(64, 64).size())
        self.run_list = QListWidget()
        self.setCentralWidget(self.viewer)
        self.slide_selection = SlideSelection(self.viewer)
        self._build_docks()
        self._build_status_bar()
        self._build_menus()
        self._connect()
        self._restore_layout()

    # ------------------------------------------------------------------ layout
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.lower().replace(" ", "_"))
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(QLabel("Slides"))
        left_layout.addWidget(self.slide_list, 2)
        left_layout.addWidget(QLabel("Runs"))
        left_layout.addWidget(self.run_list, 1)
        self._dock("Project", left, Qt.DockWidgetArea.LeftDockWidgetArea)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(self.overlay_controls)
        right_layout.addWidget(self.patch_details, 1)
        self._dock("Overlay", right, Qt.DockWidgetArea.RightDockWidgetArea)
        self.bottom_tabs = QTabWidget()
        self.bottom_tabs.addTab(self.training_panel, "Training")
        self.bottom_tabs.addTab(self.gallery, "Patch browser")
        self.bottom_tabs.addTab(self.data_map_view, "Data map")
        self.bottom_tabs.addTab(self.review_panel, "Review queue")
        self._dock("Work", self.bottom_tabs, Qt.DockWidgetArea.BottomDockWidgetArea)

    def _build_status_bar(self) -> None:
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancel_jobs)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)

    def _action(self, menu: Any, text: str, slot: Any, shortcut: Any = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            shortcuts = shortcut if isinstance(shortcut, list) else [shortcut]
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(
            file_menu, "&New project…", self._ask_new_project, QKeySequence.StandardKey.New
        )
        self._action(
            file_menu, "&Open project…", self._ask_open_project, QKeySequence.StandardKey.Open
        )
        self.recent_menu = file_menu.addMenu("Open &recent")
        file_menu.addSeparator()
        self._action(file_menu, "&Import slides…", self._ask_import_slides)
        self._action(file_menu, "Import &patch set…", self._ask_import_patch_set)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        export_menu = bar.addMenu("&Export")
        self._action(export_menu, "PDF &report…", lambda: self._ask_export("pdf"))
        self._action(export_menu, "&CSV…", lambda: self._ask_export("csv"))
        self._action(export_menu, "&GeoJSON (QuPath)…", lambda: self._ask_export("geojson"))
        self._action(export_menu, "&PNG overlay…", lambda: self._ask_export("png"))
        view_menu = bar.addMenu("&View")
        self._action(view_menu, "&Fit slide", self.viewer.fit)
        self._action(view_menu, "&Next patch", lambda: self.step_patch(1), ["N", "PgDown"])
        self._action(view_menu, "&Previous patch", lambda: self.step_patch(-1), ["P", "PgUp"])
        self._action(view_menu, "Sampler &comparisons…", self.show_comparisons)
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About", self._about)
        self._fill_recent_menu()

    def _connect(self) -> None:
        self.slide_list.currentItemChanged.connect(self._on_slide_selected)
        self.run_list.currentItemChanged.connect(self._on_run_selected)
        self.overlay_controls.state_changed.connect(lambda _state: self.refresh_overlay())
        self.overlay_controls.opacity_changed.connect(self.viewer.set_overlay_opacity)
        self.viewer.position_clicked.connect(self._on_slide_clicked)
        self.viewer.tile_error.connect(lambda m: self.statusBar().showMessage(m, 10_000))
        self.gallery.patch_activated.connect(self.go_to_patch)
        self.gallery.filters_changed.connect(self.refresh_gallery)
        self.data_map_view.patches_selected.connect(self._on_data_map_selection)
        self.review_panel.patch_shown.connect(self.go_to_patch)
        self.review_panel.failed.connect(
            lambda message: self.errors.show(ErrorInfo("Review", message, "", True))
        )
        self._detail_thumbs.thumbnail_loaded.connect(self._on_detail_thumbnail)
        self.training_panel.start_requested.connect(self.start_training)
        self.training_panel.pause_requested.connect(self.pause_training)
        self.training_panel.resume_requested.connect(self.resume_training)
        self.training_panel.stop_requested.connect(self.stop_training)

    # ----------------------------------------------------------------- project
    def open_project(self, folder: Path | str, *, create: bool = False) -> bool:
        """Open (or create) the project in ``folder``; errors are shown, returns success."""
        from cdfis_desktop.core.storage import Project

        try:
            project = Project.create(folder) if create else Project.open(folder)
        except CdfisError as exc:
            self.errors.show_exception(exc, "Open project")
            return False
        self.close_project()
        self.project = project
        self.setWindowTitle(f"{project.name} — cdfis-desktop")
        self._remember_recent(project.folder)
        self.reload_slides()
        self.reload_runs()
        self.project_opened.emit()
        return True

    def close_project(self) -> None:
        self.stop_training(wait=True)
        self.cancel_jobs(wait=True)
        self._overlay_pending = None
        if self._overlay_worker is not None:
            self._overlay_worker.stop()
            self._overlay_worker_done()
        self.viewer.close_slide()
        self.slide, self.run_id, self._patches = None, None, None
        self._predictions.clear()
        self.slide_list.clear()
        self.run_list.clear()
        self.patch_details.clear()
        if self.project is not None:
            self.project.close()
            self.project = None

    def reload_slides(self) -> None:
        """Fill the slide list (thumbnails are read in a worker) and select the first."""
        previous = self.slide.id if self.slide is not None else None
        records = self.project.slides()
        self.slide_list.blockSignals(True)
        self.slide_list.clear()
        for record in records:
            mpp = f"{record.mpp:.3g} µm/px" if record.mpp else "no mpp"
            item = QListWidgetItem(
                f"{record.name}\n{record.width:,} × {record.height:,} px · {mpp}"
            )
            item.setData(_ROLE_ID, record)
            self.slide_list.addItem(item)
        self.slide_list.blockSignals(False)
        self._slide_paths = {record.id: record.file for record in records}
        self.run_job(
            "Slide thumbnails",
            lambda cancel, progress: _slide_thumbnails(records),
            self._on_slide_thumbnails,
            quiet=True,
        )
        self._refresh_filter_choices()
        row = next((i for i, r in enumerate(records) if r.id == previous), 0)
        if records:
            self.slide_list.setCurrentRow(row)

    def reload_runs(self, select: int | None = None) -> None:
        """Fill the run list (newest first) and select ``select`` or the current/newest."""
        runs = self.project.runs()
        wanted = select if select is not None else self.run_id
        self.run_list.blockSignals(True)
        self.run_list.clear()
        for run in runs:
            accuracy = (
                f" · best val acc {run.best_val_accuracy:.3f}"
                if run.best_val_accuracy is not None
                else ""
            )
            item = QListWidgetItem(
                f"#{run.id} {run.name or run.sampler} — {run.status}\n"
                f"{run.sampler} · {run.steps or 0} steps{accuracy}"
            )
            item.setData(_ROLE_ID, run.id)
            self.run_list.addItem(item)
        self.run_list.blockSignals(False)
        self.overlay_controls.set_runs([(f"#{r.id} {r.name or r.sampler}", r.id) for r in runs])
        ids = [r.id for r in runs]
        if ids:
            self.run_list.setCurrentRow(ids.index(wanted) if wanted in ids else 0)

    def _on_slide_thumbnails(self, thumbnails: dict[int, np.ndarray]) -> None:
        for row in range(self.slide_list.count()):
            item = self.slide_list.item(row)
            rgb = thumbnails.get(item.data(_ROLE_ID).id)
            if rgb is not None:
                item.setIcon(QIcon(QPixmap.fromImage(array_to_qimage(rgb))))

    def _on_slide_selected(self, item: QListWidgetItem | None) -> None:
        if item is None:
            return
        self.show_slide(item.data(_ROLE_ID).id)

    def _on_run_selected(self, item: QListWidgetItem | None) -> None:
        if item is None:
            return
        self.run_id = item.data(_ROLE_ID)
        epochs = self.project.epochs(self.run_id)
        self.overlay_controls.set_epochs(epochs)
        self._refresh_filter_choices()
        if self.training is None:
            plots = self.training_panel.plots
            plots.show_metrics(self.project.metrics(self.run_id))
            if epochs:
                plots.set_scores(self.project.score_distribution(self.run_id, epoch=epochs[-1]))
        self.refresh_overlay()
        self.refresh_gallery()
        self.refresh_review()

    def refresh_review(self, top: int = REVIEW_TOP) -> None:
        """Load the run's data map and review queue in a worker, then show both."""
        project, run_id = self.project, self.run_id
        if project is None or run_id is None:
            return

        def work(_cancel: object, _progress: object) -> ReviewQueue:
            return build_queue(project, run_id, top=top)

        self.run_job("Data map", work, self._show_review, quiet=True)

    def _show_review(self, queue: ReviewQueue) -> None:
        if self.project is None or queue.run_id != self.run_id:
            return  # the project was closed or another run selected meanwhile
        self.data_map_view.set_data_map(queue.data_map)
        self.review_panel.set_queue(self.project, queue)
        self.slide_selection.clear()

    def _on_data_map_selection(self, ids: np.ndarray) -> None:
        """Outline the selected patches of the slide shown; go to a single one."""
        table = self._patches
        if ids.size == 1 and self.project is not None:
            found = self.project.patches(patch_ids=ids)
            if len(found):
                self.go_to_patch(_PatchRef(int(ids[0]), *(int(a[0]) for a in (
                    found.slide_id, found.l0_x, found.l0_y, found.l0_size))))  # fmt: skip
        if table is None:
            return
        mine = np.isin(table.id, ids)
        self.slide_selection.show(table.l0_x[mine], table.l0_y[mine], table.l0_size[mine])

    def _refresh_filter_choices(self) -> None:
        self.gallery.set_filter_choices(
            [(r.name, r.id) for r in self.project.slides()],
            [(name, i) for i, name in enumerate(self.project.class_names())],
            self.project.epochs(self.run_id) if self.run_id is not None else [],
        )

    def show_slide(self, slide_id: int) -> None:
        """Show a slide of the project in the viewer with the current overlay."""
        if self.slide is not None and self.slide.id == slide_id and self.viewer.slide is not None:
            return
        record = next(r for r in self.project.slides() if r.id == slide_id)
        try:
            self.viewer.open_slide(record.file, lambda _path: record.open())
        except CdfisError as exc:
            self.errors.show_exception(exc, "Open slide")
            return
        self.slide = record
        self._patches = self.project.patches(slide_id=slide_id)
        self.refresh_overlay()

    # ----------------------------------------------------------------- overlay
    def refresh_overlay(self) -> None:
        """Re-render the overlay for the slide, run and controls' state. The store query and
        the rendering run in a worker; while one runs, only the latest request waits."""
        if self.project is None or self.slide is None or self.run_id is None:
            self.viewer.set_overlay(None)
            self.viewer.set_legend(None)
            return
        request = _OverlayRequest(self.run_id, self.slide, self.overlay_controls.state())
        if self._overlay_worker is not None:
            self._overlay_pending = request
            return
        project = self.project

        def work(_cancel: object, _progress: object) -> tuple[_OverlayRequest, Overlay]:
            return request, build_overlay(project, request.run_id, request.slide, request.state)

        worker = JobWorker("Overlay", work, self)
        worker.succeeded.connect(self._apply_overlay)
        worker.failed.connect(self._overlay_failed)
        worker.finished.connect(self._overlay_worker_done)
        self._overlay_worker = worker
        worker.start()

    def _apply_overlay(self, result: tuple[_OverlayRequest, Overlay]) -> None:
        request, layer = result
        if self._overlay_pending is not None or self.slide is None:
            return  # a newer request follows
        if (request.slide.id, request.run_id) != (self.slide.id, self.run_id):
            return
        self.viewer.set_overlay(layer.rgba, layer.l0_rect)
        self.viewer.set_overlay_opacity(self.overlay_controls.state().opacity)
        self.viewer.set_legend(layer.legend)
        self.overlay_controls.show_auto_range(layer.value_range)
        self.overlay_updated.emit()

    def _overlay_failed(self, info: ErrorInfo) -> None:
        if not info.user_error:
            self.errors.show(info)
        self.viewer.set_overlay(None)
        self.viewer.set_legend(None)
        self.statusBar().showMessage(info.message, 10_000)
        self.overlay_failed.emit(info.message)

    def _overlay_worker_done(self) -> None:
        worker, self._overlay_worker = self._overlay_worker, None
        if worker is not None:
            worker.wait()
            worker.deleteLater()
        pending, self._overlay_pending = self._overlay_pending, None
        if pending is not None:
            self.refresh_overlay()

    def overlay_busy(self) -> bool:
        """An overlay is being rendered (or waits to be)."""
        return self._overlay_worker is not None or self._overlay_pending is not None

    def overlay_shown(self) -> bool:
        return self.viewer.overlay_item.isVisible()

    # ------------------------------------------------------------------ patches
    def patch_at(self, l0_x: float, l0_y: float) -> int | None:
        """Index into the slide's patch table of the patch containing the level-0 point
        (the one whose centre is nearest when patches overlap), or None."""
        table = self._patches
        if table is None or len(table) == 0:
            return None
        inside = (
            (table.l0_x <= l0_x)
            & (l0_x < table.l0_x + table.l0_size)
            & (table.l0_y <= l0_y)
            & (l0_y < table.l0_y + table.l0_size)
        )
        candidates = np.flatnonzero(inside)
        if candidates.size == 0:
            return None
        centre_x = table.l0_x[candidates] + table.l0_size[candidates] / 2
        centre_y = table.l0_y[candidates] + table.l0_size[candidates] / 2
        return int(candidates[np.argmin((centre_x - l0_x) ** 2 + (centre_y - l0_y) ** 2)])

    def _on_slide_clicked(self, l0_x: float, l0_y: float) -> None:
        index = self.patch_at(l0_x, l0_y)
        if index is None:
            self.viewer.clear_highlight()
            return
        self.show_patch(int(self._patches.id[index]))

    def show_patch(self, patch_id: int) -> None:
        """Highlight a patch of the current slide and show its details and history."""
        table = self._patches
        rows = np.flatnonzero(table.id == patch_id)
        if rows.size == 0:
            return
        row = int(rows[0])
        l0_x, l0_y, size = int(table.l0_x[row]), int(table.l0_y[row]), int(table.l0_size[row])
        self.viewer.highlight(l0_x, l0_y, size)
        self.data_map_view.mark_patch(patch_id)
        names = self.project.class_names()
        label = int(table.label[row])
        history, prediction = None, "—"
        if self.run_id is not None:
            history = self.project.patch_history(self.run_id, patch_id)
            key = (self.run_id, self.slide.id)
            if key not in self._predictions:
                self._predictions[key] = self.project.slide_measurements(*key)
            measured = self._predictions[key]
            predicted = int(measured.prediction[np.searchsorted(measured.patch_id, patch_id)])
            if predicted >= 0:
                prediction = label_name(names, predicted)
        self.patch_details.show_patch(
            PatchInfo(
                patch_id,
                self.slide.name,
                l0_x,
                l0_y,
                size,
                label_name(names, label),
                prediction,
                table.source[row] or "",
            ),
            history,
        )
        self._detail_thumbs.request(
            [ThumbnailRequest(patch_id, self._slide_paths[self.slide.id], l0_x, l0_y, size)]
        )

    def _on_detail_thumbnail(self, key: object, image: Any) -> None:
        if key == self.patch_details.patch_id:
            self.patch_details.set_thumbnail(image)

    def go_to_patch(self, stat: Any) -> None:
        """Show the patch's slide, centre the view on the patch and highlight it."""
        self.show_slide(stat.slide_id)
        self.viewer.centre_on(
            stat.l0_x + stat.l0_size / 2, stat.l0_y + stat.l0_size / 2, l0_width=stat.l0_size * 8
        )
        self.show_patch(stat.patch_id)
        stats = self.gallery.all_stats()
        ids = [s.patch_id for s in stats]
        if stat.patch_id in ids:
            self._gallery_index = ids.index(stat.patch_id)

    def step_patch(self, delta: int) -> None:
        """Go to the next (``delta=1``) or previous gallery patch."""
        stats = self.gallery.all_stats()
        if not stats:
            return
        self._gallery_index = (self._gallery_index + delta) % len(stats)
        self.go_to_patch(stats[self._gallery_index])

    def refresh_gallery(self) -> None:
        if self.project is None or self.run_id is None:
            return
        filters = self.gallery.filters()
        favoured = self.project.favoured_patches(self.run_id, GALLERY_SIZE, **filters)
        ignored = self.project.favoured_patches(self.run_id, GALLERY_SIZE, ignored=True, **filters)
        self.gallery.set_patches(favoured, ignored, self._slide_paths, self.project.class_names())
        self._gallery_index = -1

    # ------------------------------------------------------------------- jobs
    def run_job(
        self, what: str, fn: JobFn, on_success: Any = None, *, quiet: bool = False
    ) -> JobWorker:
        """Run ``fn(cancel, progress)`` in a worker; progress in the status bar, errors as
        dialogs, ``on_success(result)`` on the GUI thread."""
        worker = JobWorker(what, fn, self)
        self._jobs.append(worker)
        if not quiet:
            self.progress.setRange(0, 0)
            self.progress.show()
            self.cancel_button.show()
            self.statusBar().showMessage(f"{what}…")
        worker.progressed.connect(self._on_job_progress)
        if on_success is not None:
            worker.succeeded.connect(on_success)
        worker.failed.connect(self.errors.show)
        worker.cancelled.connect(lambda: self.statusBar().showMessage(f"{what}: cancelled", 5000))
        worker.finished.connect(lambda w=worker: self._job_ended(w))
        worker.start()
        return worker

    def _on_job_progress(self, progress: Progress) -> None:
        self.progress.setRange(0, max(0, progress.total))
        self.progress.setValue(progress.done)
        if progress.message:
            self.statusBar().showMessage(progress.message)

    def _job_ended(self, worker: JobWorker) -> None:
        if worker in self._jobs:
            self._jobs.remove(worker)
        worker.wait()
        worker.deleteLater()
        if not self._jobs:
            self.progress.hide()
            self.cancel_button.hide()

    def cancel_jobs(self, wait: bool = False) -> None:
        for worker in list(self._jobs):
            if wait:
                worker.stop()
            else:
                worker.cancel()

    def jobs_running(self) -> bool:
        """Background jobs or an overlay rendering are under way."""
        return bool(self._jobs) or self.overlay_busy()

    # ----------------------------------------------------------------- training
    def start_training(self) -> None:
        """Start a run with the training panel's configuration in a worker thread."""
        if self.project is None or self.training is not None:
            return
        try:
            config = self.training_panel.config()
        except CdfisError as exc:
            self.errors.show_exception(exc, "Training settings")
            return
        from cdfis_desktop.core.training.engine import Trainer
        from cdfis_desktop.core.training.reports import EpochReport, RunFinished, RunStarted

        project = self.project
        worker = StreamWorker(
            "Training",
            lambda cancel: Trainer(project).iter_run(config, cancel),
            urgent_types=(RunStarted, EpochReport, RunFinished),
            parent=self,
        )
        worker.reports.connect(self._on_training_reports)
        worker.failed.connect(self.errors.show)
        worker.finished.connect(self._training_ended)
        self.training = worker
        self.training_panel.plots.clear_data()
        self.training_panel.set_running(True)
        self.training_panel.set_status("Preparing the run…")
        worker.start()

    def _on_training_reports(self, reports: list[Any]) -> None:
        from cdfis_desktop.core.training.reports import EpochReport, RunFinished, RunStarted

        self.training_panel.add_reports(reports)
        for report in reports:
            if isinstance(report, RunStarted):
                self.reload_runs(select=report.run_id)
                if report.warning:
                    self.statusBar().showMessage(report.warning, 10_000)
            elif isinstance(report, EpochReport) and report.run_id == self.run_id:
                self._predictions.clear()
                self.overlay_controls.set_epochs(self.project.epochs(self.run_id))
                self.refresh_overlay()
                self.refresh_gallery()
            elif isinstance(report, RunFinished):
                self.training_panel.set_status(
                    f"Run {report.run_id} {report.status} at step {report.step}"
                    + (f": {report.message}" if report.message else "")
                )

    def _training_ended(self) -> None:
        worker, self.training = self.training, None
        if worker is not None:
            worker.wait()
            worker.deleteLater()
        self.training_panel.set_running(False)
        if self.project is not None:
            self.reload_runs()

    def pause_training(self) -> None:
        if self.training is not None:
            self.training.cancel_token.pause()
            self.training_panel.set_running(True, paused=True)
            self.training_panel.set_status("Paused.")

    def resume_training(self) -> None:
        if self.training is not None:
            self.training.cancel_token.resume()
            self.training_panel.set_running(True, paused=False)

    def stop_training(self, wait: bool = False) -> None:
        """Ask the run to stop at its next step (it flushes its history and writes a
        checkpoint); the panel updates when the worker ends. ``wait``: block until then
        (used when closing)."""
        if self.training is None:
            return
        self.training_panel.set_status("Stopping…")
        self.training.cancel()
        if wait:
            self.training.wait()
            self._training_ended()

    def training_running(self) -> bool:
        return self.training is not None

    # ------------------------------------------------------------------ dialogs
    def _ask_new_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the new project")
        if folder:
            self.open_project(folder, create=True)

    def _ask_open_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a project folder")
        if folder:
            self.open_project(folder)

    def _ask_import_slides(self) -> None:
        from cdfis_desktop.gui.import_dialog import ImportDialog

        if self._require_project():
            ImportDialog(self, patch_set=False).open()

    def _ask_import_patch_set(self) -> None:
        from cdfis_desktop.gui.import_dialog import ImportDialog

        if self._require_project():
            ImportDialog(self, patch_set=True).open()

    def _ask_export(self, kind: str) -> None:
        from cdfis_desktop.gui.exports import ask_export

        if self._require_project() and self._require_run():
            ask_export(self, kind)

    def show_comparisons(self) -> None:
        """The project's sampler comparisons (cdfis compare), the selected run's first."""
        from cdfis_desktop.gui.comparison_dialog import ComparisonDialog

        if self._require_project():
            dialog = ComparisonDialog(self.project.folder, self, select_run=self.run_id)
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dialog.open()

    def _require_project(self) -> bool:
        if self.project is None:
            self.errors.show(ErrorInfo("No project", "Open or create a project first.", "", True))
            return False
        return True

    def _require_run(self) -> bool:
        if self.run_id is None:
            self.errors.show(ErrorInfo("No run", "Train a run (or select one) first.", "", True))
            return False
        return True

    def _about(self) -> None:
        from cdfis_desktop import __version__

        QMessageBox.about(
            self,
            "About cdfis-desktop",
            f"cdfis-desktop {__version__}\nCDF-based importance sampling for tissue-patch "
            "classifiers (Knutsson et al., VCBM 2023), and where on the slide it looked.",
        )

    # ----------------------------------------------------------------- settings
    def _remember_recent(self, folder: Path) -> None:
        recent = [str(folder)] + [f for f in self.recent_projects() if f != str(folder)]
        self.settings.setValue("recent_projects", recent[:MAX_RECENT])
        self._fill_recent_menu()

    def recent_projects(self) -> list[str]:
        value = self.settings.value("recent_projects", [])
        return [str(v) for v in ([value] if isinstance(value, str) else value or [])]

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for folder in self.recent_projects():
            action = self.recent_menu.addAction(folder)
            action.triggered.connect(lambda _checked=False, f=folder: self.open_project(f))
        self.recent_menu.setEnabled(bool(self.recent_projects()))

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if isinstance(geometry, QByteArray) and isinstance(state, QByteArray):
            self.restoreGeometry(geometry)
            self.restoreState(state)
        else:
            self.use_default_layout()
        controls = self.overlay_controls
        colormap = self.settings.value("overlay/colormap")
        if colormap and controls.colormap.findData(colormap) >= 0:
            controls.colormap.setCurrentIndex(controls.colormap.findData(colormap))
        opacity = self.settings.value("overlay/opacity")
        if opacity is not None:
            controls.opacity.setValue(int(opacity))

    def use_default_layout(self) -> None:
        """1600 x 1000 px; the viewer gets most of it."""
        self.resize(1600, 1000)
        docks = {d.objectName(): d for d in self.findChildren(QDockWidget)}
        self.resizeDocks(
            [docks["project"], docks["overlay"]], [250, 380], Qt.Orientation.Horizontal
        )
        self.resizeDocks([docks["work"]], [330], Qt.Orientation.Vertical)

    def save_layout(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("overlay/colormap", self.overlay_controls.colormap.currentData())
        self.settings.setValue("overlay/opacity", self.overlay_controls.opacity.value())
        self.settings.sync()

    def confirm_stop_training(self) -> bool:
        """Ask whether to stop the running training (modal question)."""
        answer = QMessageBox.question(
            self,
            "Training is running",
            "A training run is in progress. Stop it (its progress is saved in a checkpoint "
            "and it can be resumed) and quit?",
        )
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:  # Qt override
        if self.training is not None and not self.confirm_stop_training():
            event.ignore()
            return
        self.save_layout()
        self.close_project()
        self._gallery_thumbs.shutdown()
        self._detail_thumbs.shutdown()
        self._review_thumbs.shutdown()
        self.errors.close_all()
        event.accept()


@dataclass(frozen=True)
class _PatchRef:
    """What :meth:`MainWindow.go_to_patch` needs of a patch (level-0 px)."""

    patch_id: int
    slide_id: int
    l0_x: int
    l0_y: int
    l0_size: int


@dataclass(frozen=True)
class _OverlayRequest:
    """What an overlay worker renders: run, slide and the controls' state."""

    run_id: int
    slide: Any  # SlideRecord
    state: OverlayState


def _slide_thumbnails(records: list[Any]) -> dict[int, np.ndarray]:
    """Worker thread: a 64 px thumbnail per slide record (slides that fail to open are
    skipped)."""
    thumbnails: dict[int, np.ndarray] = {}
    for record in records:
        try:
            with record.open() as slide:
                thumbnails[record.id] = slide.thumbnail(64)
        except CdfisError:
            continue
    return thumbnails
