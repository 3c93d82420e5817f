"""Read queries used by the GUI, the CLI and reports. Each returns immutable values.

All functions only read and are safe from any thread while the training thread writes
(WAL: they see the last committed history batch). Heatmaps and patch rankings read the
per-epoch aggregates (one ``run_aggregates`` row of packed arrays per epoch, indexed by
patch id, see :mod:`.aggregates`), never the raw history. A patch "has a value" in an
epoch when it was scored at least once in it (``times_scored > 0``).

Favour and the favoured/ignored ranking are defined once, in
:mod:`cdfis_desktop.core.statistics` (docs/method.md, "Favoured and ignored patches");
:func:`slide_measurements` returns the raw per-patch aggregates of a slide that the metric
registry (:mod:`cdfis_desktop.core.heatmap.metrics`) turns into heatmap values.

Every read of the store goes through this module (the writes are in :mod:`.catalogue`,
:mod:`.run_lifecycle`, :mod:`.run_writes` and :mod:`.history`). SQL style: textual SQLite
SQL (``sqlalchemy.text``) with named parameters, each function reading one snapshot
(``database.read_snapshot``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, Row, text

from cdfis_desktop.core import statistics
from cdfis_desktop.core.errors import StoreError
from cdfis_desktop.core.storage import aggregates
from cdfis_desktop.core.storage.database import read_snapshot, translated_errors
from cdfis_desktop.core.storage.records import (
    SPLITS,
    CheckpointRecord,
    PatchHistory,
    PatchStat,
    PatchTable,
    RunSummary,
    ScoreAges,
    SlideMeasurements,
    SlideRecord,
)
from cdfis_desktop.core.storage.schema import ALL_EPOCHS, METRIC_COLUMNS, NAN_BITS, decode_f32


def patch_table(
    engine: Engine,
    where: str,
    slide_id: int | None,
    split: str | None,
    patch_ids: np.ndarray | None = None,
) -> PatchTable:
    """Patches filtered by slide, split and/or ids, ordered by id (see :class:`PatchTable`).

    The numbers come back as ``group_concat`` texts (:func:`_concat_columns`; the split as
    its index in :data:`SPLITS`), the few non-NULL ``source`` names as rows: fetching one
    Python row per patch took 3.6 s for 255,000 patches (``benchmarks/store.py --scale``)."""
    condition = "(:slide IS NULL OR slide_id = :slide) AND (:split IS NULL OR split = :split)"
    if patch_ids is not None:
        wanted = ", ".join(str(int(i)) for i in np.ravel(patch_ids))
        condition += f" AND id IN ({wanted or 'NULL'})"
    split_code = " ".join(f"WHEN '{name}' THEN {code}" for code, name in enumerate(SPLITS))
    params = {"slide": slide_id, "split": split}
    with translated_errors(where), read_snapshot(engine) as conn:
        columns = _concat_columns(
            conn,
            "SELECT group_concat(id), group_concat(slide_id), group_concat(l0_x), "
            "group_concat(l0_y), group_concat(l0_size), group_concat(patch_px), "
            "group_concat(mpp), group_concat(label), group_concat(tissue_fraction), "
            f"group_concat(CASE split {split_code} ELSE {len(SPLITS)} END) "
            f"FROM patches WHERE {condition}",
            params,
            10,
        )
        sources = conn.execute(
            text(f"SELECT id, source FROM patches WHERE source IS NOT NULL AND {condition}"),
            params,
        ).all()
    order = np.argsort(columns[0], kind="stable")
    ids, slide, l0_x, l0_y, l0_size, patch_px, mpp, label, tissue, split_codes = (
        c[order] for c in columns
    )
    ids = ids.astype(np.int64)
    source = np.full(ids.shape[0], None, dtype=object)
    if sources:
        source[np.searchsorted(ids, [r[0] for r in sources])] = [r[1] for r in sources]
    return PatchTable(
        id=ids,
        slide_id=slide.astype(np.int64),
        l0_x=l0_x.astype(np.int64),
        l0_y=l0_y.astype(np.int64),
        l0_size=l0_size.astype(np.int64),
        patch_px=patch_px.astype(np.int32),
        mpp=mpp.astype(np.float32),
        label=label.astype(np.int16),
        tissue_fraction=tissue.astype(np.float32),
        split=np.array([*SPLITS, None], dtype=object)[split_codes.astype(np.int64)],
        source=source,
    )


def patch_keys(
    engine: Engine, where: str, patch_ids: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(id, slide_id, label) int64 arrays of every patch (or of ``patch_ids``), ordered by
    id: what a data map needs to link its points to slides, without the whole table (the
    numbers come back as text built by SQLite, see :func:`_concat_columns`)."""
    sql = "SELECT group_concat(id), group_concat(slide_id), group_concat(label) FROM patches"
    if patch_ids is not None:
        wanted = ", ".join(str(int(i)) for i in np.asarray(patch_ids).ravel())
        sql += f" WHERE id IN ({wanted or 'NULL'})"
    with translated_errors(where), read_snapshot(engine) as conn:
        ids, slide_ids, labels = _concat_columns(conn, sql, {}, 3)
    order = np.argsort(ids, kind="stable")
    return tuple(column[order].astype(np.int64) for column in (ids, slide_ids, labels))  # type: ignore[return-value]


