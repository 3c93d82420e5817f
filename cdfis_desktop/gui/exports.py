"""Export menu actions: PDF report, CSV, QuPath GeoJSON and PNG overlays, each written by
``core.reporting`` in a worker thread with progress and cancel. GUI thread only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog

from cdfis_desktop.core.progress import CancelToken, ProgressCallback
from cdfis_desktop.gui.workers import JobWorker

EXPORT_KINDS: dict[str, tuple[str, str]] = {
    "pdf": ("PDF report", "PDF (*.pdf)"),
    "csv": ("CSV", "CSV (*.csv)"),
    "geojson": ("GeoJSON", "GeoJSON (*.geojson)"),
    "png": ("PNG overlay", "PNG (*.png)"),
}
PNG_MAX_PX = 4096


def ask_export(window: Any, kind: str) -> JobWorker | None:
    """Ask for a file name, then :func:`start_export`."""
    title, file_filter = EXPORT_KINDS[kind]
    suggested = str(window.project.folder / f"run-{window.run_id}.{kind}")
    path, _ = QFileDialog.getSaveFileName(window, f"Export {title}", suggested, file_filter)
    return start_export(window, kind, Path(path)) if path else None


def start_export(window: Any, kind: str, path: Path) -> JobWorker:
    """Write the current run's ``kind`` export to ``path`` in a worker of ``window``
    (a :class:`~cdfis_desktop.gui.main_window.MainWindow`). The PNG export covers the slide
    shown, with the overlay's metric and colormap."""
    project, run_id = window.project, window.run_id
    state = window.overlay_controls.state()
    slide = window.slide

    def work(cancel: CancelToken, progress: ProgressCallback) -> list[Path]:
        from cdfis_desktop.core.heatmap.overlay import downsample_for
        from cdfis_desktop.core.reporting.exports import export_csv, export_geojson, export_png
        from cdfis_desktop.core.reporting.report import write_report

        if kind == "pdf":
            return [write_report(project, run_id, path, progress=progress, cancel=cancel)]
        if kind == "csv":
            export_csv(project, run_id, path)
            return [path]
        if kind == "geojson":
            return export_geojson(project, run_id, path, progress=progress, cancel=cancel)
        slides = [slide] if slide is not None else project.slides()
        return export_png(
            project,
            run_id,
            path,
            metric=state.metric,
            downsample_of={s.id: downsample_for(s, max_px=PNG_MAX_PX) for s in slides},
            colormap=state.colormap,
            opacity=state.opacity,
            progress=progress,
            cancel=cancel,
        )

    def done(paths: list[Path]) -> None:
        names = ", ".join(p.name for p in paths[:3]) + (" …" if len(paths) > 3 else "")
        window.statusBar().showMessage(f"Exported {names}", 10_000)
        window.last_export = paths

    return window.run_job(f"Export {EXPORT_KINDS[kind][0]}", work, done)
