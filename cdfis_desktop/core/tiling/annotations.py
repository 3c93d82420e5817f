"""Annotation files -> shapely geometries per class, in level-0 pixel coordinates.

Two formats are read:

- **QuPath GeoJSON** (v0.2+): a ``FeatureCollection``, a single ``Feature``, a bare list of
  features (older QuPath exports) or a bare geometry. Geometries may be ``Polygon`` (with
  holes), ``MultiPolygon`` or ``GeometryCollection``; points and lines cover no area and are
  skipped (and counted in :attr:`Annotations.notes`). The class is
  ``properties.classification.name`` (older exports: ``properties.classification`` as a
  string, or ``properties.name``); a feature without one is class ``"Unclassified"``.
- **Camelyon16 / ASAP XML**: ``ASAP_Annotations/Annotations/Annotation`` with
  ``Coordinates/Coordinate`` elements carrying ``X``/``Y`` (level-0 px) and the class in the
  annotation's ``PartOfGroup`` attribute. Coordinates are sorted by their ``Order``
  attribute when present. ``Type="Dot"``/``"PointSet"`` annotations are skipped.
  ``Type="Spline"`` annotations are read as polygons through their control points, as ASAP's
  own ``AnnotationToMask`` (which drew the Camelyon16 reference masks) does; their points
  are dense (a median of 3-13 px apart in the Camelyon16 files, 5-15 µm), so a smooth curve
  through them would differ by far less than a patch. Camelyon16 groups become classes
  (``metastasis`` -> ``Tumor``, ``negative`` regions cut out of it; see ``camelyon.py``).

Invalid geometry (self-intersections, bow ties, unclosed rings) is **repaired** with
``shapely.make_valid`` and the repair is reported in :attr:`Annotations.notes` (the caller
shows the notes as warnings); a polygon that has no area even after repair is dropped with a
note. A file that yields no polygon at all raises :class:`AnnotationError`.

Limits (file size, vertices, nesting, non-finite coordinates, and the time the repair may
take, in a child process when it may be long) are in :mod:`.annotation_limits`.

Coordinates are level-0 px with the origin at the top-left of the slide.
:func:`check_annotation_bounds` rejects files whose polygons all lie outside the slide or
look normalised to 0..1 (wrong scale).
"""

from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from cdfis_desktop.core.errors import AnnotationError
from cdfis_desktop.core.inputs import special_file_kind
from cdfis_desktop.core.progress import Progress, ProgressCallback
from cdfis_desktop.core.tiling.annotation_limits import (
    build_within_limits,
    check_file_size,
    too_deep,
)
from cdfis_desktop.core.tiling.camelyon import camelyon_classes

UNCLASSIFIED = "Unclassified"
GEOJSON_SUFFIXES = (".geojson", ".json")
XML_SUFFIXES = (".xml",)


@dataclass(frozen=True)
class Annotations:
    """Polygons of one annotation file, merged per class.

    ``geometries`` maps class name -> one (multi)polygon, the union of that class's
    polygons in level-0 px (so overlapping polygons of one class are not counted twice).
    ``notes`` are human-readable remarks about repairs and skipped shapes.
    """

    path: Path
    geometries: dict[str, BaseGeometry]
    polygon_count: int
    notes: tuple[str, ...] = ()

    @property
    def class_names(self) -> list[str]:
        return sorted(self.geometries)

    def bounds(self) -> tuple[float, float, float, float]:
        """(min_x, min_y, max_x, max_y) of all polygons, level-0 px."""
        return tuple(shapely.union_all(list(self.geometries.values())).bounds)