def slide_records(engine: Engine, where: str, folder: Path) -> list[SlideRecord]:
    """All slides, ordered by id; ``file`` is the stored path resolved against the project
    ``folder`` (an absolute stored path stays as it is)."""
    sql = (
        "SELECT id, path, fingerprint, width, height, mpp, mpp_overridden, vendor, group_name "
        "FROM slides ORDER BY id"
    )
    return [
        SlideRecord(
            id=r.id,
            path=r.path,
            fingerprint=r.fingerprint,
            width=r.width,
            height=r.height,
            mpp=r.mpp,
            mpp_overridden=bool(r.mpp_overridden),
            vendor=r.vendor,
            group=r.group_name,
            file=folder / r.path,
        )
        for r in _fetch(engine, where, sql)
    ]


def class_names(engine: Engine, where: str) -> list[str]:
    """Class names in label order (empty when none set)."""
    return [r.name for r in _fetch(engine, where, "SELECT name FROM class_names ORDER BY label")]


def checkpoints(engine: Engine, where: str, folder: Path, run_id: int) -> list[CheckpointRecord]:
    """The run's checkpoints ordered by step (then registration), with absolute paths."""
    sql = (
        "SELECT id, run_id, step, epoch, path, created_at FROM checkpoints WHERE run_id = :r "
        "ORDER BY step, id"
    )
    return [
        CheckpointRecord(
            id=r.id,
            run_id=r.run_id,
            step=r.step,
            epoch=r.epoch,
            path=str(folder / r.path),
            created_at=r.created_at,
        )
        for r in _fetch(engine, where, sql, {"r": run_id})
    ]


def run_status(engine: Engine, where: str, run_id: int) -> str:
    """The run's status; StoreError for an unknown run."""
    rows = _fetch(engine, where, "SELECT status FROM runs WHERE id = :r", {"r": run_id})
    if not rows:
        raise StoreError(f"no run with id {run_id} in {where}")
    return str(rows[0].status)


def running_run_ids(engine: Engine, where: str) -> list[int]:
    """Ids of the runs whose status is ``running``."""
    return [
        int(r.id) for r in _fetch(engine, where, "SELECT id FROM runs WHERE status = 'running'")
    ]


def last_recorded_step(engine: Engine, where: str, run_id: int) -> tuple[int, int] | None:
    """``(step, epoch)`` of the run's last step with history, or None."""
    sql = "SELECT step, epoch FROM history_steps WHERE run_id = :r ORDER BY step DESC LIMIT 1"
    rows = _fetch(engine, where, sql, {"r": run_id})
    return (int(rows[0].step), int(rows[0].epoch)) if rows else None


