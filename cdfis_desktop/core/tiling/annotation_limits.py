"""Limits on annotation files: size, nesting, coordinates, and the time their repair takes.

An annotation file is user input of any size and shape, and its geometry work is the one
step whose cost does not follow the file size: ``shapely.make_valid`` on one 200-vertex
polygon that crosses itself everywhere takes ~17 s, and 2 MB of such polygons took 105 s;
GEOS cannot be interrupted from Python. So:

- **size**: a file over :data:`MAX_BYTES` (environment ``CDFIS_ANNOTATION_MAX_BYTES``) is
  refused before it is read; one with more than :data:`MAX_VERTICES` vertices
  (``CDFIS_ANNOTATION_MAX_VERTICES``) before any geometry work;
- **nesting**: JSON nested deeper than Python can follow is an :class:`AnnotationError`,
  not a ``RecursionError``;
- **coordinates**: NaN or infinite coordinates (``NaN`` in GeoJSON, ``X="nan"`` in XML)
  are refused, naming the shape;
- **time**: repairing and merging run in this process only when the work is small for
  sure (:func:`is_small_work`: at most :data:`INLINE_VERTICES` vertices and few
  self-crossings to repair); otherwise in a child process that reports progress through a pipe and is killed
  after :data:`TIMEOUT_S` seconds (``CDFIS_ANNOTATION_TIMEOUT_S``), which raises an
  AnnotationError naming the limit and how to raise it.

Every limit's error names the environment variable that raises it. Thread rules: any
thread; :func:`build_within_limits` blocks the calling thread while the child works and
calls ``progress`` from it.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
import traceback
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import shapely.errors
from shapely.geometry.base import BaseGeometry

from cdfis_desktop.core.errors import AnnotationError
from cdfis_desktop.core.progress import Progress, ProgressCallback

MAX_BYTES = 1 << 29
"""512 MiB: the largest annotation file read."""
MAX_VERTICES = 20_000_000
"""Vertices of all shapes of one file (about 320 MB of coordinates)."""
TIMEOUT_S = 120.0
"""Seconds repairing and merging one file's shapes may take."""
INLINE_VERTICES = 20_000
"""Up to this many vertices, and :data:`INLINE_REPAIR_WORK`, the work runs in-process."""
INLINE_REPAIR_WORK = 600**2
"""Sum over invalid shapes of (ring segments after splitting at every crossing)²: a
repair's cost grows a little faster than that square (measured: 69 segments 13 ms, 329
segments 0.09 s, 2,285 segments 2 s), so this bound is about 0.25 s of repair. A shape
with a few crossings stays well under it; one that crosses itself everywhere does not."""
NODE_CHECK_VERTICES = 300
"""Invalid shapes with more vertices go to the child without counting their crossings
(counting a 300-vertex shape that crosses itself everywhere takes ~0.2 s)."""
_COLLECTION = 7  # shapely type id of a GeometryCollection
PROGRESS_EVERY_S = 1.0
"""Shortest time between two progress reports (the first and the last always go out)."""

BuildFn = Callable[[Path, list[tuple[str, BaseGeometry]], list[str], ProgressCallback | None], Any]
"""``build(path, shapes, notes, progress) -> Annotations``: the repair-and-merge step."""


