"""The whole-slide viewer: smooth zoom and pan over a slide pyramid, with one overlay layer.

Scene coordinates are **level-0 pixels** (x right, y down). The view shows:

- a thumbnail stretched over the whole slide (so nothing is ever blank while tiles load);
- tiles of the pyramid level that best matches the zoom, read off the GUI thread by a
  :class:`~cdfis_desktop.gui.tiles.TileLoader` and kept in an LRU :class:`TileCache`;
- ONE overlay :class:`pyqtgraph.ImageItem` (RGBA numpy, drawn nearest-neighbour into a
  level-0 rectangle) with adjustable opacity;
- annotation outlines (one path item per class, toggled with :meth:`set_annotations_visible`);
- a highlight rectangle; a heads-up layer (scale bar in µm, legend, cursor position), an
  overview map in the corner (toggled with :meth:`set_minimap_visible`) and a notice that
  says why the canvas shows no overlay (:meth:`set_notice`, HTML with action links).

The canvas takes the keyboard focus when the pointer enters it or the wheel turns over it,
so ``+``/``-``/arrows work without a click (which would also select a patch).

Thread rules: all methods are GUI-thread only. The viewer owns one slide handle for metadata
and the thumbnail; the loader's threads open their own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QImage,
    QKeySequence,
    QPainterPath,
    QPen,
    QPixmap,
    QTextDocumentFragment,
)
from PySide6.QtWidgets import (
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from cdfis_desktop.gui.handles import SlideOpener, default_opener
from cdfis_desktop.gui.hud import Hud, LegendSpec
from cdfis_desktop.gui.minimap import Minimap
from cdfis_desktop.gui.qtimage import array_to_qimage
from cdfis_desktop.gui.tiles import TileCache, TileKey, TileLoader, tile_geometry, tiles_covering

THUMBNAIL_PX = 1024
Z_THUMBNAIL, Z_TILES, Z_OVERLAY, Z_ANNOTATIONS, Z_HIGHLIGHT = -1000.0, 0.0, 100.0, 150.0, 200.0
NOTICE_MAX_W = 520


class SlideViewer(QWidget):
    """Zoomable, pannable slide view.

    Signals: ``position_clicked(l0_x, l0_y)`` on a left click (not a drag) on the slide;
    ``cursor_moved(l0_x, l0_y)``; ``view_changed()`` after the visible area changed;
    ``tiles_settled()`` when every tile the current view needs is drawn;
    ``tile_error(message)`` the first time a tile cannot be read;
    ``notice_link_activated(link)`` when a link of the notice is clicked.
    """

    position_clicked = Signal(float, float)
    cursor_moved = Signal(float, float)
    view_changed = Signal()
    tiles_settled = Signal()
    tile_error = Signal(str)
    notice_link_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None, cache_mb: float = 256.0) -> None:
        super().__init__(parent)
        self._slide: Any = None
        self._opener: SlideOpener = default_opener
        self._loader: TileLoader | None = None
        self._cache = TileCache(cache_mb)
        self._items: dict[TileKey, QGraphicsPixmapItem] = {}
        self._wanted: set[TileKey] = set()
        self._level = 0
        self._tile_error_shown = False
        self._fitted = False  # keep the whole slide in view on resize until the user moves

        self.canvas = pg.GraphicsView(self, background=QColor(48, 48, 48))
        self.canvas.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.view_box = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.view_box.setMouseEnabled(x=True, y=True)
        self.canvas.setCentralItem(self.view_box)

        self._thumbnail_item = QGraphicsPixmapItem()
        self._thumbnail_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._thumbnail_item.setZValue(Z_THUMBNAIL)
        self.view_box.addItem(self._thumbnail_item, ignoreBounds=True)

        self.overlay_item = pg.ImageItem(axisOrder="row-major")
        self.overlay_item.setZValue(Z_OVERLAY)
        self.overlay_item.setOpacity(0.45)
        self.overlay_item.hide()
        self.view_box.addItem(self.overlay_item, ignoreBounds=True)

        self._highlight = QGraphicsRectItem()
        pen = QPen(QColor(0, 255, 255), 3)
        pen.setCosmetic(True)
        self._highlight.setPen(pen)
        self._highlight.setZValue(Z_HIGHLIGHT)
        self._highlight.hide()
        self.view_box.addItem(self._highlight, ignoreBounds=True)

        self._annotation_items: list[QGraphicsPathItem] = []
        self._annotations_visible = True

        self.hud = Hud(self.canvas)
        self.minimap = Minimap(self.canvas)
        self.minimap.centre_requested.connect(self.centre_on)
        self._minimap_visible = True
        self.notice = QLabel(self.canvas)
        self.notice.setObjectName("canvas_notice")
        self.notice.setWordWrap(True)
        self.notice.setTextFormat(Qt.TextFormat.RichText)
        self.notice.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.notice.setStyleSheet(
            "QLabel#canvas_notice { background: rgba(20, 20, 20, 215); color: white; "
            "padding: 12px; border-radius: 6px; }"
        )
        self.notice.linkActivated.connect(self.notice_link_activated)
        self.notice.hide()
        self.setMinimumSize(320, 240)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)

        self._update_timer = QTimer(self)
        self._update_timer.setSingleShot(True)
        self._update_timer.setInterval(0)
        self._update_timer.timeout.connect(self._update_tiles)
        self.view_box.sigRangeChanged.connect(self._schedule_update)
        self.view_box.sigResized.connect(self._on_resized)
        self.view_box.sigRangeChangedManually.connect(self._on_user_moved)
        self.canvas.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.canvas.scene().sigMouseClicked.connect(self._on_mouse_clicked)
        self.actions_by_name = self._add_shortcuts()
        self.canvas.installEventFilter(self)
        self.canvas.viewport().installEventFilter(self)

    # ----------------------------------------------------------------- slide
    @property
    def slide(self) -> Any:
        """The open ``SlideReader`` (GUI thread's handle) or None."""
        return self._slide

    def open_slide(self, path: Path, opener: SlideOpener | None = None) -> None:
        """Show the slide at ``path`` fitted in the view. ``opener(path) -> SlideReader``
        defaults to ``core.slides.open_slide``; raises what it raises (``SlideOpenError``)."""
        opener = opener or default_opener
        slide = opener(Path(path))
        self.close_slide()
        self._slide, self._opener = slide, opener
        self._loader = TileLoader(
            Path(path), slide.level_dimensions, slide.level_downsamples, opener, parent=self
        )
        self._loader.loaded.connect(self._on_tile_loaded)
        self._loader.failed.connect(self._on_tile_failed)
        self._tile_error_shown = False
        l0_w, l0_h = slide.dimensions
        thumbnail = array_to_qimage(slide.thumbnail(THUMBNAIL_PX))
        self._thumbnail_item.setPixmap(QPixmap.fromImage(thumbnail))
        self._thumbnail_item.setScale(l0_w / thumbnail.width())
        self._thumbnail_item.setPos(0, 0)
        self._thumbnail_item.show()
        self.minimap.set_thumbnail(thumbnail, l0_w, l0_h)
        self.minimap.setVisible(self._minimap_visible)
        self.view_box.setLimits(
            xMin=-0.5 * l0_w,
            xMax=1.5 * l0_w,
            yMin=-0.5 * l0_h,
            yMax=1.5 * l0_h,
            minXRange=16,
            minYRange=16,
        )
        self._place_children()
        self.fit()

    def close_slide(self) -> None:
        """Stop the loader (waits for running reads), drop tiles, overlay and handle."""
        if self._loader is not None:
            self._loader.shutdown()
            self._loader.deleteLater()
            self._loader = None
        for item in self._items.values():
            self.view_box.removeItem(item)
        self._items.clear()
        self._wanted.clear()
        self._cache.clear()
        self._thumbnail_item.hide()
        self.minimap.set_thumbnail(None, 1, 1)
        self.set_overlay(None)
        self.set_annotations([])
        self.clear_highlight()
        if self._slide is not None:
            self._slide.close()
            self._slide = None

    # ------------------------------------------------------------ navigation
    def fit(self) -> None:
        """Show the whole slide (and keep it fitted when the view is resized, until the
        user or a navigation method moves the view)."""
        if self._slide is not None:
            l0_w, l0_h = self._slide.dimensions
            self.view_box.setRange(QRectF(0, 0, l0_w, l0_h), padding=0.02)
            self._fitted = True

    def _on_resized(self) -> None:
        if self._fitted:
            self.fit()
        self._schedule_update()

    def _on_user_moved(self) -> None:
        self._fitted = False

    def visible_l0_rect(self) -> QRectF:
        """The part of the scene in view, in level-0 px."""
        (x0, x1), (y0, y1) = self.view_box.viewRange()
        return QRectF(x0, y0, x1 - x0, y1 - y0)

    def l0_per_screen_px(self) -> float:
        """Level-0 px per screen px at the current zoom (the downsample being shown)."""
        width_px = max(1.0, self.view_box.width())
        return self.visible_l0_rect().width() / width_px

    def current_level(self) -> int:
        return self._level

    def centre_on(self, l0_x: float, l0_y: float, l0_width: float | None = None) -> None:
        """Centre the view on ``(l0_x, l0_y)``; with ``l0_width``, zoom so that many level-0
        px fill the view's width."""
        rect = self.visible_l0_rect()
        self._fitted = False
        width = rect.width() if l0_width is None else l0_width
        height = width * rect.height() / max(rect.width(), 1e-9)
        self.view_box.setRange(
            QRectF(l0_x - width / 2, l0_y - height / 2, width, height), padding=0
        )

    def zoom_by(self, factor: float) -> None:
        """Zoom in (``factor > 1``) or out around the view's centre."""
        self._fitted = False
        centre = self.visible_l0_rect().center()
        self.view_box.scaleBy((1 / factor, 1 / factor), center=centre)

    def pan_by(self, fraction_x: float, fraction_y: float) -> None:
        """Move by fractions of the visible width/height (positive = right/down)."""
        self._fitted = False
        rect = self.visible_l0_rect()
        self.view_box.translateBy(x=fraction_x * rect.width(), y=fraction_y * rect.height())

    def _add_shortcuts(self) -> dict[str, QAction]:
        """The viewer's keys as actions (the View menu lists the same actions); they act
        while the canvas has the focus, which it takes on hover."""
        bindings: list[tuple[str, list[QKeySequence], Callable[[], None]]] = [
            (
                "Zoom in",
                [QKeySequence("+"), QKeySequence("="), QKeySequence.StandardKey.ZoomIn],
                lambda: self.zoom_by(1.5),
            ),
            (
                "Zoom out",
                [QKeySequence("-"), QKeySequence.StandardKey.ZoomOut],
                lambda: self.zoom_by(1 / 1.5),
            ),
            ("Fit slide", [QKeySequence("0")], self.fit),
            ("Pan left", [QKeySequence(Qt.Key.Key_Left)], lambda: self.pan_by(-0.25, 0)),
            ("Pan right", [QKeySequence(Qt.Key.Key_Right)], lambda: self.pan_by(0.25, 0)),
            ("Pan up", [QKeySequence(Qt.Key.Key_Up)], lambda: self.pan_by(0, -0.25)),
            ("Pan down", [QKeySequence(Qt.Key.Key_Down)], lambda: self.pan_by(0, 0.25)),
        ]
        actions = {}
        for text, keys, slot in bindings:
            action = QAction(text, self)
            action.setShortcuts(keys)
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.triggered.connect(slot)
            self.addAction(action)
            actions[text] = action
        return actions

    # --------------------------------------------------------------- overlay
    def set_overlay(
        self, rgba: np.ndarray | None, l0_rect: tuple[float, float, float, float] | None = None
    ) -> None:
        """Show ``rgba`` (``uint8[h, w, 4]``) stretched over ``l0_rect = (x, y, w, h)`` in
        level-0 px, or hide the overlay when ``rgba`` is None."""
        if rgba is None:
            self.overlay_item.hide()
            self.overlay_item.clear()
            return
        if l0_rect is None:
            raise ValueError("an overlay needs its level-0 rectangle")
        self.overlay_item.setImage(np.ascontiguousarray(rgba), autoLevels=False, levels=None)
        self.overlay_item.setRect(QRectF(*l0_rect))
        self.overlay_item.show()

    def set_overlay_opacity(self, opacity: float) -> None:
        """``opacity`` 0..1."""
        self.overlay_item.setOpacity(float(np.clip(opacity, 0.0, 1.0)))

    def set_legend(self, legend: LegendSpec | None, caption: str = "") -> None:
        self.hud.set_legend(legend, caption)

    def highlight(self, l0_x: float, l0_y: float, l0_size: float) -> None:
        """Outline the square patch with top-left ``(l0_x, l0_y)`` and side ``l0_size``."""
        self._highlight.setRect(QRectF(l0_x, l0_y, l0_size, l0_size))
        self._highlight.show()

    def clear_highlight(self) -> None:
        self._highlight.hide()

    def highlighted_rect(self) -> QRectF | None:
        return self._highlight.rect() if self._highlight.isVisible() else None

    # ----------------------------------------------------------- annotations
    def set_annotations(self, outlines: Sequence[tuple[str, QPainterPath, QColor]]) -> None:
        """Outline ``(class name, path in level-0 px, colour)`` shapes (replacing any)."""
        for item in self._annotation_items:
            self.view_box.removeItem(item)
        self._annotation_items = []
        for name, path, color in outlines:
            item = QGraphicsPathItem(path)
            pen = QPen(color, 2, Qt.PenStyle.DashLine)  # dashed: an outline, not overlay data
            pen.setCosmetic(True)
            item.setPen(pen)
            item.setToolTip(f"annotation: {name}")
            item.setZValue(Z_ANNOTATIONS)
            item.setVisible(self._annotations_visible)
            self.view_box.addItem(item, ignoreBounds=True)
            self._annotation_items.append(item)

    def annotation_classes(self) -> list[str]:
        return [item.toolTip().removeprefix("annotation: ") for item in self._annotation_items]

    def set_annotations_visible(self, visible: bool) -> None:
        self._annotations_visible = visible
        for item in self._annotation_items:
            item.setVisible(visible)

    def annotations_visible(self) -> bool:
        return self._annotations_visible and bool(self._annotation_items)

    # ------------------------------------------------------- notice, minimap
    def set_notice(self, html: str | None) -> None:
        """Say on the canvas why it shows no overlay (None hides the notice). Links
        (``<a href='kind:value'>``) come back through ``notice_link_activated``."""
        if not html:
            self.notice.hide()
            self.notice.clear()
            return
        self.notice.setText(html)
        self.notice.show()
        self._place_children()

    def notice_text(self) -> str:
        """The notice as plain text ("" when hidden)."""
        if self.notice.isHidden():
            return ""
        return QTextDocumentFragment.fromHtml(self.notice.text()).toPlainText()

    def set_minimap_visible(self, visible: bool) -> None:
        self._minimap_visible = visible
        self.minimap.setVisible(visible and self._slide is not None)

    def minimap_visible(self) -> bool:
        return self._minimap_visible

    # ----------------------------------------------------------------- tiles
    def is_settled(self) -> bool:
        """True when a slide is open and every tile the current view needs is drawn."""
        return (
            self._slide is not None
            and not self._update_timer.isActive()
            and all(key in self._items for key in self._wanted)
        )

    def _schedule_update(self) -> None:
        if not self._update_timer.isActive():
            self._update_timer.start()

    def _update_tiles(self) -> None:
        self.hud.set_scale(self.l0_per_screen_px(), self._slide.mpp if self._slide else None)
        self.minimap.set_view_rect(self.visible_l0_rect())
        self.view_changed.emit()
        if self._slide is None or self._loader is None:
            return
        self._level = int(self._slide.best_level_for_downsample(self.l0_per_screen_px()))
        view = self.visible_l0_rect()
        margin_x, margin_y = view.width() * 0.15, view.height() * 0.15
        area = (
            view.x() - margin_x,
            view.y() - margin_y,
            view.width() + 2 * margin_x,
            view.height() + 2 * margin_y,
        )
        dims, downsamples = self._slide.level_dimensions, self._slide.level_downsamples
        keys = tiles_covering(self._level, area, dims, downsamples)
        self._wanted = set(keys)
        for key in keys:
            if key not in self._items:
                image = self._cache.get(key)
                if image is not None:
                    self._show_tile(key, image)
        self._loader.request([k for k in keys if k not in self._items])
        self._drop_hidden_items(view)
        if self.is_settled():
            self.tiles_settled.emit()

    def _drop_hidden_items(self, view: QRectF) -> None:
        """Remove tiles outside the view, and tiles of other levels once this level's are in;
        the stretched thumbnail is only drawn while tiles are missing (it is costly to
        paint magnified and would be hidden anyway)."""
        current_complete = all(key in self._items for key in self._wanted)
        self._thumbnail_item.setVisible(self._slide is not None and not current_complete)
        for key in list(self._items):
            if key in self._wanted:
                continue
            item = self._items[key]
            if (
                current_complete
                or not item.sceneBoundingRect().isValid()
                or not self._intersects(item, view)
            ):
                self.view_box.removeItem(item)
                del self._items[key]

    def _intersects(self, item: QGraphicsPixmapItem, view: QRectF) -> bool:
        rect = QRectF(item.pos(), item.pixmap().size().toSizeF() * item.scale())
        return rect.intersects(view)

    def _show_tile(self, key: TileKey, image: QImage) -> None:
        geometry = tile_geometry(key, self._slide.level_dimensions, self._slide.level_downsamples)
        item = QGraphicsPixmapItem(QPixmap.fromImage(image))
        item.setPos(QPointF(geometry.l0_x, geometry.l0_y))
        item.setScale(float(self._slide.level_downsamples[key.level]))
        # finer levels above coarser ones while both are shown during a zoom
        item.setZValue(Z_TILES - key.level)
        self.view_box.addItem(item, ignoreBounds=True)
        self._items[key] = item

    def _on_tile_loaded(self, key: TileKey, image: QImage | None) -> None:
        if self._slide is None or image is None or self.sender() is not self._loader:
            return  # a read of a slide closed since, queued before its loader stopped
        self._cache.put(key, image)
        if key in self._wanted and key not in self._items:
            self._show_tile(key, image)
            if all(k in self._items for k in self._wanted):
                self._drop_hidden_items(self.visible_l0_rect())
                self.tiles_settled.emit()

    def _on_tile_failed(self, key: TileKey, error: Exception) -> None:
        if not self._tile_error_shown and self.sender() is self._loader:
            self._tile_error_shown = True
            name = self._loader.slide_path.name if self._loader else "slide"
            self.tile_error.emit(f"{name}: cannot read tile {key}: {type(error).__name__}: {error}")

    # ---------------------------------------------------------------- events
    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        if self._slide is None:
            return
        pos = self.view_box.mapSceneToView(scene_pos)
        l0_x, l0_y = pos.x(), pos.y()
        mpp = self._slide.mpp
        text = f"x {l0_x:,.0f}  y {l0_y:,.0f} px"
        if mpp:
            text += f"  ·  {l0_x * mpp:,.1f}, {l0_y * mpp:,.1f} µm"
        text += f"  ·  level {self._level}"
        self.hud.set_cursor_text(text)
        self.cursor_moved.emit(l0_x, l0_y)

    def _on_mouse_clicked(self, event: Any) -> None:
        if self._slide is None or event.button() != Qt.MouseButton.LeftButton:
            return
        pos = self.view_box.mapSceneToView(event.scenePos())
        self.position_clicked.emit(pos.x(), pos.y())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # Qt override
        kind = event.type()
        if watched is self.canvas and kind == QEvent.Type.Resize:
            self._place_children()
        elif kind in (QEvent.Type.Enter, QEvent.Type.Wheel) and not self.canvas.hasFocus():
            self.canvas.setFocus(Qt.FocusReason.MouseFocusReason)
        return super().eventFilter(watched, event)

    def _place_children(self) -> None:
        width, height = self.canvas.width(), self.canvas.height()
        self.hud.setGeometry(0, 0, width, height)
        self.minimap.move(max(0, width - self.minimap.width() - 10), 10)
        notice_w = max(200, min(NOTICE_MAX_W, width - 40))
        self.notice.setFixedWidth(notice_w)
        self.notice.adjustSize()
        self.notice.move((width - notice_w) // 2, max(10, int(height * 0.35)))
        self.hud.raise_()
        self.minimap.raise_()
        self.notice.raise_()