def epochs(engine: Engine, where: str, run_id: int) -> list[int]:
    """Epochs of the run that have history aggregates, ascending."""
    sql = "SELECT epoch FROM run_aggregates WHERE run_id = :r AND epoch >= 0 ORDER BY epoch"
    return [int(r.epoch) for r in _fetch(engine, where, sql, {"r": run_id})]


def _fetch(
    engine: Engine, where: str, sql: str, params: dict[str, Any] | None = None
) -> Sequence[Row[Any]]:
    """All rows of one SELECT, read in one snapshot."""
    with translated_errors(where), read_snapshot(engine) as conn:
        return conn.execute(text(sql), params or {}).all()


def score_ages(engine: Engine, where: str, run_id: int) -> ScoreAges:
    """Median and 90th percentile of the score age at the end of each epoch (see
    :class:`ScoreAges`), from each epoch's ``last_step`` aggregates: O(epochs x patches)."""
    rows = _per_epoch(engine, where, run_id, ("times_scored", "last_step"))
    last_seen = np.full(0, -1, np.int64)
    columns: list[list[float]] = [[], [], [], [], []]
    for epoch, arrays in rows:
        if arrays is None:
            continue
        scored = arrays["times_scored"] > 0
        if not scored.any():
            continue
        if last_seen.shape[0] < scored.shape[0]:
            last_seen = np.concatenate([last_seen, np.full(scored.shape[0] - len(last_seen), -1)])
        last_seen[: scored.shape[0]][scored] = arrays["last_step"][scored]
        end = int(arrays["last_step"][scored].max())
        ages = end - last_seen[last_seen >= 0]
        for column, value in zip(
            columns,
            (epoch, end, np.median(ages), np.percentile(ages, 90), ages.shape[0]),
            strict=True,
        ):
            column.append(float(value))
    epoch_, step, median, p90, count = (np.array(c) for c in columns)
    return ScoreAges(
        epoch=epoch_.astype(np.int64),
        step=step.astype(np.int64),
        median_steps=median.astype(np.float64),
        p90_steps=p90.astype(np.float64),
        scored=count.astype(np.int64),
    )


def _per_epoch(
    engine: Engine, where: str, run_id: int, columns: tuple[str, ...]
) -> list[tuple[int, dict[str, np.ndarray]]]:
    """``(epoch, arrays)`` for each epoch of the run with aggregates, ascending, read in one
    snapshot; ``arrays`` holds the named aggregate columns (see :mod:`.aggregates`)."""
    with translated_errors(where), read_snapshot(engine) as conn:
        rows = [
            (e, aggregates.load(conn, run_id, e, columns)) for e in epochs(engine, where, run_id)
        ]
    return [(epoch, arrays) for epoch, arrays in rows if arrays is not None]


def chosen_shares(engine: Engine, where: str, run_id: int) -> tuple[np.ndarray, np.ndarray]:
    """The share of the run's training patches chosen at least once by the end of each
    epoch: ``(step int64[E], share float64[E])``, ``step`` being the epoch's last recorded
    step. The same quantity as the live plot's ``chosen_share``, at epoch resolution.
    Reads one aggregate column per epoch (about 30 ms per million patch-epochs)."""
    with translated_errors(where), read_snapshot(engine) as conn:
        n_train = int(_run_row(conn, where, run_id).n_train or 0)
        last_steps: dict[int, int] = dict(
            conn.exec_driver_sql(
                "SELECT epoch, MAX(step) FROM history_steps WHERE run_id = ? GROUP BY epoch",
                (run_id,),
            ).all()
        )
    ever = np.zeros(0, bool)
    steps: list[int] = []
    shares: list[float] = []
    for epoch, arrays in _per_epoch(engine, where, run_id, ("times_chosen",)):
        chosen = arrays["times_chosen"] > 0
        if ever.shape[0] < chosen.shape[0]:
            ever = np.concatenate([ever, np.zeros(chosen.shape[0] - ever.shape[0], bool)])
        ever[: chosen.shape[0]] |= chosen
        steps.append(int(last_steps.get(epoch, 0)))
        shares.append(float(ever.sum()) / max(1, n_train))
    return np.array(steps, np.int64), np.array(shares, np.float64)