def load_annotations(path: str | Path, *, progress: ProgressCallback | None = None) -> Annotations:
    """Read a QuPath GeoJSON or ASAP XML file (chosen by suffix, else by content).

    ``progress`` gets updates while the shapes are repaired and merged (at most about one
    a second). Raises :class:`AnnotationError` for a missing file, a folder, an empty or
    unparsable file, a file with no polygon, and past the limits of
    :mod:`.annotation_limits` (size, nesting, non-finite coordinates, repair time).
    """
    path = Path(path)
    text = _read_text(path)
    try:
        with np.errstate(invalid="ignore"):  # NaN coordinates are refused below, quietly
            raw, notes = _parse(path, text)
    except RecursionError:
        raise too_deep(path) from None
    annotations: Annotations = build_within_limits(_build, path, raw, notes, progress)
    return _with_camelyon_classes(annotations) if _is_xml(path, text) else annotations


def _is_xml(path: Path, text: str) -> bool:
    """ASAP XML by suffix, or by content when the suffix is neither XML nor GeoJSON."""
    suffix = path.suffix.lower()
    return suffix in XML_SUFFIXES or (
        suffix not in GEOJSON_SUFFIXES and text.lstrip().startswith("<")
    )


def _parse(path: Path, text: str) -> tuple[list[tuple[str, BaseGeometry]], list[str]]:
    if _is_xml(path, text):
        return _parse_asap_xml(path, text)
    if path.suffix.lower() in GEOJSON_SUFFIXES or text.lstrip()[:1] in "{[":
        return _parse_geojson(path, text)
    raise AnnotationError(
        f"{path}: unknown annotation format; give a QuPath GeoJSON (.geojson) or an "
        "ASAP/Camelyon16 XML (.xml) file"
    )


def check_annotation_bounds(annotations: Annotations, l0_width: int, l0_height: int) -> None:
    """Raise :class:`AnnotationError` when the polygons cannot belong to a slide of
    ``l0_width`` x ``l0_height`` level-0 px: all of them outside it, or all inside the unit
    square on a large slide (coordinates normalised to 0..1 instead of pixels)."""
    min_x, min_y, max_x, max_y = annotations.bounds()
    if max_x <= 1.0 and max_y <= 1.0 and min(l0_width, l0_height) > 16:
        raise AnnotationError(
            f"{annotations.path}: all coordinates lie between 0 and 1, but the slide is "
            f"{l0_width} x {l0_height} px; the annotations look normalised. Export them in "
            "level-0 pixel coordinates (QuPath: File > Export objects as GeoJSON) or multiply "
            "them by the slide size"
        )
    slide_box = shapely.box(0, 0, l0_width, l0_height)
    if not any(g.intersects(slide_box) for g in annotations.geometries.values()):
        raise AnnotationError(
            f"{annotations.path}: every polygon lies outside the slide (annotations span "
            f"x {min_x:.0f}..{max_x:.0f}, y {min_y:.0f}..{max_y:.0f}; the slide is "
            f"{l0_width} x {l0_height} level-0 px). Is this the file for this slide, and are "
            "the coordinates level-0 pixels (not a lower level or microns)?"
        )


ANNOTATIONS_FOLDER = "annotations"
"""Folder of a project where each imported slide's annotation file is kept."""


def keep_annotations(project_folder: Path, slide_id: int, source: Path) -> Path:
    """Copy the annotation file ``source`` of slide ``slide_id`` into the project, as
    ``annotations/slide-<id><suffix>`` (atomically), so the viewer can outline it later
    even if the original moves. Returns the copy's path."""
    folder = Path(project_folder) / ANNOTATIONS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"slide-{slide_id}{source.suffix.lower()}"
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)
    return target


def slide_annotations_path(project_folder: Path, slide_id: int, slide_path: Path) -> Path | None:
    """The annotation file of a slide: the copy kept at import (:func:`keep_annotations`),
    else a file beside the slide named after it (``a.svs`` -> ``a.geojson``, ``a.json``,
    ``a.xml``, ``a.svs.geojson``; projects imported before copies were kept); None."""
    kept = sorted((Path(project_folder) / ANNOTATIONS_FOLDER).glob(f"slide-{slide_id}.*"))
    if kept:
        return kept[0]
    slide_path = Path(slide_path)
    for suffix in GEOJSON_SUFFIXES + XML_SUFFIXES:
        for candidate in (slide_path.with_suffix(suffix), Path(f"{slide_path}{suffix}")):
            if candidate.is_file():
                return candidate
    return None


