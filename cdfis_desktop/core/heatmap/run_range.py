"""The automatic value range of an epoch view taken over every epoch of the run
(``range_over="run"``), cached so that scrubbing the time slider reads only the epoch shown.

Computing the range reads the slide's values at every epoch of the run (one aggregate row
per epoch; at 50,000 patches x 10 epochs about 0.17 s CPU per overlay). :func:`run_range`
keeps each result per :class:`~cdfis_desktop.core.storage.Project` object (weakly: the
cache goes with the project) under ``(run, slide, metric, diverging colormap or not)``,
tagged with the run's revision, ``RunSummary.steps`` (the last step written): a live run
that writes history moves it, so the next request recomputes. :func:`compute_run_range`
is the uncached computation.

Thread rules: any thread (a lock guards the cache; two threads missing at once both
compute the same range). A result computed while the run wrote more history is stored
under the revision read before computing, so it is recomputed at the next request.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

import numpy as np

from cdfis_desktop.core.heatmap.colormaps import is_diverging
from cdfis_desktop.core.heatmap.metrics import Metric
from cdfis_desktop.core.heatmap.ranges import ValueRange, resolve_range

if TYPE_CHECKING:
    from cdfis_desktop.core.storage import Project

_Key = tuple[int, int, str, bool]
_CACHE: WeakKeyDictionary[Project, dict[_Key, tuple[int | None, ValueRange]]] = WeakKeyDictionary()
_LOCK = threading.Lock()


def compute_run_range(
    project: Project, run_id: int, slide_id: int, entry: Metric, colormap: str
) -> ValueRange:
    """The automatic range (:func:`~.ranges.resolve_range`) of ``entry``'s values of
    ``slide_id`` at every epoch of run ``run_id``, each epoch counted once."""
    per_epoch = [
        entry.values(project.slide_measurements(run_id, slide_id, epoch))
        for epoch in project.epochs(run_id)
    ]
    values = np.concatenate(per_epoch) if per_epoch else np.empty(0, np.float32)
    return resolve_range(values, None, colormap)


def run_range(
    project: Project, run_id: int, slide_id: int, entry: Metric, colormap: str
) -> ValueRange:
    """:func:`compute_run_range`, from the cache while the run has written no new step."""
    revision = project.run(run_id).steps
    key = (run_id, slide_id, entry.key, is_diverging(colormap))
    with _LOCK:
        cached = _CACHE.get(project, {}).get(key)
    if cached is not None and cached[0] == revision:
        return cached[1]
    found = compute_run_range(project, run_id, slide_id, entry, colormap)
    with _LOCK:
        _CACHE.setdefault(project, {})[key] = (revision, found)
    return found