def limit(name: str, default: float) -> float:
    """The limit in environment variable ``name`` (a positive number), else ``default``.
    Raises AnnotationError for a malformed value."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise AnnotationError(f"{name}={text!r} is not a positive number")
    return value


def check_file_size(path: Path) -> None:
    """Refuse a file larger than the byte limit before reading it."""
    allowed = limit("CDFIS_ANNOTATION_MAX_BYTES", MAX_BYTES)
    try:
        size = path.stat().st_size
    except OSError:
        return  # the reader reports it
    if size > allowed:
        raise AnnotationError(
            f"{path}: {_amount(size)} is more than the {_amount(allowed)} an annotation file "
            "may have; export only the regions you need, or raise the limit "
            "with the environment variable CDFIS_ANNOTATION_MAX_BYTES=<bytes>"
        )


def _amount(nbytes: float) -> str:
    return f"{nbytes / 2**20:,.0f} MiB" if nbytes >= 2**20 else f"{nbytes:,.0f} bytes"


def too_deep(path: Path) -> AnnotationError:
    """The error for input nested deeper than the parser can follow (RecursionError)."""
    return AnnotationError(
        f"{path}: is nested too deeply to be an annotation file (lists or collections inside "
        "each other thousands of levels deep); export it again from QuPath or ASAP"
    )


def check_shapes(path: Path, shapes: list[tuple[str, BaseGeometry]]) -> int:
    """Refuse shapes with non-finite coordinates (naming the first, numbered from 1 as in
    the notes) or more vertices in all than the vertex limit; returns the vertex count."""
    allowed = int(limit("CDFIS_ANNOTATION_MAX_VERTICES", MAX_VERTICES))
    total = 0
    for number, (name, shape) in enumerate(shapes, start=1):
        total += int(shapely.get_num_coordinates(shape))
        if total > allowed:
            raise AnnotationError(
                f"{path}: has more than {allowed:,} vertices (at shape {number}); simplify the "
                "annotations, or raise the limit with the environment variable "
                "CDFIS_ANNOTATION_MAX_VERTICES=<vertices>"
            )
        if not np.isfinite(shapely.get_coordinates(shape)).all():
            raise AnnotationError(
                f"{path}: shape {number} ({name}) has a coordinate that is not a finite number "
                "(NaN or infinity); fix or delete that shape"
            )
    return total


def is_small_work(shapes: list[tuple[str, BaseGeometry]], vertices: int) -> bool:
    """Whether repairing and merging ``shapes`` is surely quick (see the module docstring):
    at most :data:`INLINE_VERTICES` vertices, and the invalid shapes small enough to count
    their self-crossings (noding their rings, which costs about 1/100 of the repair) and
    few enough crossings (:data:`INLINE_REPAIR_WORK`)."""
    if vertices > INLINE_VERTICES:
        return False
    work = 0
    for _, shape in shapes:
        if shape.is_valid:
            continue
        if shapely.get_num_coordinates(shape) > NODE_CHECK_VERTICES:
            return False
        parts = shapely.get_parts(shapely.get_parts(shape))
        if (shapely.get_type_id(parts) == _COLLECTION).any():
            return False  # nested deeper than a count is worth: let the child do it
        rings = shapely.get_rings(parts)
        if rings.size:
            noded = shapely.node(shapely.multilinestrings(rings))
            work += int(shapely.get_num_geometries(noded)) ** 2
        if work > INLINE_REPAIR_WORK:
            return False
    return True


def build_within_limits(
    build: BuildFn,
    path: Path,
    shapes: list[tuple[str, BaseGeometry]],
    notes: list[str],
    progress: ProgressCallback | None,
) -> Any:
    """``build(path, shapes, notes, progress)``: in this process when the work is small,
    else in a child process killed after the time limit (AnnotationError)."""
    vertices = check_shapes(path, shapes)
    if not is_small_work(shapes, vertices):
        return _build_in_child(build, path, shapes, notes, progress, vertices)
    try:
        return build(path, shapes, notes, throttled(progress))
    except shapely.errors.GEOSException as exc:
        raise geometry_error(path, exc) from None


def geometry_error(path: Path, exc: Exception) -> AnnotationError:
    """GEOS refusing the input (e.g. a topology conflict in nearly degenerate shapes)."""
    return AnnotationError(
        f"{path}: its shapes cannot be repaired and merged ({exc}); fix or simplify them"
    )


def throttled(progress: ProgressCallback | None) -> ProgressCallback | None:
    """``progress`` passed at most every :data:`PROGRESS_EVERY_S` (first and last always)."""
    if progress is None:
        return None
    last = [float("-inf")]

    def report(update: Progress) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S or update.done >= update.total:
            last[0] = now
            progress(update)

    return report


def _build_in_child(
    build: BuildFn,
    path: Path,
    shapes: list[tuple[str, BaseGeometry]],
    notes: list[str],
    progress: ProgressCallback | None,
    vertices: int,
) -> Any:
    timeout_s = limit("CDFIS_ANNOTATION_TIMEOUT_S", TIMEOUT_S)
    context = multiprocessing.get_context("spawn")  # no fork of a threaded process
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_child_main, args=(sender, build, path, shapes, notes), daemon=True
    )
    with _main_script_hidden():
        child.start()
    sender.close()
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AnnotationError(
                    f"{path}: repairing and merging its {len(shapes):,} shapes ({vertices:,} "
                    f"vertices) took longer than the limit of {timeout_s:g} s; the shapes "
                    "probably cross themselves many times. Fix or simplify them (QuPath: "
                    "Objects > Simplify shape), or raise the limit with the environment "
                    "variable CDFIS_ANNOTATION_TIMEOUT_S=<seconds>"
                )
            if not receiver.poll(min(remaining, 0.25)):
                if not child.is_alive() and not receiver.poll():
                    raise AnnotationError(
                        f"{path}: repairing its shapes stopped (exit code {child.exitcode}, "
                        "out of memory?); simplify the annotations and try again"
                    )
                continue
            try:
                kind, payload = receiver.recv()
            except EOFError:
                continue  # the child exited: reported by the check above
            if kind == "progress" and progress is not None:
                progress(Progress(*payload))
            elif kind == "done":
                return payload
            elif kind == "error":
                raise AnnotationError(payload)
            elif kind == "crash":  # a bug, not the file: keep the child's traceback
                raise RuntimeError(f"repairing {path} failed in a child process:\n{payload}")
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join()


@contextmanager
def _main_script_hidden() -> Iterator[None]:
    """A spawned child first re-runs the parent's main script (as ``__mp_main__``), which
    repeats a script's work, or recurses, unless its code sits under ``if __name__ ==
    "__main__"``. This child needs nothing from it, so the main module is swapped for an
    empty one while the child starts (a few milliseconds)."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _child_main(
    sender: Connection,
    build: BuildFn,
    path: Path,
    shapes: list[tuple[str, BaseGeometry]],
    notes: list[str],
) -> None:
    """In the child: build, sending ("progress", (done, total, message)) updates and then
    ("done", result), ("error", message) or ("crash", traceback)."""

    def report(update: Progress) -> None:
        sender.send(("progress", (update.done, update.total, update.message)))

    try:
        result = build(path, shapes, notes, throttled(report))
    except AnnotationError as exc:
        sender.send(("error", str(exc)))
    except shapely.errors.GEOSException as exc:
        sender.send(("error", str(geometry_error(path, exc))))
    except Exception:
        sender.send(("crash", traceback.format_exc()))
    else:
        sender.send(("done", result))
    sender.close()
