"""Patch browser: galleries of the most favoured and the most ignored patches of a run.

The filters (slide, label, epoch) are plain combo boxes; whoever owns the project answers
``filters_changed`` by calling :meth:`PatchGallery.set_loading`, then
:meth:`PatchGallery.set_patches` with the store's ``favoured_patches`` results. Thumbnails arrive from a :class:`PatchThumbnailLoader`.
Activating an item emits ``patch_activated(PatchStat)``. GUI thread only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cdfis_desktop.core.class_names import label_name
from cdfis_desktop.gui.thumbnails import PatchThumbnailLoader, ThumbnailRequest

_ROLE_STAT = Qt.ItemDataRole.UserRole + 1


class PatchGallery(QWidget):
    """Two icon grids (favoured / ignored) with slide, label and epoch filters."""

    filters_changed = Signal()
    patch_activated = Signal(object)  # PatchStat

    def __init__(self, loader: PatchThumbnailLoader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._loader = loader
        loader.loaded.connect(self._on_thumbnail)
        self._items: dict[tuple[str, int], QListWidgetItem] = {}
        self.thumbnails_shown = 0  # since the last set_patches
        self.slide_filter = QComboBox()
        self.label_filter = QComboBox()
        self.epoch_filter = QComboBox()
        for combo in (self.slide_filter, self.label_filter, self.epoch_filter):
            combo.currentIndexChanged.connect(self.filters_changed)
        self.favoured = self._grid("favoured")
        self.ignored = self._grid("ignored")
        self.loading = QLabel("Loading the patches…")
        self.loading.hide()

        form = QFormLayout()
        form.addRow("Slide", self.slide_filter)
        form.addRow("Label", self.label_filter)
        form.addRow("Epoch", self.epoch_filter)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.loading)
        layout.addWidget(QLabel("Most favoured (chosen more often than uniform)"))
        layout.addWidget(self.favoured, 1)
        layout.addWidget(QLabel("Most ignored (chosen less often than uniform)"))
        layout.addWidget(self.ignored, 1)

    def _grid(self, name: str) -> QListWidget:
        grid = QListWidget()
        grid.setObjectName(name)
        grid.setViewMode(QListWidget.ViewMode.IconMode)
        grid.setIconSize(QSize(self._loader.size_px, self._loader.size_px))
        grid.setResizeMode(QListWidget.ResizeMode.Adjust)
        grid.setMovement(QListWidget.Movement.Static)
        grid.setUniformItemSizes(True)
        grid.setSpacing(4)
        grid.itemActivated.connect(self._on_activated)
        grid.itemClicked.connect(self._on_activated)
        return grid

    def set_filter_choices(
        self,
        slides: Sequence[tuple[str, int]],
        labels: Sequence[tuple[str, int]],
        epochs: Sequence[int],
    ) -> None:
        """Choices as ``(text, id)``; each combo starts with "All" (data None)."""
        for combo, choices in (
            (self.slide_filter, slides),
            (self.label_filter, labels),
            (self.epoch_filter, [(f"epoch {e}", e) for e in epochs]),
        ):
            combo.blockSignals(True)
            previous = combo.currentData()
            combo.clear()
            combo.addItem("All", None)
            for text, value in choices:
                combo.addItem(text, value)
            index = combo.findData(previous)
            combo.setCurrentIndex(max(0, index))
            combo.blockSignals(False)

    def filters(self) -> dict[str, Any]:
        """``{"slide_id", "label", "epoch"}``, each None for "All"."""
        return {
            "slide_id": self.slide_filter.currentData(),
            "label": self.label_filter.currentData(),
            "epoch": self.epoch_filter.currentData(),
        }

    def set_loading(self) -> None:
        """Empty grids and a "loading" line until the next :meth:`set_patches`."""
        self._items.clear()
        self._loader.request([])
        for grid in (self.favoured, self.ignored):
            grid.clear()
        self.loading.show()

    def is_loading(self) -> bool:
        """Between :meth:`set_loading` and :meth:`set_patches`."""
        return not self.loading.isHidden()

    def set_patches(
        self,
        favoured: Sequence[Any],
        ignored: Sequence[Any],
        slide_paths: dict[int, Path],
        label_names: Sequence[str] = (),
    ) -> None:
        """Fill both grids with ``PatchStat`` values and request their thumbnails."""
        self.loading.hide()
        self._items.clear()
        self.thumbnails_shown = 0
        requests: list[ThumbnailRequest] = []
        for grid, stats, kind in ((self.favoured, favoured, "f"), (self.ignored, ignored, "i")):
            grid.clear()
            for stat in stats:
                item = QListWidgetItem(_placeholder(self._loader.size_px), f"{stat.favour:+.1f}")
                item.setData(_ROLE_STAT, stat)
                label = label_name(label_names, stat.label)
                item.setToolTip(
                    f"patch {stat.patch_id} · slide {stat.slide_id} · label {label}\n"
                    f"chosen {stat.times_chosen}× (uniform would be "
                    f"{stat.expected_uniform:.1f}) · last score {stat.last_score:.3g}"
                )
                grid.addItem(item)
                self._items[(kind, stat.patch_id)] = item
                path = slide_paths.get(stat.slide_id)
                if path is not None:
                    requests.append(
                        ThumbnailRequest(
                            (kind, stat.patch_id), path, stat.l0_x, stat.l0_y, stat.l0_size
                        )
                    )
        self._loader.request(requests)

    def all_stats(self) -> list[Any]:
        """Favoured first, then ignored (the order N / P step through)."""
        return [
            grid.item(row).data(_ROLE_STAT)
            for grid in (self.favoured, self.ignored)
            for row in range(grid.count())
        ]

    def _on_thumbnail(self, request: ThumbnailRequest, image: QImage) -> None:
        item = self._items.get(request.key)  # type: ignore[arg-type]
        if item is not None:
            item.setIcon(QIcon(QPixmap.fromImage(image)))
            self.thumbnails_shown += 1

    def _on_activated(self, item: QListWidgetItem) -> None:
        self.patch_activated.emit(item.data(_ROLE_STAT))


def _placeholder(size_px: int) -> QIcon:
    pixmap = QPixmap(size_px, size_px)
    pixmap.fill(QColor(200, 200, 200))
    return QIcon(pixmap)
