"""The review queue: one flagged patch at a time, with its context, triaged by keyboard.

Shows the patch, its neighbourhood on the slide (5 patches wide, the patch outlined in
cyan, the slide's annotation outlines in their class colours when the slide has an
annotation file: :meth:`ReviewQueuePanel.set_outlines`), its history (label probability and margin per training step) and its scores, flag,
label, source file and current decision. Keys: **C** confirm the label, **R** relabel
(to the next class), **A** / **P** / **B** / **F** exclude as artefact / pen / blur /
out of focus, **S** skip, **U** undo the patch's last decision, **→** / **Space** next,
**←** previous. A decision is stored at once (never changing the stored label, see
:mod:`cdfis_desktop.core.storage.reviews`) and the queue moves on.

The *Order* box picks the ranking (:data:`~cdfis_desktop.core.datamaps.RANKINGS`; area
under the margin by default); a change emits ``ranking_changed(name)`` and the owner
rebuilds the queue in that order.

Signals: ``patch_shown(entry)`` (a :class:`~cdfis_desktop.core.datamaps.queue.QueueEntry`
the reviewer moved to: the slide follows; loading a queue shows its first entry without
it, so opening a run does not change the selection), ``decided(str)`` after a stored decision,
``failed(str)`` with the message of a decision the store refused, ``outlines_wanted(slide_id)``
when an entry's slide has no outlines yet (answered through :meth:`set_outlines`). Thread rules: GUI
thread only; images come from a :class:`~cdfis_desktop.gui.thumbnails.PatchThumbnailLoader`.
"""

from __future__ import annotations

import getpass
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QColor, QImage, QKeyEvent, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from cdfis_desktop.core.class_names import label_name
from cdfis_desktop.core.datamaps.queue import QueueEntry, ReviewQueue
from cdfis_desktop.core.datamaps.statistics import DEFAULT_RANKING, RANKINGS
from cdfis_desktop.core.errors import CdfisError
from cdfis_desktop.core.storage import Project, ReviewInput
from cdfis_desktop.gui.thumbnails import PatchThumbnailLoader, ThumbnailRequest

CONTEXT_PATCHES = 5
"""Width of the neighbourhood view, in patch sides."""
DECISION_KEYS = {
    Qt.Key.Key_C: "confirm",
    Qt.Key.Key_R: "relabel",
    Qt.Key.Key_S: "skip",
    Qt.Key.Key_U: "undo",
}
EXCLUDE_KEYS = {
    Qt.Key.Key_A: "artefact",
    Qt.Key.Key_P: "pen",
    Qt.Key.Key_B: "blur",
    Qt.Key.Key_F: "out-of-focus",
}
MOVE_KEYS = {Qt.Key.Key_Right: 1, Qt.Key.Key_Space: 1, Qt.Key.Key_N: 1, Qt.Key.Key_Left: -1}
TRIAGE_KEYS = {*DECISION_KEYS, *EXCLUDE_KEYS, *MOVE_KEYS}


