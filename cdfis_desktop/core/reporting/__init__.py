"""Reports and exports of a run: the PDF report, per-patch CSV, QuPath GeoJSON, PNG overlays.

Headless (numpy + matplotlib Agg, no Qt). Public API::

    write_report(project, run_id, path, *, progress=None, cancel=None) -> Path
    export_csv(project, run_id, path) -> int                       (rows written)
    export_geojson(project, run_id, out, *, slide_ids=None, progress=None, cancel=None)
        -> list[Path]                                              (one file per slide)
    export_png(project, run_id, out, *, metric="favour", downsample_of, colormap=None,
               opacity=0.5, progress=None, cancel=None) -> list[Path]
    resolve_run(project, "last" | id) -> RunSummary
    patch_measurements(project, run_id, slide_id=None) -> PatchMeasurements
    downsample_for(slide, *, max_px=None, mpp=None) -> float   (from core.heatmap.overlay)

Overlays are drawn by the overlay service (``core.heatmap.overlay.render_overlay``), the
same path as the GUI's; the metrics come from its registry (``core.heatmap.metrics``).

Every file is written atomically; an unwritable path raises ExportError.
"""

from __future__ import annotations

from cdfis_desktop.core.heatmap.overlay import downsample_for
from cdfis_desktop.core.reporting.data import (
    PatchMeasurements,
    patch_measurements,
    resolve_run,
)
from cdfis_desktop.core.reporting.exports import (
    CSV_COLUMNS,
    export_csv,
    export_geojson,
    export_png,
    per_slide_paths,
    select_slides,
)
from cdfis_desktop.core.reporting.report import write_report

__all__ = [
    "CSV_COLUMNS",
    "PatchMeasurements",
    "downsample_for",
    "export_csv",
    "export_geojson",
    "export_png",
    "patch_measurements",
    "per_slide_paths",
    "resolve_run",
    "select_slides",
    "write_report",
]
