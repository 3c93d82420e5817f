"""The main window: docks, menus and settings around controllers that share one state.

The current project, slide, run, epoch and patch live in one Qt-free
:class:`~cdfis_desktop.gui.state.AppState`; the controllers observe it and write the
user's choices into it, so the slide list, the viewer, the patch details, the galleries
and the exports always agree:

- :class:`~cdfis_desktop.gui.project_panel.ProjectPanel`: slides and runs (Project dock);
- :class:`~cdfis_desktop.gui.slide_controller.SlideController`: the slide in the viewer,
  its annotation outlines, what to do without a project or slides;
- :class:`~cdfis_desktop.gui.overlay_controller.OverlayController`: the importance overlay
  and the canvas notice when there is nothing to draw;
- :class:`~cdfis_desktop.gui.patch_controller.PatchController`: clicks, the patch browser,
  N / P and the patch details;
- :class:`~cdfis_desktop.gui.training_controller.TrainingController`: runs trained,
  paused, stopped and continued from the window;
- :class:`~cdfis_desktop.gui.jobs.JobRunner`: background jobs, progress and notices in
  the status bar.

Layout: slides and runs on the left, the viewer in the centre, overlay controls and the
clicked patch on the right, training and the patch browser in tabs at the bottom. Every
dock scrolls or can be hidden (View menu), so the window fits a 1366 x 768 screen with its
buttons and status bar in view. GUI thread only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFileDialog,
    QFrame,
    QMainWindow,
    QMenu,
    QMessageBox,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cdfis_desktop.core.errors import CdfisError
from cdfis_desktop.gui.error_dialog import ErrorInfo, ErrorReporter
from cdfis_desktop.gui.jobs import JobRunner
from cdfis_desktop.gui.overlay_controller import OverlayController
from cdfis_desktop.gui.overlay_controls import OverlayControls
from cdfis_desktop.gui.patch_controller import PatchController
from cdfis_desktop.gui.patch_details import PatchDetails
from cdfis_desktop.gui.project_panel import ProjectPanel
from cdfis_desktop.gui.review_controller import ReviewController
from cdfis_desktop.gui.slide_controller import SlideController
from cdfis_desktop.gui.slide_viewer import SlideViewer
from cdfis_desktop.gui.state import AppState
from cdfis_desktop.gui.training_controller import TrainingController
from cdfis_desktop.gui.training_panel import TrainingPanel

if TYPE_CHECKING:
    from cdfis_desktop.core.progress import CancelToken
    from cdfis_desktop.core.storage import Project, SlideRecord

MAX_RECENT = 8
DEFAULT_SIZE = QSize(1600, 1000)
MIN_VIEWER = QSize(320, 240)


class MainWindow(QMainWindow):
    """Signals: ``project_opened()``; the overlay's ``overlay_updated()`` and
    ``overlay_failed(message)`` are forwarded."""

    overlay_updated = Signal()
    overlay_failed = Signal(str)
    project_opened = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("cdfis-desktop")
        self.settings = QSettings()
        self.errors = ErrorReporter(self)
        self.state = AppState()
        self.last_export: list[Path] = []

        self.viewer = SlideViewer()
        self.viewer.setMinimumSize(MIN_VIEWER)
        self.overlay_controls = OverlayControls()
        self.patch_details = PatchDetails()
        self.training_panel = TrainingPanel()
        self.project_panel = ProjectPanel(self.state)
        self.jobs = JobRunner(self.statusBar(), self.errors, self)
        self.slides = SlideController(self.state, self.viewer, self.errors, self)
        self.overlay = OverlayController(self.state, self.viewer, self.overlay_controls, self)
        self.patches = PatchController(
            self.state, self.viewer, self.patch_details, self.slides.slide_paths, self
        )
        self.gallery = self.patches.gallery
        self.patches.load_failed.connect(lambda m: self.statusBar().showMessage(m, 10_000))
        self.project_panel.remove_slide_requested.connect(self._ask_remove_slide)
        self.review = ReviewController(
            self.state, self.viewer, self.patches, self.jobs, self.errors, self
        )
        self.slides.outlines_shown.connect(self.review.review_panel.set_outlines)
        self.review.review_panel.outlines_wanted.connect(self.slides.request_outlines)
        self.training = TrainingController(
            self.state,
            self.training_panel,
            self.project_panel,
            self.errors,
            self.statusBar(),
            self,
        )
        self.overlay.overlay_updated.connect(self.overlay_updated)
        self.overlay.overlay_failed.connect(self.overlay_failed)
        self.viewer.tile_error.connect(lambda m: self.statusBar().showMessage(m, 10_000))

        self.setCentralWidget(self.viewer)
        self._build_docks()
        self._build_menus()
        self._restore_layout()

    # ------------------------------------------------------------------ layout
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.lower().replace(" ", "_"))
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        self._dock("Project", self.project_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(4, 4, 4, 4)
        right_layout.addWidget(self.overlay_controls)
        right_layout.addWidget(self.patch_details, 1)
        self._dock("Overlay", _scrolling(right), Qt.DockWidgetArea.RightDockWidgetArea)
        self.bottom_tabs = QTabWidget()
        self.bottom_tabs.addTab(self.training_panel, "Training")
        self.bottom_tabs.addTab(self.gallery, "Patch browser")
        self.bottom_tabs.addTab(self.review.data_map_view, "Data map")
        self.bottom_tabs.addTab(self.review.review_panel, "Review queue")
        self._dock("Work", self.bottom_tabs, Qt.DockWidgetArea.BottomDockWidgetArea)

    def _action(
        self,
        menu: QMenu,
        text: str,
        slot: Callable[[], Any],
        shortcut: QKeySequence.StandardKey | str | list[str] | None = None,
        tip: str = "",
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            keys = shortcut if isinstance(shortcut, list) else [shortcut]
            action.setShortcuts([QKeySequence(k) for k in keys])
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)  # shortcuts work whichever dock has the focus
        return action

    def _build_menus(self) -> None:
        from cdfis_desktop.gui.exports import EXPORT_KINDS

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
        self._action(
            file_menu,
            "Re&move slide from project…",
            self._ask_remove_slide,
            tip="Remove the slide shown, with its patches and every run's history of them",
        )
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        export_menu = bar.addMenu("&Export")
        for kind, spec in EXPORT_KINDS.items():
            self._action(export_menu, spec.menu_text, lambda k=kind: self._ask_export(k))

        view_menu = bar.addMenu("&View")
        view_menu.setToolTipsVisible(True)
        for action in self.viewer.actions_by_name.values():
            view_menu.addAction(action)  # the viewer's keys, active while it has the focus
        view_menu.addSeparator()
        self._action(
            view_menu,
            "&Next patch",
            lambda: self.patches.step(1),
            ["N", "PgDown"],
            "Next patch of the patch browser (favoured, then ignored)",
        )
        self._action(
            view_menu,
            "&Previous patch",
            lambda: self.patches.step(-1),
            ["P", "PgUp"],
            "Previous patch of the patch browser",
        )
        view_menu.addSeparator()
        self.minimap_action = self._toggle(
            view_menu, "&Minimap", "M", self.viewer.set_minimap_visible, "viewer/minimap"
        )
        self.annotations_action = self._toggle(
            view_menu,
            "&Annotation outlines",
            "A",
            self.viewer.set_annotations_visible,
            "viewer/annotations",
        )
        view_menu.addSeparator()
        self._action(view_menu, "Sampler &comparisons…", lambda: self.show_comparisons())
        view_menu.addSeparator()
        for dock in self.findChildren(QDockWidget):
            view_menu.addAction(dock.toggleViewAction())
        self._action(view_menu, "&Default layout", self.use_default_layout)

        help_menu = bar.addMenu("&Help")
        self._action(
            help_menu,
            "&Keyboard shortcuts",
            self.show_shortcuts,
            QKeySequence.StandardKey.HelpContents,
        )
        self._action(help_menu, "&About", self._about)
        self._fill_recent_menu()

    def _toggle(
        self, menu: QMenu, text: str, key: str, apply: Callable[[bool], None], setting: str
    ) -> QAction:
        action = self._action(menu, text, lambda: None, key)
        action.setCheckable(True)
        action.setChecked(self.settings.value(setting, True, type=bool))
        action.toggled.connect(apply)
        action.toggled.connect(lambda on: self.settings.setValue(setting, on))
        apply(action.isChecked())
        return action

    def shortcut_rows(self) -> list[tuple[str, str]]:
        """``(action, keys)`` for every action with a shortcut, in menu order."""
        rows = []
        for menu in self.menuBar().findChildren(QMenu):
            for action in menu.actions():
                keys = ", ".join(
                    k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()
                )
                text = action.text().replace("&", "").rstrip("…")
                if keys and (text, keys) not in rows:
                    rows.append((text, keys))
        return rows

    def show_shortcuts(self) -> QDialog:
        """Help › Keyboard shortcuts: every shortcut of the menus (non-modal)."""
        dialog = QDialog(self)
        dialog.setWindowTitle("Keyboard shortcuts")
        rows = self.shortcut_rows()
        table = QTableWidget(len(rows), 2)
        table.setHorizontalHeaderLabels(["Action", "Keys"])
        for row, (text, keys) in enumerate(rows):
            table.setItem(row, 0, QTableWidgetItem(text))
            table.setItem(row, 1, QTableWidgetItem(keys))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.close)
        layout = QVBoxLayout(dialog)
        layout.addWidget(table)
        layout.addWidget(buttons)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.resize(420, 480)
        dialog.open()
        return dialog

    # ----------------------------------------------------------------- project
    def open_project(self, folder: Path | str, *, create: bool = False) -> bool:
        """Open (or create) the project in ``folder``; errors are shown, returns success."""
        from cdfis_desktop.core.storage import Project

        try:
            if not create and Project.long_open(folder):
                project = self._open_with_progress(folder, Project.pending_upgrade(folder))
                if project is None:
                    return False
            else:
                project = Project.create(folder) if create else Project.open(folder)
        except CdfisError as exc:
            self.errors.show_exception(exc, "Open project")
            return False
        self.close_project()
        self.setWindowTitle(f"{project.name} — cdfis-desktop")
        self._remember_recent(project.folder)
        self.state.set_project(project, project.slides(), project.runs())
        self._load_slide_thumbnails()
        self.project_opened.emit()
        return True

    def _open_with_progress(
        self, folder: Path | str, upgrade: tuple[int, int] | None
    ) -> Project | None:
        """Open a project whose database needs an upgrade (``upgrade``: its schema versions)
        or the integrity check (None), in a worker behind a progress dialog
        (:mod:`.open_dialog`); None when it failed (shown) or was cancelled."""
        from cdfis_desktop.gui.open_dialog import OpenProgressDialog, opening_texts

        title, intro = opening_texts(upgrade)
        dialog = OpenProgressDialog(folder, title, intro, self)
        dialog.run()
        dialog.deleteLater()
        if dialog.error is not None:
            self.errors.show(dialog.error)
        elif dialog.was_cancelled:
            what = "Upgrade" if upgrade is not None else "Check"
            self.statusBar().showMessage(f"{what} cancelled: the project is unchanged", 10_000)
        return dialog.project

    def close_project(self) -> None:
        """Stop the work on the project (training, jobs), then forget it."""
        self.training.stop(wait=True)
        self.jobs.cancel_all(wait=True)
        project = self.state.project
        self.state.set_project(None)
        if project is not None:
            project.close()

    def reload_slides(self) -> None:
        """The project's slides changed (an import)."""
        self.state.set_slides(self.state.project.slides())
        self._load_slide_thumbnails()

    def _load_slide_thumbnails(self) -> None:
        records = self.state.slides
        self.jobs.run(
            "Slide thumbnails",
            lambda cancel, _progress: _slide_thumbnails(records, cancel),
            self.project_panel.set_slide_thumbnails,
            quiet=True,
        )

    def jobs_running(self) -> bool:
        """Background jobs, an overlay rendering, a patch table / gallery read or a run's
        curves read are under way."""
        return (
            self.jobs.running()
            or self.overlay.busy()
            or self.patches.busy()
            or self.training.busy()
        )

    def overlay_busy(self) -> bool:
        return self.overlay.busy()

    def overlay_shown(self) -> bool:
        return self.overlay.shown()

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

    def _ask_remove_slide(self, slide_id: int | None = None) -> None:
        from cdfis_desktop.gui.slide_removal import ask_remove_slide

        chosen = self.state.slide_id if slide_id is None else slide_id
        if self._require_project() and chosen is not None:
            ask_remove_slide(self, chosen)

    def _ask_export(self, kind: str) -> None:
        from cdfis_desktop.gui.exports import ask_export

        if self._require_project() and self._require_run():
            ask_export(self, kind)

    def show_comparisons(self, select_run: int | None = None) -> None:
        """The project's sampler comparisons (cdfis compare), the one that made
        ``select_run`` (default: the selected run) first."""
        from cdfis_desktop.gui.comparison_dialog import ComparisonDialog

        if self._require_project():
            run_id = self.state.run_id if select_run is None else select_run
            dialog = ComparisonDialog(self.state.project.folder, self, select_run=run_id)
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dialog.open()

    def _require_project(self) -> bool:
        if self.state.project is None:
            self.errors.show(ErrorInfo("No project", "Open or create a project first.", "", True))
            return False
        return True

    def _require_run(self) -> bool:
        if self.state.run_id is None:
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
            self._fit_on_screen()
        else:
            self.use_default_layout()
        controls = self.overlay_controls
        try:
            choices = json.loads(str(self.settings.value("overlay/colormaps", "{}")))
        except ValueError:
            choices = {}
        if isinstance(choices, dict):
            controls.set_colormap_choices(choices)
        opacity = self.settings.value("overlay/opacity")
        if opacity is not None:
            controls.opacity.setValue(int(opacity))

    def use_default_layout(self) -> None:
        """1600 x 1000 px, or the screen's available area when smaller (not offscreen,
        whose virtual screen is no limit); the viewer gets most of it."""
        size = DEFAULT_SIZE
        if self.screen() is not None and QGuiApplication.platformName() != "offscreen":
            frame = self.frameGeometry().size() - self.geometry().size()
            size = size.boundedTo(self.screen().availableGeometry().size() - frame)
        self.resize(size)
        docks = {d.objectName(): d for d in self.findChildren(QDockWidget)}
        for dock in docks.values():
            dock.show()
        project_w = max(self.project_panel.minimumSizeHint().width(), size.width() // 6)
        self.resizeDocks(
            [docks["project"], docks["overlay"]],
            [project_w, min(380, size.width() // 4)],
            Qt.Orientation.Horizontal,
        )
        self.resizeDocks([docks["work"]], [size.height() // 3], Qt.Orientation.Vertical)

    def _fit_on_screen(self) -> None:
        """A layout saved on a larger screen is shrunk onto this one."""
        if self.screen() is None or QGuiApplication.platformName() == "offscreen":
            return
        available = self.screen().availableGeometry()
        if self.width() > available.width() or self.height() > available.height():
            self.resize(self.size().boundedTo(available.size()))
            self.move(available.topLeft())

    def save_layout(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue(
            "overlay/colormaps", json.dumps(self.overlay_controls.colormap_choices())
        )
        self.settings.setValue("overlay/opacity", self.overlay_controls.opacity.value())
        self.settings.sync()

    def confirm_stop_training(self) -> bool:
        """Ask whether to stop the running training (modal question)."""
        answer = QMessageBox.question(
            self,
            "Training is running",
            "A training run is in progress. Stop it (its progress is saved in a checkpoint "
            "and it can be continued) and quit?",
        )
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:  # Qt override
        if self.training.running() and not self.confirm_stop_training():
            event.ignore()
            return
        self.save_layout()
        self.close_project()
        for controller in (self.slides, self.overlay, self.patches, self.review, self.training):
            controller.shutdown()
        self.errors.close_all()
        event.accept()


def _scrolling(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless vertical scroll area, so its dock can be short."""
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(widget)
    # as wide as the content needs: it scrolls vertically only, so nothing is cut off
    scroll.setMinimumWidth(
        widget.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width()
    )
    return scroll


def _slide_thumbnails(records: Sequence[SlideRecord], cancel: CancelToken) -> dict[int, np.ndarray]:
    """Worker thread: a 64 px thumbnail per slide (slides that fail to open are skipped)."""
    thumbnails: dict[int, np.ndarray] = {}
    for record in records:
        if cancel.cancelled:
            break
        try:
            with record.open() as slide:
                thumbnails[record.id] = slide.thumbnail(64)
        except CdfisError:
            continue
    return thumbnails
