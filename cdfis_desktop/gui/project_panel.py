"""The Project dock: the project's slides (with thumbnails) and runs.

It observes :class:`~cdfis_desktop.gui.state.AppState` (the highlighted slide and run are
always the state's) and writes the user's choices back into it. A stopped or interrupted
run can be continued from here (``continue_requested(run_id)``), and a slide's context menu
asks to remove it (``remove_slide_requested(slide_id)``; the window confirms and removes).
GUI thread only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cdfis_desktop.gui.qtimage import array_to_qimage
from cdfis_desktop.gui.state import AppState

if TYPE_CHECKING:
    from cdfis_desktop.core.storage import RunSummary, SlideRecord

ICON_PX = 48
CONTINUABLE = ("cancelled", "interrupted")
_ROLE_ID = Qt.ItemDataRole.UserRole + 1


class ProjectPanel(QWidget):
    """Signals: ``continue_requested(run_id)``, ``remove_slide_requested(slide_id)``."""

    continue_requested = Signal(int)
    remove_slide_requested = Signal(int)

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.slide_list = QListWidget()
        self.slide_list.setIconSize(QSize(ICON_PX, ICON_PX))
        self.slide_list.setToolTip(
            "Slides of the project; click one to show it, right-click to remove it"
        )
        self.slide_list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.slide_list.customContextMenuRequested.connect(self._slide_menu)
        self.run_list = QListWidget()
        self.run_list.setWordWrap(True)
        self.run_list.setToolTip("Training runs, newest first; click one to show its overlay")
        self.continue_button = QPushButton("Continue training")
        self.continue_button.setToolTip(
            "Continue the selected stopped or interrupted run from its last checkpoint"
        )
        self.continue_button.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(QLabel("Slides"))
        layout.addWidget(self.slide_list, 2)
        layout.addWidget(QLabel("Runs"))
        layout.addWidget(self.run_list, 1)
        layout.addWidget(self.continue_button)
        self._training = False

        self.slide_list.currentItemChanged.connect(self._on_slide_clicked)
        self.run_list.currentItemChanged.connect(self._on_run_clicked)
        self.continue_button.clicked.connect(self._on_continue)
        state.events.slides.connect(self._show_slides)
        state.events.runs.connect(self._show_runs)
        state.events.slide.connect(lambda slide_id: self._highlight(self.slide_list, slide_id))
        state.events.run.connect(self._on_run_changed)

    def minimumSizeHint(self) -> QSize:  # Qt override: slide names must stay readable
        hint = super().minimumSizeHint()
        text = self.fontMetrics().horizontalAdvance("demo-12.tiff · 6,000 × 4,000 px")
        return QSize(max(hint.width(), ICON_PX + text + 40), hint.height())

    def set_training(self, running: bool) -> None:
        """A run is training: no other run can be continued meanwhile."""
        self._training = running
        self._update_continue()

    def set_slide_thumbnails(self, thumbnails: dict[int, np.ndarray]) -> None:
        """``{slide id: uint8[h, w, 3]}`` icons for the slide list."""
        for row in range(self.slide_list.count()):
            item = self.slide_list.item(row)
            rgb = thumbnails.get(item.data(_ROLE_ID))
            if rgb is not None:
                item.setIcon(QIcon(QPixmap.fromImage(array_to_qimage(rgb))))

    # ------------------------------------------------------------ state -> view
    def _show_slides(self, slides: Sequence[SlideRecord]) -> None:
        self._refill(
            self.slide_list,
            [
                (
                    f"{s.name}\n{s.width:,} × {s.height:,} px · "
                    + (f"{s.mpp:.3g} µm/px" if s.mpp else "no mpp"),
                    s.id,
                )
                for s in slides
            ],
            self.state.slide_id,
        )

    def _show_runs(self, runs: Sequence[RunSummary]) -> None:
        self._refill(self.run_list, [(_run_text(r), r.id) for r in runs], self.state.run_id)
        self._update_continue()

    def _on_run_changed(self, run_id: int | None) -> None:
        self._highlight(self.run_list, run_id)
        self._update_continue()

    def _refill(
        self, widget: QListWidget, items: Sequence[tuple[str, int]], current: int | None
    ) -> None:
        widget.blockSignals(True)
        icons = {
            widget.item(r).data(_ROLE_ID): widget.item(r).icon() for r in range(widget.count())
        }
        widget.clear()
        for text, item_id in items:
            item = QListWidgetItem(text)
            item.setData(_ROLE_ID, item_id)
            if item_id in icons:
                item.setIcon(icons[item_id])
            widget.addItem(item)
        widget.blockSignals(False)
        self._highlight(widget, current)

    def _highlight(self, widget: QListWidget, item_id: int | None) -> None:
        widget.blockSignals(True)
        rows = [r for r in range(widget.count()) if widget.item(r).data(_ROLE_ID) == item_id]
        widget.setCurrentRow(rows[0] if rows else -1)
        widget.blockSignals(False)

    def _update_continue(self) -> None:
        run = self.state.run
        continuable = run is not None and run.status in CONTINUABLE and not self._training
        self.continue_button.setEnabled(continuable)

    # ------------------------------------------------------------ view -> state
    def _on_slide_clicked(self, item: QListWidgetItem | None) -> None:
        if item is not None:
            self.state.set_slide(item.data(_ROLE_ID))

    def _slide_menu(self, at: QPoint) -> None:
        item = self.slide_list.itemAt(at)
        if item is None:
            return
        menu = QMenu(self)
        remove = menu.addAction("Remove from project…")
        remove.setEnabled(not self._training)
        slide_id = int(item.data(_ROLE_ID))
        remove.triggered.connect(lambda: self.remove_slide_requested.emit(slide_id))
        menu.popup(self.slide_list.viewport().mapToGlobal(at))

    def _on_run_clicked(self, item: QListWidgetItem | None) -> None:
        if item is not None:
            self.state.set_run(item.data(_ROLE_ID))

    def _on_continue(self) -> None:
        if self.state.run_id is not None:
            self.continue_requested.emit(self.state.run_id)


def _run_text(run: RunSummary) -> str:
    accuracy = (
        f" · best val acc {run.best_val_accuracy:.3f}" if run.best_val_accuracy is not None else ""
    )
    return (
        f"#{run.id} {run.name or run.sampler} — {run.status}\n"
        f"{run.sampler} · {run.steps or 0} steps\n{accuracy.removeprefix(' · ')}"
    ).rstrip()
