"""Slide-viewer benchmark: frame time while panning/zooming a 100,000 x 100,000 px slide,
and the time to recompute the overlay for 100,000 patches.

Run: ``QT_QPA_PLATFORM=offscreen python benchmarks/viewer.py``. The slide is generated once
(streamed, a tiled procedural H&E texture) and cached in ``/tmp/cdfis-bench``. Prints ratios
against baselines measured in the same run: the frame time against a repaint of an unchanged
view (the cost floor of painting the window), and the overlay time against one
``np.random`` fill of the same number of values.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QObject

SLIDE_PX = 100_000
TEXTURE_PX = 4096
CACHE_DIR = Path("/tmp/cdfis-bench")


def benchmark_slide(size_px: int = SLIDE_PX, folder: Path = CACHE_DIR) -> Path:
    """A ``size_px`` square pyramidal TIFF at 0.25 µm/px, generated once and cached."""
    from cdfis_desktop.core.demo.synthetic import SyntheticSlide
    from cdfis_desktop.core.slides.tiff_writer import write_pyramidal_tiff_bands

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bench-{size_px}.tiff"
    if path.exists():
        return path
    texture = SyntheticSlide((TEXTURE_PX, TEXTURE_PX), 0.25, seed=7).render_band(0, TEXTURE_PX)
    # tint each texture repeat a little so positions on the slide look different
    repeats = -(-size_px // TEXTURE_PX)
    rng = np.random.default_rng(0)
    tints = rng.uniform(0.85, 1.0, size=(repeats, repeats, 3)).astype(np.float32)

    def band(l0_y: int, band_h: int) -> np.ndarray:
        ty = (l0_y // TEXTURE_PX) % repeats
        y0 = l0_y % TEXTURE_PX
        rows = texture[np.arange(y0, y0 + band_h) % TEXTURE_PX]
        out = np.empty((band_h, size_px, 3), np.uint8)
        for tx in range(repeats):
            x0 = tx * TEXTURE_PX
            width = min(TEXTURE_PX, size_px - x0)
            out[:, x0 : x0 + width] = (rows[:, :width] * tints[ty, tx]).astype(np.uint8)
        return out

    started = time.perf_counter()
    write_pyramidal_tiff_bands(path, (size_px, size_px), band, mpp=0.25, tile_px=256)
    print(f"generated {path} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path


def benchmark_project(slide_path: Path, n_side: int = 316, folder: Path = CACHE_DIR) -> Path:
    """A project with ``n_side**2`` (~100,000) patches tiling the slide and one run whose
    history covers every patch once; cached next to the slide."""
    from cdfis_desktop.core.config import RunConfig, SamplerConfig
    from cdfis_desktop.core.slides import open_slide
    from cdfis_desktop.core.storage import Project

    target = folder / f"bench-project-{n_side}"
    if (target / "project.db").exists():
        return target
    with open_slide(slide_path) as slide:
        width, height = slide.dimensions
        fingerprint = slide.fingerprint()
    size = width // n_side
    xs, ys = np.meshgrid(np.arange(n_side) * size, np.arange(n_side) * size)
    rng = np.random.default_rng(0)
    with Project.create(target) as project:
        slide_id = project.add_slide(
            slide_path, fingerprint=fingerprint, width=width, height=height, mpp=0.25
        )
        ids = project.add_patches(
            slide_id,
            l0_x=xs.ravel(),
            l0_y=ys.ravel(),
            l0_size=size,
            patch_px=96,
            mpp=1.0,
            label=(xs.ravel() > width // 2).astype(int),
            tissue_fraction=1.0,
            split="train",
        )
        run_id = project.create_run(
            RunConfig(sampler=SamplerConfig(rule="cdf", mode="history")),
            n_train=int(ids.size),
            device="cpu",
        )
        with project.history_writer(run_id, flush_every_steps=1) as writer:
            for step, chunk in enumerate(np.array_split(ids, 5), start=1):
                score = rng.random(chunk.size).astype(np.float32)
                counts = rng.multinomial(chunk.size // 8, score / score.sum()).astype(np.int32)
                writer.record(
                    step,
                    1,
                    chunk,
                    score,
                    score / score.sum(),
                    counts,
                    (counts > 0).astype(np.float32),
                )
        project.set_run_status(run_id, "finished")
    return target


class _PaintCounter(QObject):
    """Counts paint events of the viewer's viewport (to check one paint per frame)."""

    def __init__(self) -> None:
        super().__init__()
        self.paints = 0

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # Qt override
        if event.type() == QEvent.Type.Paint:
            self.paints += 1
        return False


