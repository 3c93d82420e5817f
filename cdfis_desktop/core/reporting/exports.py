"""Exports of a run: per-patch CSV, QuPath GeoJSON (one file per slide) and PNG overlays.

Output naming for per-slide exports (GeoJSON, PNG): ``out`` is either a folder (created if
missing; files are named after the slide file, ``<stem>.geojson`` or
``<stem>-<metric>-overlay.png`` ...) or a file-name pattern containing ``{slide}`` (the
slide file's stem) and/or ``{slide_id}``, e.g. ``exports/{slide}-run3.geojson``. Two slides
with the same stem get ``-<slide id>`` appended.

Every file is written atomically (temporary file in the same folder, then ``os.replace``).
Raises :class:`ExportError` when a file cannot be written and the store's errors for an
unknown run. Safe from any thread (reads only); ``cancel`` is checked between slides.
"""

from __future__ import annotations

import csv
import json
import math
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cdfis_desktop.core.class_names import label_name
from cdfis_desktop.core.datamaps.decisions import REVIEW_KEYS, review_properties
from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.heatmap import class_colors, legend_image
from cdfis_desktop.core.heatmap.metrics import measurement_metrics
from cdfis_desktop.core.heatmap.overlay import OverlayRequest, render_overlay
from cdfis_desktop.core.progress import CancelToken, Progress, ProgressCallback
from cdfis_desktop.core.reporting.data import (
    PatchMeasurements,
    patch_measurements,
)
from cdfis_desktop.core.reporting.files import atomic_output, ensure_folder
from cdfis_desktop.core.reporting.overlays import on_background, read_background
from cdfis_desktop.core.storage import Project, SlideRecord

MEASUREMENT_KEYS = tuple(m.key for m in measurement_metrics())

CSV_COLUMNS = (
    "patch_id",
    "slide_id",
    "slide",
    "l0_x",
    "l0_y",
    "l0_size",
    "patch_px",
    "mpp",
    "split",
    "label",
    "label_name",
    "prediction",
    "prediction_name",
    "source",
    *(f"review_{key}" for key in REVIEW_KEYS),
    *MEASUREMENT_KEYS,
)
"""Columns of :func:`export_csv`; empty cells where there is no value. ``review_*``: the
patch's review decision in force (see :func:`~cdfis_desktop.core.datamaps.decisions.
review_properties`)."""

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_GEOJSON_NAMESPACE = uuid.UUID("6f1c3e52-3a51-4a43-9c5e-2f0f5b8b7c11")