def _run_row(conn: Any, where: str, run_id: int) -> Any:
    row = conn.execute(
        text("SELECT metric, n_train FROM runs WHERE id = :r"), {"r": run_id}
    ).one_or_none()
    if row is None:
        raise StoreError(f"no run with id {run_id} in {where}")
    return row


def _at(values: np.ndarray, patch_ids: np.ndarray) -> np.ndarray:
    """``values[patch_ids]`` with 0 for ids past the end of an aggregate array."""
    inside = patch_ids < values.shape[0]
    out = np.zeros(patch_ids.shape[0], values.dtype)
    out[inside] = values[patch_ids[inside]]
    return out


def _concat_columns(conn: Any, sql: str, params: dict[str, Any], n: int) -> list[np.ndarray]:
    """Run a query returning one row of ``group_concat`` texts (comma-separated numbers, in
    the same row order for every column) and parse each into a float64 array.

    Why: the heatmap of a 100,000-patch slide must come back in well under 100 ms; SQLite
    builds the strings in C and numpy parses them in C, where fetching 100,000 Python row
    tuples alone takes longer than that."""
    row = conn.execute(text(sql), params).one()
    return [
        np.fromstring(row[k], dtype=np.float64, sep=",") if row[k] else np.zeros(0)
        for k in range(n)
    ]


@dataclass(frozen=True)
class SlideGeometry:
    """The patches of one slide, ordered by id: ``patch_id``, ``l0_x``, ``l0_y``,
    ``l0_size``, ``label`` int64[n] and ``is_train`` bool[n] (converted once, then shared
    read-only by every query of the slide)."""

    patch_id: np.ndarray
    l0_x: np.ndarray
    l0_y: np.ndarray
    l0_size: np.ndarray
    is_train: np.ndarray
    label: np.ndarray


