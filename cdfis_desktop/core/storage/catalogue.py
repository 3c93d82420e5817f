"""The project's catalogue: slides, their patches and the class names (writes only; the
reads are :mod:`.queries`).

SQL style: SQLAlchemy Core expressions on the tables of :mod:`.schema`, one transaction
per call. A change to patches (added, re-split, deleted) bumps ``meta.patches_version``
in the same transaction, which invalidates every process's
:class:`~.queries.SlideGeometryCache`. ``add_patches`` and ``delete_slide`` take the
write lock before their first read (``database.begin_writing``), so no history flush of
the training thread can commit between reading and rewriting.

Thread rules: any thread (each call opens its own transaction on a pooled connection).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import Engine, Integer, String, bindparam, cast, delete, func, insert, select
from sqlalchemy import update as update_rows
from sqlalchemy.dialects.sqlite import insert as upsert

from cdfis_desktop.core.errors import StoreError
from cdfis_desktop.core.storage import aggregates
from cdfis_desktop.core.storage.database import begin_writing, translated_errors
from cdfis_desktop.core.storage.records import SPLITS
from cdfis_desktop.core.storage.schema import (
    ClassName,
    DataMap,
    History,
    Meta,
    Patch,
    Prediction,
    Slide,
)


def add_slide(
    engine: Engine,
    where: str,
    path: str | os.PathLike[str],
    *,
    fingerprint: str,
    width: int,
    height: int,
    mpp: float | None,
    mpp_overridden: bool,
    vendor: str,
    group: str,
) -> int:
    """Insert a slide; returns its id (see ``Project.add_slide``)."""
    with translated_errors(where), engine.begin() as conn:
        result = conn.execute(
            insert(Slide).values(
                path=str(path),
                fingerprint=fingerprint,
                width=int(width),
                height=int(height),
                mpp=None if mpp is None else float(mpp),
                mpp_overridden=bool(mpp_overridden),
                vendor=vendor,
                group_name=group,
                added_at=time.time(),
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


def update_slide(engine: Engine, where: str, slide_id: int, **values: Any) -> None:
    """Set columns of one slide; StoreError for an unknown slide."""
    with translated_errors(where), engine.begin() as conn:
        result = conn.execute(update_rows(Slide).where(Slide.id == slide_id).values(**values))
        if result.rowcount == 0:
            raise StoreError(f"no slide with id {slide_id} in {where}")


def delete_slide(engine: Engine, where: str, slide_id: int) -> None:
    """Delete a slide, its patches, and every run's history, aggregates and predictions
    for those patches (runs are kept)."""
    patch_ids = select(Patch.id).where(Patch.slide_id == slide_id).scalar_subquery()
    with translated_errors(where), engine.begin() as conn:
        begin_writing(conn)  # no history flush may commit between reading and rewriting
        doomed = conn.execute(select(Patch.id).where(Patch.slide_id == slide_id)).scalars()
        aggregates.zero_patches(conn, np.fromiter(doomed, dtype=np.int64))
        conn.execute(delete(History).where(History.patch_id.in_(patch_ids)))
        conn.execute(delete(Prediction).where(Prediction.patch_id.in_(patch_ids)))
        conn.execute(delete(Patch).where(Patch.id.in_(patch_ids)))  # decisions cascade
        conn.execute(delete(DataMap))  # recomputed without those patches when next read
        _bump_patches_version(conn)
        result = conn.execute(delete(Slide).where(Slide.id == slide_id))
        if result.rowcount == 0:
            raise StoreError(f"no slide with id {slide_id} in {where}")


def set_class_names(engine: Engine, where: str, names: Sequence[str]) -> None:
    """Replace the class names; ``patches.label`` k means ``names[k]``."""
    with translated_errors(where), engine.begin() as conn:
        conn.execute(delete(ClassName))
        if names:
            conn.execute(
                insert(ClassName), [{"label": k, "name": str(n)} for k, n in enumerate(names)]
            )


def add_patches(
    engine: Engine,
    where: str,
    slide_id: int,
    *,
    l0_x: np.ndarray,
    l0_y: np.ndarray,
    l0_size: int | np.ndarray,
    patch_px: int | np.ndarray,
    mpp: float | np.ndarray,
    label: int | np.ndarray,
    tissue_fraction: float | np.ndarray,
    split: str | None | Sequence[str | None],
    source: Sequence[str | None] | None = None,
) -> np.ndarray:
    """Bulk-insert n patches of one slide (see ``Project.add_patches``); returns their ids,
    int64[n], in input order."""
    xs = np.asarray(l0_x, dtype=np.int64).ravel()
    n = xs.shape[0]
    columns = {
        "l0_x": xs,
        "l0_y": np.broadcast_to(np.asarray(l0_y, dtype=np.int64), (n,)),
        "l0_size": np.broadcast_to(np.asarray(l0_size, dtype=np.int64), (n,)),
        "patch_px": np.broadcast_to(np.asarray(patch_px, dtype=np.int64), (n,)),
        "mpp": np.broadcast_to(np.asarray(mpp, dtype=np.float64), (n,)),
        "label": np.broadcast_to(np.asarray(label, dtype=np.int64), (n,)),
        "tissue_fraction": np.broadcast_to(np.asarray(tissue_fraction, np.float64), (n,)),
    }
    splits = _split_list(split, n)
    sources = [None] * n if source is None else [None if s is None else str(s) for s in source]
    if len(sources) != n:
        raise ValueError(f"got {len(sources)} sources for {n} patches")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    lists = {name: column.tolist() for name, column in columns.items()}
    rows = [
        {
            "slide_id": int(slide_id),
            "split": splits[i],
            "source": sources[i],
            **{k: v[i] for k, v in lists.items()},
        }
        for i in range(n)
    ]
    with translated_errors(where), engine.begin() as conn:
        begin_writing(conn)  # no other writer may change the ids between these reads
        if conn.execute(select(Slide.id).where(Slide.id == slide_id)).scalar() is None:
            raise StoreError(f"no slide with id {slide_id} in {where}")
        first = conn.execute(select(func.coalesce(func.max(Patch.id), 0))).scalar_one()
        conn.execute(insert(Patch), rows)
        _bump_patches_version(conn)
        ids = conn.execute(
            select(Patch.id).where(Patch.slide_id == slide_id, Patch.id > first).order_by(Patch.id)
        ).scalars()
        return np.fromiter(ids, dtype=np.int64)


def set_splits(
    engine: Engine, where: str, patch_ids: np.ndarray, splits: str | None | Sequence[str | None]
) -> None:
    """Assign ``train``/``val``/``test``/None to patches (a scalar applies to all)."""
    ids = np.asarray(patch_ids, dtype=np.int64).ravel().tolist()
    values = _split_list(splits, len(ids))
    if not ids:
        return
    statement = (
        update_rows(Patch).where(Patch.id == bindparam("patch")).values(split=bindparam("value"))
    )
    with translated_errors(where), engine.begin() as conn:
        conn.execute(
            statement, [{"patch": i, "value": v} for i, v in zip(ids, values, strict=True)]
        )
        _bump_patches_version(conn)


def _split_list(split: str | None | Sequence[str | None], n: int) -> list[str | None]:
    """One split per patch from a scalar or a sequence; ValueError for a wrong length or
    an unknown split."""
    values = [split] * n if split is None or isinstance(split, str) else list(split)
    if len(values) != n:
        raise ValueError(f"got {len(values)} splits for {n} patches")
    bad = {v for v in values if v is not None and v not in SPLITS}
    if bad:
        raise ValueError(f"unknown split(s) {sorted(bad)}; use one of {SPLITS} or None")
    return values


def _bump_patches_version(conn: Any) -> None:
    """``meta.patches_version`` += 1 (created at 1)."""
    conn.execute(
        upsert(Meta)
        .values(key="patches_version", value="1")
        .on_conflict_do_update(
            index_elements=[Meta.key], set_={"value": cast(cast(Meta.value, Integer) + 1, String)}
        )
    )
