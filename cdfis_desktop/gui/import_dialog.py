"""Import dialog: whole slides with annotations (or a labels CSV), or a patch set laid into
mosaic slides. The import runs ``core.importing`` in a worker thread with a progress bar and
a Cancel button; the dialog stays responsive. GUI thread only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cdfis_desktop.core.config import TilingConfig
from cdfis_desktop.core.progress import CancelToken, Progress, ProgressCallback
from cdfis_desktop.gui.workers import JobWorker

SLIDE_FILTER = (
    "Slides (*.svs *.tif *.tiff *.ndpi *.mrxs *.scn *.vms *.vmu *.bif *.svslide);;All files (*)"
)
ANNOTATION_FILTER = "Annotations (*.geojson *.json *.xml);;All files (*)"


class ImportDialog(QDialog):
    """``patch_set=False``: slides + annotations/CSV; ``True``: a patch-set CSV + image root."""

    def __init__(self, window: Any, *, patch_set: bool) -> None:
        super().__init__(window)
        self._window = window
        self.patch_set = patch_set
        self.worker: JobWorker | None = None
        self.summary: Any = None
        self.setWindowTitle("Import patch set" if patch_set else "Import slides")
        self.slides = QListWidget()
        self.annotations = QListWidget()
        self.labels_csv = QLineEdit()
        self.root = QLineEdit()
        self.group_by = QLineEdit()
        self.patch_px = QSpinBox()
        self.patch_px.setRange(8, 4096)
        self.patch_px.setValue(96)
        self.mpp = QDoubleSpinBox()
        self.mpp.setDecimals(3)
        self.mpp.setRange(0.05, 100.0)
        self.mpp.setValue(4.0 if patch_set else 1.0)
        self.min_tissue = QDoubleSpinBox()
        self.min_tissue.setRange(0.0, 1.0)
        self.min_tissue.setSingleStep(0.05)
        self.min_tissue.setValue(0.5)
        self.progress = QProgressBar()
        self.progress.hide()
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Import")
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self._cancel_or_close)

        form = QFormLayout()
        if patch_set:
            form.addRow("Labels CSV", self._with_browse(self.labels_csv, self._browse_csv))
            form.addRow("Image folder", self._with_browse(self.root, self._browse_root))
            form.addRow("Group by column", self.group_by)
            form.addRow("Mosaic µm/px", self.mpp)
        else:
            form.addRow("Slides", self._list_with_add(self.slides, SLIDE_FILTER))
            form.addRow("Annotations", self._list_with_add(self.annotations, ANNOTATION_FILTER))
            form.addRow("or labels CSV", self._with_browse(self.labels_csv, self._browse_csv))
            form.addRow("Patch size (px)", self.patch_px)
            form.addRow("Patch µm/px", self.mpp)
            form.addRow("Minimum tissue", self.min_tissue)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)

    def _with_browse(self, line: QLineEdit, slot: Any) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        button = QPushButton("Browse…")
        button.clicked.connect(slot)
        layout.addWidget(line, 1)
        layout.addWidget(button)
        return row

    def _list_with_add(self, files: QListWidget, file_filter: str) -> QWidget:
        files.setMaximumHeight(90)
        button = QPushButton("Add…")

        def add() -> None:
            paths, _ = QFileDialog.getOpenFileNames(self, "Choose files", "", file_filter)
            files.addItems(paths)

        button.clicked.connect(add)
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(files, 1)
        layout.addWidget(button)
        return row

    def _browse_csv(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Labels CSV", "", "CSV (*.csv)")
        if path:
            self.labels_csv.setText(path)

    def _browse_root(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder the CSV's file names start from")
        if folder:
            self.root.setText(folder)

    @staticmethod
    def _items(files: QListWidget) -> list[Path]:
        return [Path(files.item(i).text()) for i in range(files.count())]

    def start(self) -> None:
        """Start the import in a worker (the dialog stays open until it ends)."""
        if self.worker is not None:
            return
        project = self._window.state.project
        csv = self.labels_csv.text().strip() or None
        if self.patch_set:
            root, group_by, mpp = (
                self.root.text().strip(),
                self.group_by.text().strip(),
                self.mpp.value(),
            )

            def work(cancel: CancelToken, progress: ProgressCallback) -> Any:
                from cdfis_desktop.core.importing import import_patch_set

                return import_patch_set(
                    project,
                    csv or "",
                    root or ".",
                    group_by=group_by or None,
                    mpp=mpp,
                    progress=progress,
                    cancel=cancel,
                )
        else:
            slides, annotations = self._items(self.slides), self._items(self.annotations)
            tiling = TilingConfig(
                patch_px=self.patch_px.value(),
                mpp=self.mpp.value(),
                min_tissue=self.min_tissue.value(),
            )

            def work(cancel: CancelToken, progress: ProgressCallback) -> Any:
                from cdfis_desktop.core.importing import import_slides

                return import_slides(
                    project,
                    slides,
                    annotations=annotations or None,
                    labels_csv=csv,
                    tiling=tiling,
                    progress=progress,
                    cancel=cancel,
                )

        self.progress.setRange(0, 0)
        self.progress.show()
        self.message.setText("Importing…")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)
        self.worker = self._window.jobs.run(
            self.windowTitle(),
            work,
            self._on_done,
            on_failure=self._on_failed,
            on_cancelled=lambda: self._finish("Cancelled; slides finished before stay."),
            on_progress=self._on_progress,
        )

    def _on_progress(self, progress: Progress) -> None:
        self.progress.setRange(0, max(0, progress.total))
        self.progress.setValue(progress.done)
        self.message.setText(progress.message)

    def _on_done(self, summary: Any) -> None:
        self.summary = summary
        self._finish("\n".join(summary.lines() + summary.notes))
        self._window.reload_slides()

    def _on_failed(self, _info: Any) -> None:
        self._finish("The import failed; nothing of the failed slide was kept.")

    def _finish(self, text: str) -> None:
        self.worker = None
        self.progress.hide()
        self.message.setText(text)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(True)
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setText("Close")

    def _cancel_or_close(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
        else:
            self.reject()