def export_csv(project: Project, run_id: int, path: str | os.PathLike[str]) -> int:
    """One row per patch of the project (all slides) with run ``run_id``'s values.

    Columns :data:`CSV_COLUMNS`: level-0 coordinates and size, label and prediction (index
    and class name), times scored, times chosen, favour, mean and last score, prediction
    probability. Slide and class names go through :func:`spreadsheet_text`. Returns the
    number of rows written.
    """
    table = patch_measurements(project, run_id)
    names = project.class_names()
    slides = {s.id: s.name for s in project.slides()}
    reviews = review_properties(project)
    patch_ids = table.patch_id.tolist()

    def class_name(label: int) -> str:
        return spreadsheet_text(label_name(names, label, unlabelled=""))

    def review_column(key: str) -> list[str]:
        if not reviews:
            return [""] * len(patch_ids)
        return [spreadsheet_text(str(reviews.get(p, {}).get(key, ""))) for p in patch_ids]

    # Column by column, each distinct value formatted once: a loop over rows indexing numpy
    # arrays took 26 s for 255,000 patches (benchmarks/slide_scale.py), this 8.5 s, half of
    # it the store query.
    columns = [
        patch_ids,
        table.slide_id.tolist(),
        _format_each(table.slide_id, lambda i: spreadsheet_text(slides[int(i)])),
        table.l0_x.tolist(),
        table.l0_y.tolist(),
        table.l0_size.tolist(),
        table.patch_px.tolist(),
        _format_each(table.mpp, _cell),
        [split or "" for split in table.split.tolist()],
        _format_each(table.label, lambda v: _class_cell(int(v))),
        _format_each(table.label, lambda v: class_name(int(v))),
        _format_each(table.prediction, lambda v: _class_cell(int(v))),
        _format_each(table.prediction, lambda v: class_name(int(v))),
        [spreadsheet_text(source or "") for source in table.source.tolist()],
        *(review_column(key) for key in REVIEW_KEYS),
        *(_format_each(table.values[m], _cell) for m in MEASUREMENT_KEYS),
    ]
    with atomic_output(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(zip(*columns, strict=True))
    return len(table)


def _format_each(values: np.ndarray, format_one: Callable[[Any], str]) -> list[str]:
    """``[format_one(v) for v in values]``, calling ``format_one`` once per distinct value
    (NaNs count as one)."""
    if len(values) == 0:
        return []
    unique, inverse = np.unique(values, return_inverse=True)
    cells = np.array([format_one(v) for v in unique.tolist()], dtype=object)
    return list(cells[inverse.ravel()])


def export_geojson(
    project: Project,
    run_id: int,
    out: str | os.PathLike[str],
    *,
    slide_ids: Sequence[int] | None = None,
    reviewed_only: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[Path]:
    """QuPath GeoJSON (v0.4+) of run ``run_id``: one FeatureCollection per slide (with
    ``reviewed_only``: only the patches with a review decision in force).

    Each patch is a Feature with a level-0 px square ``Polygon`` (origin top-left, closed
    ring), ``id`` (a UUID derived from the slide fingerprint and patch id, stable across
    exports) and ``properties``: ``objectType`` ``"tile"``, ``name`` ``"patch <id>"``,
    ``classification`` ``{"name", "color": [r, g, b]}`` from the patch label (absent when
    unlabelled) and ``measurements``: a flat name -> number object (patch id, prediction,
    and the registry's measurements; a value that does not exist is left out, since JSON
    has no NaN); ``source``, the patch-set image file, when there is one; ``review``, the
    review decision in force (decision, original and new label, reason, reviewer, time),
    whose label is then the classification (an excluded patch keeps its original one). In
    QuPath: File > Import objects, then Measure > Show measurement maps.
    Returns the files written.
    """
    slides = select_slides(project, slide_ids)
    targets = per_slide_paths(out, slides, ".geojson")
    names = project.class_names()
    colors = class_colors(max(len(names), 1))
    reviews = review_properties(project)
    written = []
    for done, slide in enumerate(slides):
        _check_cancel(cancel)
        table = patch_measurements(project, run_id, slide.id)
        collection = {
            "type": "FeatureCollection",
            "features": _features(table, slide, names, colors, reviews, reviewed_only),
        }
        with atomic_output(targets[slide.id]) as tmp:
            tmp.write_text(json.dumps(collection, allow_nan=False), encoding="utf-8")
        written.append(targets[slide.id])
        _report(progress, done + 1, len(slides), f"GeoJSON of {slide.name}")
    return written


def export_png(
    project: Project,
    run_id: int,
    out: str | os.PathLike[str],
    *,
    metric: str = "favour",
    downsample_of: dict[int, float],
    colormap: str | None = None,
    opacity: float = 0.5,
    view: dict[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[Path]:
    """Per slide: the overlay alone (RGBA, transparent where no value), the overlay over
    the slide, and the legend, as ``<stem>-<metric>-overlay.png``, ``-on-slide.png`` and
    ``-legend.png`` (with a pattern ``out``: the pattern's name plus those suffixes).

    ``downsample_of``: slide id -> level-0 px per output pixel (only these slides are
    exported; see ``core.heatmap.overlay.downsample_for``). ``colormap`` None: the
    metric's default. ``view``: further :class:`OverlayRequest` fields (``epoch``,
    ``compare``, ``compare_epoch``, ``compare_run``, ``value_range``, ``range_over``),
    so an export shows what the viewer shows; default: cumulative over the run. A view of
    one epoch adds ``-epoch<E>`` to the names. The layer is drawn by the overlay service,
    as in the GUI. Raises :class:`SlideOpenError` when a slide file cannot be read for the
    on-slide image, :class:`ConfigError` for an invalid ``view``.
    """
    view = dict(view or {})
    slides = select_slides(project, list(downsample_of))
    targets = per_slide_paths(out, slides, "")
    written: list[Path] = []
    label = metric if view.get("epoch") is None else f"{metric}-epoch{view['epoch']}"
    for done, slide in enumerate(slides):
        _check_cancel(cancel)
        downsample = downsample_of[slide.id]
        try:
            request = OverlayRequest(
                slide,
                run_id,
                metric,
                colormap=colormap,
                opacity=opacity,
                downsample=downsample,
                **view,
            )
        except TypeError as exc:
            raise ConfigError(f"unknown overlay view option: {exc}") from exc
        overlay = render_overlay(project, request)
        background = read_background(slide, downsample)
        stem = targets[slide.id]
        images = {
            f"-{label}-overlay.png": overlay.rgba,
            f"-{label}-on-slide.png": on_background(overlay.rgba, background),
            f"-{label}-legend.png": legend_image(overlay.legend, 480, 90),
        }
        for suffix, image in images.items():
            target = stem.with_name(stem.name + suffix)
            save_png(image, target)
            written.append(target)
        _report(progress, done + 1, len(slides), f"PNG of {slide.name}")
    return written


def save_png(image: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write ``uint8[h, w, 3 or 4]`` as PNG, atomically (ExportError if it cannot)."""
    from matplotlib.image import imsave

    with atomic_output(path) as tmp:
        imsave(tmp, image, format="png")


def per_slide_paths(
    out: str | os.PathLike[str], slides: Sequence[SlideRecord], suffix: str
) -> dict[int, Path]:
    """Output path per slide id for a folder or a ``{slide}``/``{slide_id}`` pattern (see
    the module docstring); creates the folders. ExportError if a folder cannot be made."""
    text = os.fspath(out)
    stems = [_file_stem(s) for s in slides]
    unique = {stem: stems.count(stem) == 1 for stem in stems}
    paths = {}
    for slide, stem in zip(slides, stems, strict=True):
        name = stem if unique[stem] else f"{stem}-{slide.id}"
        if "{slide" in text:
            try:
                path = Path(text.format(slide=name, slide_id=slide.id))
            except (KeyError, IndexError, ValueError) as exc:
                raise ConfigError(
                    f"output pattern {text!r} may only use {{slide}} and {{slide_id}}"
                ) from exc
            ensure_folder(path.parent)
        else:
            path = ensure_folder(text) / f"{name}{suffix}"
        paths[slide.id] = path
    if len(set(paths.values())) != len(paths):
        raise ConfigError(
            f"output pattern {text!r} gives two slides the same file; add {{slide_id}}"
        )
    return paths


def spreadsheet_text(text: str) -> str:
    """``text`` as a CSV cell a spreadsheet shows as text: a cell starting with ``=``,
    ``+``, ``-``, ``@``, a tab or a carriage return would be run as a formula by Excel,
    LibreOffice or Sheets (CSV injection), so it gets a leading apostrophe (OWASP)."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _file_stem(slide: SlideRecord) -> str:
    """The slide file's stem for output names; ``slide-<id>`` when the stored path has
    none or names a folder link (``..``, ``.``), so a path can never lead out of the
    output folder."""
    stem = slide.file.stem
    return stem if stem not in ("", ".", "..") else f"slide-{slide.id}"


def select_slides(project: Project, slide_ids: Sequence[int] | None) -> list[SlideRecord]:
    """The project's slides with these ids (None: all), in the order given; ConfigError
    naming the first unknown id."""
    slides = project.slides()
    if slide_ids is None:
        return slides
    by_id = {s.id: s for s in slides}
    missing = [i for i in slide_ids if i not in by_id]
    if missing:
        raise ConfigError(
            f"no slide with id {missing[0]} in {project.folder}; its slides are: "
            f"{', '.join(str(i) for i in by_id) or 'none'}"
        )
    return [by_id[i] for i in slide_ids]


def _features(
    table: PatchMeasurements,
    slide: SlideRecord,
    names: list[str],
    colors: np.ndarray,
    reviews: dict[int, dict[str, object]],
    reviewed_only: bool,
) -> list[dict[str, object]]:
    """The GeoJSON features of ``table``'s patches (see :func:`export_geojson`); the columns
    are turned into Python lists once (indexing numpy per patch was most of the time)."""
    measured = {name: table.values[name].tolist() for name in MEASUREMENT_KEYS}
    classification: dict[int, dict[str, object]] = {}  # label -> its (shared) classification
    features: list[dict[str, object]] = []
    for row, (patch_id, x, y, size, label, prediction, source) in enumerate(
        zip(
            table.patch_id.tolist(),
            table.l0_x.tolist(),
            table.l0_y.tolist(),
            table.l0_size.tolist(),
            table.label.tolist(),
            table.prediction.tolist(),
            table.source.tolist(),
            strict=True,
        )
    ):
        review = reviews.get(patch_id)
        if reviewed_only and review is None:
            continue
        measurements: dict[str, float] = {"patch_id": patch_id}
        if prediction >= 0:
            measurements["prediction"] = prediction
        for name in MEASUREMENT_KEYS:
            value = measured[name][row]
            if math.isfinite(value):
                measurements[name] = value
        properties: dict[str, object] = {"objectType": "tile", "name": f"patch {patch_id}"}
        if review is not None and review["decision"] == "relabel":
            label = int(review["label_id"])  # type: ignore[call-overload]
        if label >= 0:
            if label not in classification:
                color = [int(c) for c in colors[label % len(colors)]]
                classification[label] = {"name": label_name(names, label), "color": color}
            properties["classification"] = classification[label]
        properties["measurements"] = measurements
        if source:
            properties["source"] = source
        if review is not None:
            properties["review"] = review
        features.append(
            {
                "type": "Feature",
                "id": str(uuid.uuid5(_GEOJSON_NAMESPACE, f"{slide.fingerprint}/{patch_id}")),
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]
                    ],
                },
                "properties": properties,
            }
        )
    return features


def _class_cell(label: int) -> str:
    return "" if label < 0 else str(label)


def _cell(value: float) -> str:
    value = float(value)
    if not math.isfinite(value):
        return ""
    return str(int(value)) if value.is_integer() else f"{value:.6g}"


def _check_cancel(cancel: CancelToken | None) -> None:
    if cancel is not None:
        cancel.raise_if_cancelled()


def _report(progress: ProgressCallback | None, done: int, total: int, message: str) -> None:
    if progress is not None:
        progress(Progress(done, total, message))
