"""The slide viewer on a real pyramidal TIFF read through OpenSlide (offscreen Qt)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QImage

from cdfis_desktop.core.errors import SlideOpenError
from cdfis_desktop.core.heatmap import LegendSpec, colormap_lut
from cdfis_desktop.gui.hud import nice_scale_length
from cdfis_desktop.gui.qtimage import array_to_qimage, qimage_to_array
from cdfis_desktop.gui.slide_viewer import SlideViewer
from cdfis_desktop.gui.tiles import TILE_PX, TileCache, TileKey, tile_geometry, tiles_covering


@pytest.fixture
def viewer(qtbot, synthetic_slide):
    widget = SlideViewer()
    qtbot.addWidget(widget)
    widget.resize(800, 600)
    widget.show()
    widget.open_slide(synthetic_slide.slide_path)
    qtbot.waitUntil(widget.is_settled, timeout=8000)
    yield widget
    widget.close_slide()


def test_tile_geometry_crops_edge_tiles_and_scales_to_level0() -> None:
    dims, downsamples = [(2048, 1536), (512, 384)], [1.0, 4.0]
    edge = tile_geometry(TileKey(0, 3, 2), dims, downsamples)
    assert (edge.l0_x, edge.l0_y, edge.lv_w, edge.lv_h) == (1536, 1024, 512, 512)
    coarse = tile_geometry(TileKey(1, 0, 0), dims, downsamples)
    assert (coarse.lv_w, coarse.lv_h, coarse.l0_w, coarse.l0_h) == (512, 384, 2048.0, 1536.0)
    keys = tiles_covering(0, (600, 600, 10, 10), dims, downsamples)
    assert keys == [TileKey(0, 1, 1)]
    centre_first = tiles_covering(0, (0, 0, 2048, 1536), dims, downsamples)
    assert len(centre_first) == 12 and centre_first[0] in {TileKey(0, 1, 1), TileKey(0, 2, 1)}


def test_tile_cache_evicts_least_recently_used_within_its_byte_budget() -> None:
    image = QImage(TILE_PX, TILE_PX, QImage.Format.Format_RGB888)
    cache = TileCache(max_mb=2.5 * image.sizeInBytes() / 1024 / 1024)
    for col in range(3):
        cache.put(TileKey(0, col, 0), image)
    assert TileKey(0, 0, 0) not in cache and len(cache) == 2
    cache.get(TileKey(0, 1, 0))
    cache.put(TileKey(0, 3, 0), image)
    assert TileKey(0, 1, 0) in cache and TileKey(0, 2, 0) not in cache
    assert cache.bytes_used <= cache.max_bytes


def test_qimage_round_trip_keeps_pixels() -> None:
    rgba = np.random.default_rng(0).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    assert np.array_equal(qimage_to_array(array_to_qimage(rgba)), rgba)
    with pytest.raises(ValueError, match="uint8"):
        array_to_qimage(np.zeros((4, 4), np.float32))


def test_zoom_picks_the_level_for_the_scale_and_tiles_match_the_slide(viewer, qtbot) -> None:
    viewer.centre_on(1024, 768, l0_width=6000)  # ~7.5 level-0 px per screen px
    qtbot.waitUntil(viewer.is_settled, timeout=8000)
    assert viewer.current_level() == 1
    viewer.centre_on(1024, 768, l0_width=400)
    qtbot.waitUntil(viewer.is_settled, timeout=8000)
    assert viewer.current_level() == 0
    # the drawn tile is exactly what the slide returns for that region
    drawn = qimage_to_array(viewer._items[TileKey(0, 2, 1)].pixmap().toImage())[:, :, :3]
    expected = viewer.slide.read_region(1024, 512, 0, TILE_PX, TILE_PX)
    assert np.array_equal(drawn, expected)
    # coarser tiles are dropped once the finer level covers the view
    assert all(key.level == 0 for key in viewer._items)


def test_navigation_keys_and_centre_on(viewer, qtbot) -> None:
    viewer.centre_on(500, 400, l0_width=600)
    rect = viewer.visible_l0_rect()
    assert rect.center().x() == pytest.approx(500, abs=2)
    assert rect.center().y() == pytest.approx(400, abs=2)
    viewer.canvas.setFocus()
    qtbot.keyClick(viewer.canvas, "+")
    assert viewer.visible_l0_rect().width() == pytest.approx(rect.width() / 1.5, rel=0.02)
    before = viewer.visible_l0_rect().center().x()
    qtbot.keyClick(viewer.canvas, Qt.Key.Key_Right)
    assert viewer.visible_l0_rect().center().x() > before


def test_scale_bar_reports_microns(viewer) -> None:
    bar_px, length_um, label = viewer.hud.scale_bar()
    l0_per_px = viewer.l0_per_screen_px()
    assert label.endswith("µm") or label.endswith("mm")
    assert bar_px == pytest.approx(length_um / (l0_per_px * viewer.slide.mpp))
    assert 40 <= bar_px <= 130
    assert nice_scale_length(0.5) == 50.0
    assert nice_scale_length(1.3) == 100.0


def test_overlay_is_drawn_over_the_slide_in_level0_frame(viewer, qtbot, screenshot_dir) -> None:
    width, height = viewer.slide.dimensions
    rgba = np.zeros((12, 16, 4), np.uint8)
    rgba[:, 8:] = (255, 0, 0, 255)  # right half red
    viewer.set_overlay(rgba, (0, 0, width, height))
    viewer.set_overlay_opacity(1.0)
    viewer.set_legend(LegendSpec("test values", colormap_lut("viridis"), 0.0, 3.0))
    viewer.fit()
    qtbot.waitUntil(viewer.is_settled, timeout=8000)
    shot = qimage_to_array(viewer.grab().toImage())
    shot_path = screenshot_dir / "viewer_overlay.png"
    viewer.grab().save(str(shot_path))
    # map the slide's right-half centre to widget pixels: it must be pure red
    point = viewer.canvas.mapFromScene(
        viewer.view_box.mapViewToScene(QPointF(width * 0.75, height * 0.5))
    )
    pixel = shot[point.y(), point.x(), :3]
    assert pixel[0] > 200 and pixel[1] < 40 and pixel[2] < 40
    left = viewer.canvas.mapFromScene(
        viewer.view_box.mapViewToScene(QPointF(width * 0.25, height * 0.5))
    )
    assert not (shot[left.y(), left.x(), 0] > 200 and shot[left.y(), left.x(), 1] < 40)
    viewer.set_overlay_opacity(0.0)
    assert viewer.overlay_item.opacity() == 0.0


def test_click_reports_level0_position(viewer, qtbot) -> None:
    clicks: list[tuple[float, float]] = []
    viewer.position_clicked.connect(lambda x, y: clicks.append((x, y)))
    target = viewer.canvas.mapFromScene(viewer.view_box.mapViewToScene(QPointF(300, 200)))
    qtbot.mouseClick(viewer.canvas.viewport(), Qt.MouseButton.LeftButton, pos=target)
    assert clicks, "no click reported"
    x, y = clicks[-1]
    assert x == pytest.approx(300, abs=6) and y == pytest.approx(200, abs=6)


def test_unreadable_slide_raises_slide_open_error(qtbot, tmp_path) -> None:
    bad = tmp_path / "broken.tiff"
    bad.write_bytes(b"not a slide at all")
    widget = SlideViewer()
    qtbot.addWidget(widget)
    with pytest.raises(SlideOpenError, match="broken.tiff"):
        widget.open_slide(bad)
    assert widget.slide is None


@pytest.mark.realdata
@pytest.mark.filterwarnings("ignore::cdfis_desktop.core.slides.MissingMppWarning")
def test_viewer_shows_every_real_slide(qtbot, real_slide) -> None:
    widget = SlideViewer()
    qtbot.addWidget(widget)
    widget.resize(640, 480)
    widget.show()
    widget.open_slide(real_slide)
    qtbot.waitUntil(widget.is_settled, timeout=15000)
    assert widget._items, "no tile drawn"
    key = min(widget._items)
    drawn = qimage_to_array(widget._items[key].pixmap().toImage())[:, :, :3]
    geometry = tile_geometry(key, widget.slide.level_dimensions, widget.slide.level_downsamples)
    expected = widget.slide.read_region(
        geometry.l0_x, geometry.l0_y, key.level, geometry.lv_w, geometry.lv_h
    )
    assert np.array_equal(drawn, expected)
    widget.close_slide()


@pytest.mark.realdata
def test_viewer_refuses_every_bad_real_file(qtbot, bad_real_slide) -> None:
    path, phrase = bad_real_slide
    widget = SlideViewer()
    qtbot.addWidget(widget)
    with pytest.raises(SlideOpenError, match=phrase):
        widget.open_slide(path)
    assert widget.slide is None
