"""Export menu actions: PDF report, CSV, QuPath GeoJSON and PNG overlays, each written by
``core.reporting`` in a worker thread with progress and cancel.

Each dialog asks for what is written: a *file* for the PDF report and the CSV, a *folder*
for GeoJSON (one file per slide) and PNG (the overlay, the overlay on the slide and the
legend of the slide shown). The status bar then names the files, with an "Open folder"
button. GUI thread only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog

from cdfis_desktop.core.progress import CancelToken, ProgressCallback
from cdfis_desktop.gui.workers import JobWorker

if TYPE_CHECKING:
    from cdfis_desktop.core.storage import SlideRecord
    from cdfis_desktop.gui.main_window import MainWindow

PNG_MAX_PX = 4096


@dataclass(frozen=True)
class ExportKind:
    """A menu entry: its text, whether it writes one file or a folder of files, and the
    file dialog's filter (files only)."""

    title: str
    menu_text: str
    writes_folder: bool
    file_filter: str = ""


EXPORT_KINDS: dict[str, ExportKind] = {
    "pdf": ExportKind("PDF report", "PDF &report…", False, "PDF (*.pdf)"),
    "csv": ExportKind("CSV", "&CSV of all patches…", False, "CSV (*.csv)"),
    "geojson": ExportKind("GeoJSON", "&GeoJSON for QuPath (a folder, one file per slide)…", True),
    "png": ExportKind("PNG overlay", "&PNG overlay of this slide (a folder of 3 images)…", True),
}


def export_downsample(slide: SlideRecord) -> float:
    """Level-0 px per pixel of a PNG export: at most ``PNG_MAX_PX`` pixels along the longer
    side, never more pixels than the slide has."""
    from cdfis_desktop.core.heatmap.overlay import downsample_for

    return max(1.0, downsample_for(slide, max_px=PNG_MAX_PX))


def ask_export(window: MainWindow, kind: str) -> JobWorker | None:
    """Ask for the file or folder ``kind`` writes, then :func:`start_export`."""
    spec = EXPORT_KINDS[kind]
    project, run_id = window.state.project, window.state.run_id
    if spec.writes_folder:
        path = QFileDialog.getExistingDirectory(
            window, f"Folder for the {spec.title} export", str(project.folder)
        )
    else:
        suggested = str(project.folder / f"run-{run_id}.{kind}")
        path, _ = QFileDialog.getSaveFileName(
            window, f"Export {spec.title}", suggested, spec.file_filter
        )
    return start_export(window, kind, Path(path)) if path else None


def start_export(window: MainWindow, kind: str, path: Path) -> JobWorker:
    """Write the current run's ``kind`` export to ``path`` (a file, or a folder for
    GeoJSON and PNG) in a worker. The PNG export covers the slide shown, as the overlay
    panel shows it: metric, colormap, opacity, epoch, comparison and range."""
    state = window.state
    project, run_id, slide = state.project, state.run_id, state.slide
    overlay = window.overlay.request_state()

    def work(cancel: CancelToken, progress: ProgressCallback) -> list[Path]:
        from cdfis_desktop.core.reporting.exports import export_csv, export_geojson, export_png
        from cdfis_desktop.core.reporting.report import write_report

        if kind == "pdf":
            return [write_report(project, run_id, path, progress=progress, cancel=cancel)]
        if kind == "csv":
            export_csv(project, run_id, path)
            return [path]
        if kind == "geojson":
            return export_geojson(project, run_id, path, progress=progress, cancel=cancel)
        slides = [slide] if slide is not None else list(state.slides)
        return export_png(
            project,
            run_id,
            path,
            metric=overlay.metric,
            downsample_of={s.id: export_downsample(s) for s in slides},
            colormap=overlay.colormap,
            opacity=overlay.opacity,
            view=overlay.view_fields(),
            progress=progress,
            cancel=cancel,
        )

    def done(paths: list[Path]) -> None:
        window.last_export = paths
        folder = path if EXPORT_KINDS[kind].writes_folder else path.parent
        names = ", ".join(p.name for p in paths[:3]) + (" …" if len(paths) > 3 else "")
        count = f"{len(paths)} files" if len(paths) > 1 else "1 file"
        window.jobs.notify(f"Exported {count} to {folder}: {names}", folder)

    return window.jobs.run(f"Export {EXPORT_KINDS[kind].title}", work, done)
