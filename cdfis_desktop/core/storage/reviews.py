"""Review decisions: non-destructive label overrides with who, when and why.

A decision never changes ``patches.label`` and is never deleted: an ``undo`` stamps the
patch's latest decision in force with ``undone_at``. A patch's decision *in force at time
T* is its latest decision (by time, then id) made at or before T and not undone by T,
``skip`` decisions aside (a skip records that the reviewer saw the patch and left it as it
was). Training takes the decisions in force when the run started (``RunConfig.
review_as_of``): ``relabel`` trains the patch with its new label, ``exclude`` leaves it
out, ``confirm`` keeps its label.

Thread rules: each function runs one transaction or read snapshot; any thread.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import Engine, text

from cdfis_desktop.core.errors import ReviewError
from cdfis_desktop.core.storage.database import begin_writing, read_snapshot, translated_errors
from cdfis_desktop.core.storage.records import (
    EXCLUDE_REASONS,
    REVIEW_ACTIONS,
    ReviewInput,
    ReviewTable,
)

_COLUMNS = (
    "id",
    "patch_id",
    "run_id",
    "action",
    "label",
    "original_label",
    "reason",
    "reviewer",
    "decided_at",
    "undone_at",
)
_IN_FORCE = (
    "SELECT {columns} FROM review_decisions d WHERE d.action != 'skip' AND d.decided_at <= :t "
    "AND (d.undone_at IS NULL OR d.undone_at > :t) AND d.id = (SELECT e.id FROM "
    "review_decisions e WHERE e.patch_id = d.patch_id AND e.action != 'skip' AND "
    "e.decided_at <= :t AND (e.undone_at IS NULL OR e.undone_at > :t) "
    "ORDER BY e.decided_at DESC, e.id DESC LIMIT 1) ORDER BY d.decided_at, d.id"
)


def add_decisions(
    engine: Engine,
    where: str,
    decisions: Sequence[ReviewInput],
    *,
    class_count: int,
    now: float | None = None,
) -> list[int]:
    """Store ``decisions`` in order, all or none, at time ``now`` (default: the clock).
    Returns per decision the id of the row written (for ``undo``: of the decision undone).

    ``class_count``: labels a ``relabel`` may give are 0 .. class_count - 1. Raises
    :class:`ReviewError` naming the first bad decision (by its position, from 1): unknown
    patch or action, a relabel without a valid new label (or to the label it has), an
    exclude without a known reason, no reviewer, or an undo with nothing in force."""
    stamp = time.time() if now is None else float(now)
    with translated_errors(where), engine.begin() as conn:
        begin_writing(conn)
        ids = sorted({int(d.patch_id) for d in decisions})
        labels: dict[int, int] = dict(
            conn.exec_driver_sql(
                f"SELECT id, label FROM patches WHERE id IN ({', '.join(map(str, ids)) or 'NULL'})"
            ).all()
        )
        written = []
        for number, decision in enumerate(decisions, start=1):
            _check(decision, number, labels, class_count)
            if decision.action == "undo":
                written.append(_undo(conn, decision, number, stamp))
                continue
            label = labels[int(decision.patch_id)]
            new_label = {"relabel": decision.label, "exclude": None}.get(decision.action, label)
            result = conn.exec_driver_sql(
                "INSERT INTO review_decisions (patch_id, run_id, action, label, original_label, "
                "reason, reviewer, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    int(decision.patch_id),
                    decision.run_id,
                    decision.action,
                    new_label,
                    int(label),
                    decision.reason,
                    decision.reviewer,
                    stamp,
                ),
            )
            written.append(int(result.lastrowid))
    return written


def _check(decision: ReviewInput, number: int, labels: dict[int, int], class_count: int) -> None:
    where = f"decision {number} (patch {decision.patch_id})"
    if int(decision.patch_id) not in labels:
        raise ReviewError(f"{where}: no such patch in the project; check the patch_id column")
    if decision.action not in (*REVIEW_ACTIONS, "undo"):
        raise ReviewError(
            f"{where}: unknown decision {decision.action!r}; use one of "
            f"{', '.join((*REVIEW_ACTIONS, 'undo'))}"
        )
    if not decision.reviewer.strip():
        raise ReviewError(f"{where}: no reviewer named; say who decides")
    if decision.action == "relabel":
        label = decision.label
        if label is None or not 0 <= label < class_count:
            raise ReviewError(
                f"{where}: relabel needs a new label between 0 and {class_count - 1} "
                "(a class number or name)"
            )
        if label == labels[int(decision.patch_id)]:
            raise ReviewError(f"{where}: the patch already has label {label}; use confirm")
    if decision.action == "exclude" and decision.reason not in EXCLUDE_REASONS:
        raise ReviewError(
            f"{where}: exclude needs a reason, one of {', '.join(EXCLUDE_REASONS)} "
            f"(got {decision.reason!r})"
        )


def _undo(conn: Any, decision: ReviewInput, number: int, stamp: float) -> int:
    latest = conn.exec_driver_sql(
        "SELECT id FROM review_decisions WHERE patch_id = ? AND undone_at IS NULL "
        "ORDER BY decided_at DESC, id DESC LIMIT 1",
        (int(decision.patch_id),),
    ).scalar()
    if latest is None:
        raise ReviewError(
            f"decision {number} (patch {decision.patch_id}): nothing to undo, the patch has "
            "no decision in force"
        )
    conn.exec_driver_sql(
        "UPDATE review_decisions SET undone_at = ? WHERE id = ?", (stamp, int(latest))
    )
    return int(latest)


def decisions(engine: Engine, where: str, *, in_force_at: float | None = None) -> ReviewTable:
    """Every decision ever made (``in_force_at`` None), or only each patch's decision in
    force at that time (Unix s; ``math.inf``: now and later; see the module docstring)."""
    columns = ", ".join(f"d.{c}" for c in _COLUMNS)
    if in_force_at is None:
        sql = f"SELECT {columns} FROM review_decisions d ORDER BY d.decided_at, d.id"
        params: dict[str, Any] = {}
    else:
        sql = _IN_FORCE.format(columns=columns)
        params = {"t": float(in_force_at)}
    with translated_errors(where), read_snapshot(engine) as conn:
        rows = conn.execute(text(sql), params).all()
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(_COLUMNS)
    ints = {
        name: np.array([-1 if v is None else v for v in cols[k]], dtype=np.int64)
        for k, name in enumerate(_COLUMNS)
        if name in ("id", "patch_id", "run_id", "label", "original_label")
    }
    return ReviewTable(
        **ints,
        action=np.array(cols[3], dtype=object),
        reason=np.array(cols[6], dtype=object),
        reviewer=np.array(cols[7], dtype=object),
        decided_at=np.array(cols[8], dtype=np.float64),
        undone_at=np.array([np.nan if v is None else v for v in cols[9]], dtype=np.float64),
    )