class SlideGeometryCache:
    """Per-slide :class:`SlideGeometry`, kept while ``meta.patches_version`` is unchanged
    (every change to patches bumps it, see :mod:`.catalogue`). Thread-safe (a lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[int, tuple[str | None, SlideGeometry]] = {}

    def get(self, conn: Any, slide_id: int) -> SlideGeometry:
        version = conn.execute(
            text("SELECT value FROM meta WHERE key = 'patches_version'")
        ).scalar()
        with self._lock:
            cached = self._entries.get(slide_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        columns = _concat_columns(
            conn,
            "SELECT group_concat(id), group_concat(l0_x), group_concat(l0_y), "
            "group_concat(l0_size), group_concat(COALESCE(split = 'train', 0)), "
            "group_concat(label) FROM patches WHERE slide_id = :slide",
            {"slide": slide_id},
            6,
        )
        order = np.argsort(columns[0], kind="stable")
        ids, l0_x, l0_y, l0_size, is_train, label = (c[order] for c in columns)
        geometry = SlideGeometry(
            patch_id=_frozen(ids.astype(np.int64)),
            l0_x=_frozen(l0_x.astype(np.int64)),
            l0_y=_frozen(l0_y.astype(np.int64)),
            l0_size=_frozen(l0_size.astype(np.int64)),
            is_train=_frozen(is_train == 1),
            label=_frozen(label.astype(np.int64)),
        )
        with self._lock:
            self._entries[slide_id] = (version, geometry)
        return geometry


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def slide_measurements(
    engine: Engine,
    where: str,
    cache: SlideGeometryCache,
    run_id: int,
    slide_id: int,
    epoch: int | None,
) -> SlideMeasurements:
    """Every per-patch aggregate, label and prediction of ``slide_id`` in run ``run_id``
    at ``epoch`` (None = cumulative over all epochs so far; predictions then of the latest
    epoch that has them), in one snapshot. See :class:`SlideMeasurements`. Raises
    StoreError for an unknown run."""
    with translated_errors(where), read_snapshot(engine) as conn:
        run = _run_row(conn, where, run_id)
        geometry = cache.get(conn, slide_id)
        ids = geometry.patch_id
        stat_epoch = ALL_EPOCHS if epoch is None else int(epoch)
        arrays = aggregates.load(conn, run_id, stat_epoch, _MEASURED)
        prediction_epoch, predicted, probability = _predictions(conn, run_id, ids, epoch)
        region_blob = conn.exec_driver_sql(
            "SELECT region FROM data_maps WHERE run_id = ?", (run_id,)
        ).scalar()
    if arrays is None:
        arrays = {name: np.zeros(0) for name in _MEASURED}
    region = np.full(ids.shape[0], -1, np.int64)
    if region_blob is not None:
        stored = np.frombuffer(region_blob, np.int8)
        inside = ids < stored.shape[0]
        region[inside] = stored[ids[inside]]
    return SlideMeasurements(
        run_id=int(run_id),
        slide_id=int(slide_id),
        epoch=None if epoch is None else int(epoch),
        patch_id=ids,
        l0_x=geometry.l0_x,
        l0_y=geometry.l0_y,
        l0_size=geometry.l0_size,
        is_train=geometry.is_train,
        label=geometry.label,
        times_scored=_at(arrays["times_scored"], ids).astype(np.int64),
        times_chosen=_at(arrays["times_chosen"], ids).astype(np.int64),
        score_sum=_at(arrays["score_sum"], ids).astype(np.float64),
        last_score=_at(arrays["last_score"], ids).astype(np.float64),
        prediction=np.where(np.isnan(predicted), -1, predicted).astype(np.int64),
        prediction_probability=probability,
        prediction_epoch=prediction_epoch,
        run_draws=int(arrays["times_chosen"].sum(dtype=np.int64)),
        n_train=int(run.n_train),
        score_metric=str(run.metric),
        label_seen=_at(arrays["label_seen"], ids).astype(np.int64),
        label_correct=_at(arrays["label_correct"], ids).astype(np.int64),
        label_probability_sum=_at(arrays["label_probability_sum"], ids).astype(np.float64),
        margin_sum=_at(arrays["margin_sum"], ids).astype(np.float64),
        region=region,
    )


_MEASURED = (
    "times_scored",
    "times_chosen",
    "score_sum",
    "last_score",
    "label_seen",
    "label_correct",
    "label_probability_sum",
    "margin_sum",
)
"""The aggregate arrays :func:`slide_measurements` reads."""


def _predictions(
    conn: Any, run_id: int, patch_ids: np.ndarray, epoch: int | None
) -> tuple[int | None, np.ndarray, np.ndarray]:
    """``(epoch, label, probability)``: float64[n] predicted label and its probability of
    the sorted ``patch_ids`` at ``epoch`` (None: the latest epoch with predictions), NaN
    where there is none; the epoch read is None when the run has no predictions then."""
    params: dict[str, Any] = {
        "r": run_id,
        # patches of a slide are usually one id range: scan that range of the primary key
        # and drop ids of other slides below
        "lo": int(patch_ids[0]) if patch_ids.size else 0,
        "hi": int(patch_ids[-1]) if patch_ids.size else -1,
    }
    params["e"] = (
        epoch
        if epoch is not None
        else conn.execute(
            text("SELECT MAX(epoch) FROM predictions WHERE run_id = :r"), params
        ).scalar()
    )
    value_ids, labels, probabilities = _concat_columns(
        conn,
        "SELECT group_concat(patch_id), group_concat(predicted_label), "
        "group_concat(probability) FROM predictions "
        "WHERE run_id = :r AND epoch = :e AND patch_id BETWEEN :lo AND :hi",
        params,
        3,
    )
    label = np.full(patch_ids.shape[0], np.nan)
    probability = np.full(patch_ids.shape[0], np.nan)
    at = np.minimum(np.searchsorted(patch_ids, value_ids), max(patch_ids.shape[0] - 1, 0))
    mine = patch_ids[at] == value_ids if patch_ids.size else np.zeros(0, dtype=bool)
    label[at[mine]] = labels[mine]
    probability[at[mine]] = probabilities[mine]
    found = params["e"] if value_ids.size else None
    return (None if found is None else int(found)), label, probability


def favoured_patches(
    engine: Engine,
    where: str,
    run_id: int,
    n: int,
    *,
    ignored: bool,
    slide_id: int | None,
    label: int | None,
    epoch: int | None,
) -> list[PatchStat]:
    """The ``n`` patches with the highest favour (``ignored``: the lowest) among those
    scored at least once in ``epoch`` (None = cumulative), optionally of one slide/label;
    ranked by :func:`statistics.rank_patches`."""
    stat_epoch = ALL_EPOCHS if epoch is None else int(epoch)
    with translated_errors(where), read_snapshot(engine) as conn:
        run = _run_row(conn, where, run_id)
        arrays = aggregates.load(conn, run_id, stat_epoch)
        if arrays is None:
            return []
        expected = statistics.expected_uniform(
            arrays["times_chosen"].sum(dtype=np.int64), run.n_train
        )
        candidates = _concat_columns(
            conn,
            "SELECT group_concat(id) FROM patches WHERE (:slide IS NULL OR slide_id = :slide) "
            "AND (:label IS NULL OR label = :label)",
            {"slide": slide_id, "label": label},
            1,
        )[0].astype(np.int64)
        ranked = statistics.rank_patches(
            candidates,
            _at(arrays["times_scored"], candidates),
            _at(arrays["times_chosen"], candidates),
            n,
            ignored=ignored,
        )
        top = candidates[ranked]
        rows = conn.execute(
            text(
                "SELECT id, slide_id, l0_x, l0_y, l0_size, label FROM patches WHERE id IN "
                f"({', '.join(map(str, top.tolist())) or 'NULL'})"
            )
        ).all()
    by_id = {int(r[0]): r for r in rows}
    stats = []
    for patch_id in top.tolist():
        r = by_id[patch_id]
        times_scored = int(arrays["times_scored"][patch_id])
        times_chosen = int(arrays["times_chosen"][patch_id])
        stats.append(
            PatchStat(
                patch_id=patch_id,
                slide_id=int(r[1]),
                l0_x=int(r[2]),
                l0_y=int(r[3]),
                l0_size=int(r[4]),
                label=int(r[5]),
                times_scored=times_scored,
                times_chosen=times_chosen,
                expected_uniform=expected,
                favour=float(statistics.favour(times_chosen, expected)),
                mean_score=float(arrays["score_sum"][patch_id]) / times_scored,
                last_score=float(arrays["last_score"][patch_id]),
                epoch=epoch,
            )
        )
    return stats


def patch_history(engine: Engine, where: str, run_id: int, patch_id: int) -> PatchHistory:
    """Every recorded step of one patch: one primary-key seek per history block."""
    sql = (
        "SELECT s.step, s.epoch, h.score_bits, h.probability_bits, h.times_chosen, "
        f"COALESCE(h.label_probability_bits, {NAN_BITS}), "
        f"COALESCE(h.margin_bits, {NAN_BITS}), h.weight "
        "FROM history h JOIN history_steps s ON s.run_id = h.run_id "
        "AND s.step = h.block + h.step_offset WHERE h.run_id = :r AND h.block IN "
        "(SELECT DISTINCT block FROM history_steps WHERE run_id = :r) "
        "AND h.patch_id = :p ORDER BY s.step"
    )
    rows = _fetch(engine, where, sql, {"r": run_id, "p": patch_id})
    ints = np.array([tuple(r)[:7] for r in rows], dtype=np.int64).reshape(len(rows), 7)
    return PatchHistory(
        patch_id=int(patch_id),
        step=ints[:, 0],
        epoch=ints[:, 1],
        score=decode_f32(ints[:, 2]),
        probability=decode_f32(ints[:, 3]),
        times_chosen=ints[:, 4].astype(np.int32),
        weight=np.array([r.weight for r in rows], dtype=np.float32),
        label_probability=decode_f32(ints[:, 5]),
        margin=decode_f32(ints[:, 6]),
    )


def score_distribution(
    engine: Engine, where: str, run_id: int, step: int | None, epoch: int | None
) -> np.ndarray:
    """float32 scores: every candidate at ``step``, or each patch's last score in
    ``epoch``. Exactly one of the two must be given (ValueError otherwise)."""
    if (step is None) == (epoch is None):
        raise ValueError("give exactly one of step or epoch")
    with translated_errors(where), read_snapshot(engine) as conn:
        if step is not None:
            bits = conn.execute(
                text(
                    "SELECT h.score_bits FROM history_steps s JOIN history h "
                    "ON h.run_id = s.run_id AND h.block = s.block "
                    "AND h.step_offset = s.step - s.block WHERE s.run_id = :r AND s.step = :s"
                ),
                {"r": run_id, "s": int(step)},
            ).scalars()
            return decode_f32(np.fromiter(bits, dtype=np.int64))
        arrays = aggregates.load(conn, run_id, int(epoch), ("times_scored", "last_score"))  # type: ignore[arg-type]
    if arrays is None:
        return np.zeros(0, np.float32)
    return arrays["last_score"][arrays["times_scored"] > 0].astype(np.float32)


def metric_series(engine: Engine, where: str, run_id: int) -> dict[str, np.ndarray]:
    """``step``/``epoch`` int64[n], ``wall_s`` and each of :data:`METRIC_COLUMNS`
    float64[n] (NaN where not logged), ordered by step."""
    columns = ("step", "epoch", "wall_s", *METRIC_COLUMNS)
    sql = f"SELECT {', '.join(columns)} FROM metrics WHERE run_id = :r ORDER BY step"
    rows = _fetch(engine, where, sql, {"r": run_id})
    table = np.array(
        [[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64
    ).reshape(len(rows), len(columns))
    series = {name: table[:, k] for k, name in enumerate(columns)}
    series["step"] = series["step"].astype(np.int64)
    series["epoch"] = series["epoch"].astype(np.int64)
    return series


def run_summaries(engine: Engine, where: str, run_ids: list[int] | None) -> list[RunSummary]:
    """Summaries of the given runs (all when None), newest first."""
    sql = (
        "SELECT r.*, (SELECT MAX(m.val_accuracy) FROM metrics m WHERE m.run_id = r.id) "
        "AS best_val_accuracy FROM runs r"
    )
    params: dict[str, Any] = {}
    if run_ids is not None:
        sql += f" WHERE r.id IN ({', '.join(str(int(i)) for i in run_ids) or 'NULL'})"
    sql += " ORDER BY r.id DESC"
    with translated_errors(where), read_snapshot(engine) as conn:
        rows = conn.execute(text(sql), params).mappings().all()
    now = time.time()
    summaries = []
    for r in rows:
        if r["ended_at"] is not None:
            duration: float | None = r["ended_at"] - r["started_at"]
        elif r["status"] == "running":
            duration = now - r["started_at"]
        else:
            duration = None
        summaries.append(
            RunSummary(
                id=r["id"],
                name=r["name"],
                status=r["status"],
                sampler_rule=r["sampler_rule"],
                sampler_mode=r["sampler_mode"],
                metric=r["metric"],
                seed=r["seed"],
                device=r["device"],
                n_train=r["n_train"],
                steps=r["last_step"],
                best_val_accuracy=r["best_val_accuracy"],
                duration_s=duration,
                started_at=r["started_at"],
                ended_at=r["ended_at"],
                switch_step=r["switch_step"],
                error=r["error"],
                versions=json.loads(r["versions"] or "{}"),
                config=json.loads(r["config"] or "{}"),
            )
        )
    return summaries