def _frame_times(app, viewer, changes) -> np.ndarray:
    """One frame per view change: apply it, then one pass of the event loop, which handles
    the tiles that arrived, the viewer's tile update and the repaint; ms per frame."""
    times = []
    for change in changes:
        started = time.perf_counter()
        change()
        viewer.canvas.viewport().update()
        app.processEvents()
        times.append((time.perf_counter() - started) * 1000)
    return np.asarray(times)


def _wait_settled(app, viewer, timeout_s: float = 120.0) -> float:
    started = time.perf_counter()
    while not viewer.is_settled() and time.perf_counter() - started < timeout_s:
        app.processEvents()
        time.sleep(0.002)
    return time.perf_counter() - started


def _stats(name: str, times_ms: np.ndarray, baseline_ms: float) -> None:
    p50, p95 = np.percentile(times_ms, [50, 95])
    print(
        f"{name:<34} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  max {times_ms.max():7.2f} ms  "
        f"(p50 = {p50 / baseline_ms:5.1f}x baseline, {1000 / max(p50, 1e-6):6.0f} fps)"
    )


def bench_scale(folder: Path) -> None:
    """The main window opening the slide-scale store (issue 18): 5 generated 100,000 x
    100,000 px slides (``slide_scale.py``'s generator) and a >= 10-million-row project
    (``scale_project.py``); time until the window is usable (the project's slides, runs,
    patch table and gallery loaded, the first overlay on screen) and peak RSS, against the
    same window opening a project of the same slides with no run (the baseline)."""
    import resource

    from PySide6.QtWidgets import QApplication
    from scale_project import build_scale_project, database_mib
    from slide_scale import stage_generate

    from cdfis_desktop.core.storage import Project
    from cdfis_desktop.gui.main_window import MainWindow

    generated = stage_generate(folder / "slides")
    slides = sorted((folder / "slides").glob("slide-*.tiff"))
    print(f"generated {len(slides)} slides in {generated['seconds']:.0f} s")
    built = build_scale_project(folder / "scale", slide_files=slides)
    with Project.create(folder / "baseline") as baseline:
        for index, path in enumerate(slides):
            baseline.add_slide(
                path, fingerprint=f"b{index}", width=SLIDE_PX, height=SLIDE_PX, mpp=0.25
            )
    print(
        f"scale project: {built.patches:,} patches, {built.history_rows:,} history rows, "
        f"{database_mib(folder / 'scale'):,.0f} MiB, written in {built.build_s:.0f} s"
    )
    app = QApplication.instance() or QApplication([])
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for name in ("baseline", "scale"):
        window = MainWindow()
        window.resize(1600, 1000)
        window.show()
        app.processEvents()
        started, cpu = time.perf_counter(), time.process_time()
        assert window.open_project(folder / name)
        opened = time.perf_counter() - started
        while window.jobs_running() or (name == "scale" and not window.overlay_shown()):
            app.processEvents()
            time.sleep(0.002)
        usable = time.perf_counter() - started
        print(
            f"main window on the {name} project: open_project returned after {opened:.2f} s, "
            f"usable (overlay shown, jobs done) after {usable:.2f} s "
            f"({time.process_time() - cpu:.2f} s CPU)"
        )
        window.close_project()
        window.close()
        window.deleteLater()
        app.processEvents()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB (before the windows: {rss_before:.0f} MB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=SLIDE_PX, help="slide side in px")
    parser.add_argument(
        "--scale",
        action="store_true",
        help="only the main window on the >= 10-million-row slide-scale project (issue 18)",
    )
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if args.scale:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            bench_scale(Path(tmp))
        return 0
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    from cdfis_desktop.core.heatmap.overlay import metric_values
    from cdfis_desktop.core.storage import Project
    from cdfis_desktop.gui.overlay import OverlayState, build_overlay
    from cdfis_desktop.gui.slide_viewer import SlideViewer

    slide_path = benchmark_slide(args.size)
    project_folder = benchmark_project(slide_path)
    app = QApplication.instance() or QApplication([])
    QCoreApplication.setOrganizationName("cdfis-benchmark")
    viewer = SlideViewer()
    viewer.resize(1200, 800)
    viewer.show()
    started = time.perf_counter()
    viewer.open_slide(slide_path)
    open_s = time.perf_counter() - started
    first_s = _wait_settled(app, viewer)
    print(
        f"slide {args.size:,} x {args.size:,} px, {viewer.slide.level_count} levels; open "
        f"{open_s * 1000:.0f} ms, first full view {first_s * 1000:.0f} ms"
    )

    counter = _PaintCounter()
    viewer.canvas.viewport().installEventFilter(counter)
    still = [lambda: None] * 40
    baseline = float(np.median(_frame_times(app, viewer, still)))
    viewer.canvas.viewport().removeEventFilter(counter)
    print(f"  paints per frame: {counter.paints / len(still):.2f}")
    print(f"baseline: repaint of an unchanged view  {baseline:.2f} ms")

    centre = args.size / 2
    # fitted (~85 level-0 px per screen px) -> ~1 px per screen px, the most tiles per frame
    zoom_in = [lambda: viewer.zoom_by(1.15)] * 32
    pan = [lambda: viewer.pan_by(0.1, 0.04)] * 80
    zoom_out = [lambda: viewer.zoom_by(1 / 1.15)] * 32
    viewer.centre_on(centre, centre)
    reads_before = viewer._loader.completed
    _stats("zoom in 32 frames (fit -> level 0)", _frame_times(app, viewer, zoom_in), baseline)
    print(
        f"  ended at level {viewer.current_level()}, "
        f"{viewer.l0_per_screen_px():.2f} level-0 px per screen px"
    )
    _stats("pan 80 frames at level 0", _frame_times(app, viewer, pan), baseline)
    _stats("zoom out 32 frames", _frame_times(app, viewer, zoom_out), baseline)
    settle_s = _wait_settled(app, viewer)
    print(
        f"  tiles read during the sequence: {viewer._loader.completed - reads_before}; "
        f"settled {settle_s * 1000:.0f} ms after the last frame; "
        f"cache {viewer._cache.bytes_used / 2**20:.0f} MB in {len(viewer._cache)} tiles"
    )

    with Project.open(project_folder) as project:
        slide = project.slides()[0]
        run_id = project.runs()[0].id
        n = len(project.patches(slide_id=slide.id))
        timings = []
        for metric in ("times_chosen", "last_score", "favour", "times_chosen", "last_score"):
            t0 = time.perf_counter()
            layer = build_overlay(project, run_id, slide, OverlayState(metric=metric))
            t1 = time.perf_counter()
            viewer.set_overlay(layer.rgba, layer.l0_rect)
            viewer.set_legend(layer.legend)
            app.processEvents()
            viewer.canvas.viewport().repaint()
            t2 = time.perf_counter()
            timings.append((t1 - t0, t2 - t1))
        query_render = np.median([a for a, _ in timings]) * 1000
        draw = np.median([b for _, b in timings]) * 1000
        print(
            f"overlay for {n:,} patches (layer {layer.rgba.shape[1]}x{layer.rgba.shape[0]}): "
            f"query + render {query_render:.0f} ms, upload + paint {draw:.1f} ms "
            f"(total {(query_render + draw) / baseline:.1f}x baseline)"
        )
        values = metric_values(project, run_id, slide.id, "last_score")
        t0 = time.perf_counter()
        for _ in range(5):
            from cdfis_desktop.core.heatmap import render_patch_heatmap

            render_patch_heatmap(
                values.l0_x,
                values.l0_y,
                values.l0_size,
                values.value,
                slide_l0_w=slide.width,
                slide_l0_h=slide.height,
                downsample=float(values.l0_size[0]),
            )
        print(f"  of which render alone: {(time.perf_counter() - t0) / 5 * 1000:.1f} ms")
    viewer.close_slide()
    viewer.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return 0


if __name__ == "__main__":
    sys.exit(main())