def _read_text(path: Path) -> str:
    if not path.exists():
        raise AnnotationError(f"{path}: no such annotation file")
    if path.is_dir():
        raise AnnotationError(f"{path}: is a folder; give the annotation file inside it")
    special = special_file_kind(path)
    if special is not None:
        raise AnnotationError(f"{path}: is {special}, not an annotation file")
    check_file_size(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AnnotationError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not data.strip():
        raise AnnotationError(f"{path}: the annotation file is empty; export it again")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise AnnotationError(
            f"{path}: is not a text file; give a QuPath GeoJSON or ASAP XML annotation file"
        ) from None


# -- GeoJSON --------------------------------------------------------------------------


def _parse_geojson(path: Path, text: str) -> tuple[list[tuple[str, BaseGeometry]], list[str]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnnotationError(
            f"{path}: is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    notes: list[str] = []
    raw: list[tuple[str, BaseGeometry]] = []
    for number, (name, geometry) in enumerate(_iter_features(path, data), start=1):
        if geometry is None:
            notes.append(f"feature {number} has no geometry; skipped")
            continue
        try:
            shape = shapely.geometry.shape(geometry)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
            raise AnnotationError(
                f"{path}: feature {number} has an unreadable geometry ({exc}); fix or delete it"
            ) from None
        raw.append((name, shape))
    return raw, notes


def _iter_features(path: Path, data: Any) -> Iterator[tuple[str, dict[str, Any] | None]]:
    if isinstance(data, list):
        for item in data:
            yield from _iter_features(path, item)
        return
    if not isinstance(data, dict):
        raise AnnotationError(
            f"{path}: expected a GeoJSON object or list, found {type(data).__name__}"
        )
    kind = data.get("type")
    if kind == "FeatureCollection":
        features = data.get("features")
        if not isinstance(features, list):
            raise AnnotationError(f"{path}: the FeatureCollection has no 'features' list")
        for feature in features:
            yield from _iter_features(path, feature)
    elif kind == "Feature":
        yield _class_name(data.get("properties")), data.get("geometry")
    elif kind in (
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
    ):
        yield UNCLASSIFIED, data
    else:
        raise AnnotationError(
            f"{path}: unknown GeoJSON type {kind!r}; expected a FeatureCollection or Feature"
        )


def _class_name(properties: Any) -> str:
    if not isinstance(properties, dict):
        return UNCLASSIFIED
    classification = properties.get("classification")
    if isinstance(classification, dict) and classification.get("name"):
        return str(classification["name"])
    if isinstance(classification, str) and classification:
        return classification
    name = properties.get("name")
    return str(name) if name else UNCLASSIFIED


# -- ASAP XML ---------------------------------------------------------------------------


def _parse_asap_xml(path: Path, text: str) -> tuple[list[tuple[str, BaseGeometry]], list[str]]:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise AnnotationError(f"{path}: is not valid XML ({exc})") from None
    if root.tag != "ASAP_Annotations":
        raise AnnotationError(
            f"{path}: the XML root is <{root.tag}>, not <ASAP_Annotations>; give an "
            "ASAP/Camelyon16 annotation file"
        )
    notes: list[str] = []
    raw: list[tuple[str, BaseGeometry]] = []
    for number, element in enumerate(root.iter("Annotation"), start=1):
        kind = (element.get("Type") or "Polygon").lower()
        if kind in ("dot", "pointset"):
            notes.append(f"annotation {number} is a {element.get('Type')}; points skipped")
            continue
        name = element.get("PartOfGroup") or UNCLASSIFIED
        if name == "None":
            name = UNCLASSIFIED
        points = _coordinates(path, number, element.iter("Coordinate"))
        if len(points) < 3:
            notes.append(f"annotation {number} has {len(points)} point(s); skipped")
            continue
        if kind == "rectangle" and len(points) == 2:
            (x0, y0), (x1, y1) = points
            raw.append((name, shapely.box(x0, y0, x1, y1)))
        else:
            raw.append((name, shapely.Polygon(points)))
    return raw, notes


def _coordinates(
    path: Path, number: int, elements: Iterable[ET.Element]
) -> list[tuple[float, float]]:
    ordered: list[tuple[float, float, float]] = []
    for position, coord in enumerate(elements):
        try:
            x = float(coord.attrib["X"].replace(",", "."))
            y = float(coord.attrib["Y"].replace(",", "."))
            order = float(coord.get("Order", position))
        except (KeyError, ValueError):
            raise AnnotationError(
                f"{path}: annotation {number} has a Coordinate without numeric X and Y "
                f"({dict(coord.attrib)}); fix the file"
            ) from None
        ordered.append((order, x, y))
    ordered.sort()
    return [(x, y) for _, x, y in ordered]


def _with_camelyon_classes(annotations: Annotations) -> Annotations:
    """``annotations`` with Camelyon16 groups mapped to classes (see ``camelyon.py``)."""
    classes, notes = camelyon_classes(annotations.path, annotations.geometries)
    # a difference can leave stray lines beside the polygons: keep the area only
    geometries = {name: part for name, g in classes.items() if (part := _area_part(g)) is not None}
    return replace(annotations, geometries=geometries, notes=annotations.notes + tuple(notes))


# -- merging and repair -----------------------------------------------------------------


def _build(
    path: Path,
    raw: list[tuple[str, BaseGeometry]],
    notes: list[str],
    progress: ProgressCallback | None = None,
) -> Annotations:
    per_class: dict[str, list[BaseGeometry]] = {}
    skipped_non_area = 0
    count = 0
    steps = len(raw) + 1  # every shape, then the merge
    for number, (name, shape) in enumerate(raw, start=1):
        if progress is not None:
            progress(Progress(number - 1, steps, f"{path.name}: checking shape {number}"))
        polygons = _area_part(shape)
        if polygons is None:
            skipped_non_area += 1
            continue
        if not polygons.is_valid:
            reason = shapely.is_valid_reason(polygons)
            polygons = _area_part(shapely.make_valid(polygons))
            if polygons is None:
                notes.append(
                    f"shape {number} ({name}) is invalid ({reason}) and has no area; dropped"
                )
                continue
            notes.append(f"shape {number} ({name}) was invalid ({reason}); repaired")
        if polygons.is_empty or polygons.area <= 0:
            notes.append(f"shape {number} ({name}) has no area; dropped")
            continue
        per_class.setdefault(name, []).append(polygons)
        count += 1
    if skipped_non_area:
        notes.append(f"{skipped_non_area} point/line shape(s) cover no area; skipped")
    if not per_class:
        raise AnnotationError(
            f"{path}: contains no polygon with an area; annotate regions (polygons, "
            "rectangles, brush areas), not points or lines"
        )
    if progress is not None:
        progress(Progress(len(raw), steps, f"{path.name}: merging {count} polygons"))
    geometries = {name: shapely.union_all(parts) for name, parts in per_class.items()}
    if progress is not None:
        progress(Progress(steps, steps, f"{path.name}: {count} polygons read"))
    return Annotations(path=path, geometries=geometries, polygon_count=count, notes=tuple(notes))


def _area_part(shape: BaseGeometry) -> BaseGeometry | None:
    """The polygonal part of ``shape`` (a Polygon or MultiPolygon), or None if it has none."""
    if shape.is_empty:
        return None
    if shape.geom_type in ("Polygon", "MultiPolygon"):
        return shape
    if shape.geom_type == "GeometryCollection":
        parts = [p for g in shape.geoms if (p := _area_part(g)) is not None]
        if not parts:
            return None
        polygons = [q for p in parts for q in getattr(p, "geoms", [p])]
        return shapely.MultiPolygon(polygons) if len(polygons) > 1 else polygons[0]
    return None
