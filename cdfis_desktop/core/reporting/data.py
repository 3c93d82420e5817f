"""What reports and exports read from the store: the run asked for, and per-patch values.

:func:`resolve_run` turns the user's ``ID`` or ``last`` into a run summary with a clear
error when there is none. :func:`patch_measurements` joins a run's per-patch aggregates
(cumulative over all epochs), its latest predictions and the patches' labels into one
table, so the CSV, the GeoJSON and the report show the same numbers.

Read-only; safe from any thread while the training thread writes (the store's queries
see the last committed batch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cdfis_desktop.core.errors import ConfigError, StoreError
from cdfis_desktop.core.heatmap.metrics import measurement_metrics
from cdfis_desktop.core.storage import Project, RunSummary


@dataclass(frozen=True)
class PatchMeasurements:
    """Every patch (of one slide or of the project), ordered by patch id, with a run's values.

    ``patch_id``, ``slide_id``, ``l0_x``, ``l0_y``, ``l0_size``: int64[n] (level-0 px,
    top-left corner); ``patch_px`` int64[n] and ``mpp`` float64[n] (the patch at its
    resolution); ``label`` and ``prediction``: int64[n] (-1 = none); ``split``: object[n]
    (str or None); ``source``: object[n] (the patch-set image file, or None);
    ``values[key]`` float64[n] for each of the registry's ``measurement_metrics()``
    (counts are 0 for patches the run never scored; the rest NaN where there is no value).
    """

    patch_id: np.ndarray
    slide_id: np.ndarray
    l0_x: np.ndarray
    l0_y: np.ndarray
    l0_size: np.ndarray
    patch_px: np.ndarray
    mpp: np.ndarray
    label: np.ndarray
    prediction: np.ndarray
    split: np.ndarray
    source: np.ndarray
    values: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.patch_id.shape[0])

    def index_of(self, patch_id: int) -> int:
        """Row of ``patch_id``; :class:`StoreError` when the table does not hold it."""
        row = int(np.searchsorted(self.patch_id, patch_id))
        if row >= len(self) or self.patch_id[row] != patch_id:
            raise StoreError(f"patch {patch_id} is not in this table")
        return row


def resolve_run(project: Project, run: str | int) -> RunSummary:
    """The run named by ``run``: its id, or ``"last"`` for the newest run.

    Raises :class:`StoreError` when the project has no runs or no run with that id (the
    message lists the ids there are), :class:`ConfigError` when ``run`` is neither.
    """
    runs = project.runs()
    if not runs:
        raise StoreError(
            f"the project {project.folder} has no runs yet; train one first (cdfis train)"
        )
    if isinstance(run, str) and run.strip().lower() == "last":
        return runs[0]
    try:
        run_id = int(run)
    except (TypeError, ValueError):
        raise ConfigError(f"run must be a run id or 'last' (got {run!r})") from None
    for summary in runs:
        if summary.id == run_id:
            return summary
    known = ", ".join(str(s.id) for s in sorted(runs, key=lambda s: s.id))
    raise StoreError(
        f"the project {project.folder} has no run {run_id}; its runs are: {known} (see cdfis runs)"
    )


def patch_measurements(
    project: Project, run_id: int, slide_id: int | None = None
) -> PatchMeasurements:
    """Patches of ``slide_id`` (None: of every slide) with run ``run_id``'s values."""
    slide_ids = [s.id for s in project.slides()] if slide_id is None else [slide_id]
    parts = [_slide_measurements(project, run_id, sid) for sid in slide_ids]
    if not parts:
        return _slide_measurements(project, run_id, -1)
    fields = (
        "patch_id",
        "slide_id",
        "l0_x",
        "l0_y",
        "l0_size",
        "patch_px",
        "mpp",
        "label",
        "prediction",
        "split",
        "source",
    )
    joined = {name: np.concatenate([getattr(p, name) for p in parts]) for name in fields}
    values = {name: np.concatenate([p.values[name] for p in parts]) for name in parts[0].values}
    order = np.argsort(joined["patch_id"], kind="stable")
    return PatchMeasurements(
        **{name: column[order] for name, column in joined.items()},
        values={name: column[order] for name, column in values.items()},
    )


def _slide_measurements(project: Project, run_id: int, slide_id: int) -> PatchMeasurements:
    patches = project.patches(slide_id=slide_id)
    measured = project.slide_measurements(run_id, slide_id)
    if not np.array_equal(measured.patch_id, patches.id):
        raise StoreError(f"the patches of slide {slide_id} changed while reading them; retry")
    values = {}
    for entry in measurement_metrics():
        value = entry.values(measured)
        # a count is 0, not missing, for a patch the run never looked at
        values[entry.key] = np.nan_to_num(value, nan=0.0) if entry.kind == "count" else value
    return PatchMeasurements(
        patch_id=patches.id,
        slide_id=patches.slide_id,
        l0_x=patches.l0_x,
        l0_y=patches.l0_y,
        l0_size=patches.l0_size,
        patch_px=patches.patch_px.astype(np.int64),
        mpp=patches.mpp.astype(np.float64),
        label=patches.label.astype(np.int64),
        prediction=measured.prediction,
        split=patches.split,
        source=patches.source,
        values=values,
    )
