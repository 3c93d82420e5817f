"""A dialog listing the sampler comparisons kept in a project (``cdfis compare``), showing
the chosen one's summary.md and comparison.png.

The files are read from ``<project>/comparisons/`` (see
:mod:`cdfis_desktop.core.reporting.comparisons`); they are small, so the dialog
reads them on the GUI thread. GUI thread only.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from cdfis_desktop.core.reporting.comparisons import StoredComparison, stored_comparisons

_ROLE = Qt.ItemDataRole.UserRole + 1
_PLOT_WIDTH_PX = 760


class ComparisonDialog(QDialog):
    """The project's comparisons, newest first; ``select_run`` preselects the newest one
    that made that run (else the newest)."""

    def __init__(
        self, project_folder: Path, parent: QWidget | None = None, *, select_run: int | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Sampler comparisons")
        self.resize(1100, 760)
        self.comparisons = stored_comparisons(project_folder)
        self.list = QListWidget()
        self.summary = QTextBrowser()
        self.summary.setOpenExternalLinks(False)
        self.plot = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(self.plot)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(scroll)
        right.addWidget(self.summary)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.list)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 4)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        if not self.comparisons:
            layout.addWidget(
                QLabel(
                    "This project holds no sampler comparison yet. Run one with\n"
                    "cdfis compare --project <folder> --time-budget <seconds> --out <folder>"
                )
            )
        layout.addWidget(splitter)
        layout.addWidget(buttons)
        for comparison in self.comparisons:
            runs = ", ".join(map(str, comparison.run_ids))
            item = QListWidgetItem(f"{comparison.name}\nruns {runs}")
            item.setData(_ROLE, comparison)
            self.list.addItem(item)
        self.list.currentItemChanged.connect(self._show)
        wanted = next((i for i, c in enumerate(self.comparisons) if select_run in c.run_ids), 0)
        if self.comparisons:
            self.list.setCurrentRow(wanted)

    @property
    def shown(self) -> StoredComparison | None:
        """The comparison on display (None: none)."""
        item = self.list.currentItem()
        return None if item is None else item.data(_ROLE)

    def _show(self, item: QListWidgetItem | None) -> None:
        if item is None:
            return
        comparison: StoredComparison = item.data(_ROLE)
        try:
            self.summary.setMarkdown(comparison.summary_text())
        except OSError as exc:
            self.summary.setPlainText(f"cannot read {comparison.summary_path}: {exc}")
        pixmap = QPixmap(str(comparison.plot_path))
        if pixmap.isNull():
            self.plot.setText("comparison.png is missing or unreadable")
        else:
            self.plot.setPixmap(
                pixmap.scaledToWidth(_PLOT_WIDTH_PX, Qt.TransformationMode.SmoothTransformation)
            )