class ReviewQueuePanel(QWidget):
    """Call :meth:`set_queue`; the panel keeps keyboard focus while shown."""

    patch_shown = Signal(object)
    decided = Signal(str)
    failed = Signal(str)
    ranking_changed = Signal(str)
    outlines_wanted = Signal(int)

    def __init__(self, loader: PatchThumbnailLoader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.project: Project | None = None
        self.queue: ReviewQueue | None = None
        self.index = -1
        self.reviewer = getpass.getuser()
        self._slide_files: dict[int, Path] = {}
        self._outlines: dict[int, list[tuple[str, QPainterPath, QColor]]] = {}
        self._context: QImage | None = None  # the shown entry's neighbourhood, undrawn
        self._loader = loader
        loader.loaded.connect(self._on_image)
        self.patch_image = _image_label(160)
        self.context_image = _image_label(240)
        self.text = QLabel("Select a run to review its flagged patches.")
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.keys = QLabel(
            "C confirm · R relabel · A artefact · P pen · B blur · F out of focus · "
            "S skip · U undo · → next · ← previous"
        )
        self.keys.setStyleSheet("color: #555")
        self.order = QComboBox()
        self.order.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the triage keys stay here
        for name, ranking in RANKINGS.items():
            self.order.addItem(name, name)
            self.order.setItemData(
                self.order.count() - 1, ranking.description, Qt.ItemDataRole.ToolTipRole
            )
        self.order.setCurrentIndex(self.order.findData(DEFAULT_RANKING))
        self.order.currentIndexChanged.connect(lambda _i: self.ranking_changed.emit(self.ranking))
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMenuEnabled(False)
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "label probability")
        self.plot.setYRange(0, 1)
        self.plot.addLegend(offset=(-5, 5))
        self.probability_curve = self.plot.plot(
            pen=pg.mkPen((31, 78, 121), width=1.5), symbol="o", symbolSize=4,
            name="label probability",
        )  # fmt: skip
        self.margin_curve = self.plot.plot(
            pen=pg.mkPen((231, 111, 81), width=1, style=Qt.PenStyle.DashLine),
            name="margin (sigmoid)",
        )
        self.plot.setMinimumSize(280, 180)
        self.text.setMinimumWidth(220)
        self.text.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        # one row: the images, the text, and the history beside them, so the history plot
        # keeps its height in a short dock (under the images it was squeezed to ~40 px)
        row = QHBoxLayout()
        row.addWidget(self.patch_image, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.context_image, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.text, 1)
        row.addWidget(self.plot, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(row, 1)
        footer = QHBoxLayout()
        footer.addWidget(self.keys, 1)
        footer.addWidget(QLabel("Order:"))
        footer.addWidget(self.order)
        layout.addLayout(footer)

    @property
    def ranking(self) -> str:
        """The chosen ranking's name (a :data:`RANKINGS` key)."""
        return str(self.order.currentData())

    # ------------------------------------------------------------------ queue
    def set_queue(self, project: Project | None, queue: ReviewQueue | None) -> None:
        """Show ``queue`` of ``project`` from its first entry (None: clear)."""
        self.project, self.queue = project, queue
        self._slide_files = {} if project is None else {s.id: s.file for s in project.slides()}
        self.index = -1
        if queue is None or not queue.entries:
            self.text.setText("This run has no patches to review (no training dynamics).")
            self.probability_curve.setData([], [])
            self.margin_curve.setData([], [])
            return
        self._display(0)  # no patch_shown: loading a queue must not change the selection

    @property
    def entry(self) -> QueueEntry | None:
        if self.queue is None or not 0 <= self.index < len(self.queue.entries):
            return None
        return self.queue.entries[self.index]

    def show_entry(self, index: int) -> None:
        """Show entry ``index`` (clamped to the queue) and emit ``patch_shown``."""
        if self._display(index):
            self.patch_shown.emit(self.entry)

    def _display(self, index: int) -> bool:
        """Show entry ``index`` (clamped); False when the queue is empty."""
        if self.queue is None or not self.queue.entries:
            return False
        self.index = int(np.clip(index, 0, len(self.queue.entries) - 1))
        entry = self.queue.entries[self.index]
        self._show_text(entry)
        self._show_history(entry)
        if entry.slide_id not in self._outlines:
            self.outlines_wanted.emit(entry.slide_id)
        self.patch_image.clear()
        self.context_image.clear()
        self._context = None
        path = self._slide_files.get(entry.slide_id)
        if path is not None:
            side = entry.l0_size * CONTEXT_PATCHES
            offset = entry.l0_size * (CONTEXT_PATCHES // 2)
            self._loader.request(
                [
                    ThumbnailRequest(("patch", entry.patch_id), path, entry.l0_x, entry.l0_y,
                                     entry.l0_size),
                    ThumbnailRequest(("context", entry.patch_id), path, entry.l0_x - offset,
                                     entry.l0_y - offset, side),
                ]
            )  # fmt: skip
        return True

    def step(self, delta: int) -> None:
        self.show_entry(self.index + delta)

    # -------------------------------------------------------------- decisions
    def decide(self, action: str, *, reason: str = "") -> bool:
        """Store ``action`` (confirm, relabel, exclude, skip, undo) for the shown patch; on
        success refresh its line and move to the next entry (not after an undo)."""
        entry = self.entry
        if entry is None or self.project is None or self.queue is None:
            return False
        label = None
        if action == "relabel":
            count = max(len(self.project.class_names()), 2)
            label = (max(entry.label, 0) + 1) % count
        try:
            self.project.add_review_decisions(
                [
                    ReviewInput(
                        entry.patch_id, action, self.reviewer, label=label, reason=reason,
                        run_id=self.queue.run_id,
                    )
                ]
            )  # fmt: skip
        except CdfisError as exc:
            self.failed.emit(str(exc))
            return False
        self._refresh_decision(entry)
        self.decided.emit(action)
        if action != "undo":
            self.step(1)
        else:
            self.show_entry(self.index)
        return True

    def event(self, event: QEvent) -> bool:  # Qt override
        # the triage keys win over the window's single-key shortcuts (N/P, ...) while the
        # panel has the focus
        if (
            event.type() == QEvent.Type.ShortcutOverride
            and isinstance(event, QKeyEvent)
            and event.modifiers() == Qt.KeyboardModifier.NoModifier
            and Qt.Key(event.key()) in TRIAGE_KEYS
        ):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # Qt override
        key = Qt.Key(event.key())
        if key in DECISION_KEYS:
            self.decide(DECISION_KEYS[key])
        elif key in EXCLUDE_KEYS:
            self.decide("exclude", reason=EXCLUDE_KEYS[key])
        elif key in MOVE_KEYS:
            self.step(MOVE_KEYS[key])
        else:
            super().keyPressEvent(event)

    # ---------------------------------------------------------------- drawing
    def _refresh_decision(self, entry: QueueEntry) -> None:
        """Re-read the shown patch's decision in force into the queue entry."""
        assert self.project is not None and self.queue is not None
        decided = self.project.review_decisions(in_force_at=math.inf)
        mine = np.flatnonzero(decided.patch_id == entry.patch_id)
        k = int(mine[0]) if mine.size else None
        updated = replace(
            entry,
            decision="" if k is None else str(decided.action[k]),
            decided_label=-1 if k is None else int(decided.label[k]),
            reason="" if k is None else str(decided.reason[k]),
            reviewer="" if k is None else str(decided.reviewer[k]),
        )
        self.queue.entries[self.index] = updated

    def _show_text(self, entry: QueueEntry) -> None:
        assert self.queue is not None and self.project is not None
        s = entry.scores
        decision = "none"
        if entry.decision:
            names = self.project.class_names()
            target = label_name(names, entry.decided_label, unlabelled="excluded")
            decision = f"{entry.decision} → {target} by {entry.reviewer}" + (
                f" ({entry.reason})" if entry.reason else ""
            )
        self.text.setText(
            f"<b>{entry.rank} / {len(self.queue.entries)}</b> (of {self.queue.total:,} trained)"
            f" · <b>{entry.flag or 'not flagged'}</b> · region {entry.region or '—'}<br>"
            f"patch {entry.patch_id} on {entry.slide}, level-0 x {entry.l0_x:,}, "
            f"y {entry.l0_y:,}<br>"
            f"label <b>{entry.label_name or 'unlabelled'}</b>"
            + (f" · source {entry.source}" if entry.source else "")
            + f"<br>AUM {s['aum']:.2f} · confidence {s['confidence']:.2f} · variability "
            f"{s['variability']:.2f} · correctness {s['correctness']:.2f} · final loss "
            f"{s['final_loss']:.2f}<br>decision: {decision}"
        )

    def _show_history(self, entry: QueueEntry) -> None:
        assert self.project is not None and self.queue is not None
        history = self.project.patch_history(self.queue.run_id, entry.patch_id)
        trained = ~np.isnan(history.label_probability)
        steps = history.step[trained].astype(np.float64)
        self.probability_curve.setData(steps, history.label_probability[trained])
        margin = history.margin[trained].astype(np.float64)
        self.margin_curve.setData(steps, 1.0 / (1.0 + np.exp(-margin)))

    def _on_image(self, request: ThumbnailRequest, image: QImage) -> None:
        entry, key = self.entry, request.key
        if entry is None or not isinstance(key, tuple) or key[1] != entry.patch_id:
            return
        if key[0] == "patch":
            self.patch_image.setPixmap(QPixmap.fromImage(image).scaled(160, 160))
            return
        self._context = image
        self._draw_context()

    def set_outlines(self, slide_id: int, outlines: list[tuple[str, QPainterPath, QColor]]) -> None:
        """The annotation outlines of slide ``slide_id`` (name, level-0 path, colour per
        class; ``SlideController.outlines_shown``), drawn on its neighbourhood views."""
        self._outlines[slide_id] = outlines
        entry = self.entry
        if entry is not None and entry.slide_id == slide_id:
            self._draw_context()

    def _draw_context(self) -> None:
        """The neighbourhood image with the slide's annotation outlines and the patch."""
        entry, image = self.entry, self._context
        if entry is None or image is None:
            return
        pixmap = QPixmap.fromImage(image).scaled(240, 240)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        side = entry.l0_size * CONTEXT_PATCHES
        offset = entry.l0_size * (CONTEXT_PATCHES // 2)
        painter.save()
        painter.scale(240 / side, 240 / side)
        painter.translate(-(entry.l0_x - offset), -(entry.l0_y - offset))
        for _name, path, color in self._outlines.get(entry.slide_id, []):
            outline = QPen(color, 2)
            outline.setCosmetic(True)  # 2 screen px whatever the scale
            painter.setPen(outline)
            painter.drawPath(path)
        painter.restore()
        painter.setPen(QPen(QColor(0, 220, 255), 2))
        cell = 240 / CONTEXT_PATCHES
        start = cell * (CONTEXT_PATCHES // 2)
        painter.drawRect(int(start), int(start), int(cell), int(cell))
        painter.end()
        self.context_image.setPixmap(pixmap)

    def context_shown(self) -> bool:
        """True when the neighbourhood image of the shown patch has arrived."""
        pixmap = self.context_image.pixmap()
        return pixmap is not None and not pixmap.isNull()


def _image_label(size_px: int) -> QLabel:
    label = QLabel()
    label.setFixedSize(size_px, size_px)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setStyleSheet("background: #ccc")
    return label
