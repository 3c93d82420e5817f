"""Review files: the ranked queue as CSV, decisions read back from CSV, decisions exported.

Queue CSV (:func:`write_queue_csv`): columns :data:`QUEUE_COLUMNS`, one row per queue
entry, best first. The last three (``decision``, ``new_label``, ``reason``) are left empty
for the reviewer; ``current_decision`` shows what is in force now. A reviewer fills
``decision`` with one of confirm, relabel, exclude, skip or undo (``new_label``: a class
name or number for relabel; ``reason``: artefact, pen, blur or out-of-focus for exclude,
a note otherwise) and gives the file back to :func:`read_decisions_csv`; rows with an
empty ``decision`` are ignored, and an optional ``reviewer`` column names who decided.

Decisions CSV (:func:`write_decisions_csv`): every decision ever made, undone ones
included, with :data:`DECISION_COLUMNS`.

Every file is written atomically; bad input raises :class:`ReviewError` or
:class:`LabelsError` naming the file and the row, before anything is stored.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path

from cdfis_desktop.core.class_names import label_name
from cdfis_desktop.core.datamaps.decisions import iso_time
from cdfis_desktop.core.datamaps.queue import SCORES, ReviewQueue
from cdfis_desktop.core.errors import ReviewError
from cdfis_desktop.core.reporting.exports import spreadsheet_text
from cdfis_desktop.core.reporting.files import atomic_output
from cdfis_desktop.core.storage import Project, ReviewInput, ReviewTable
from cdfis_desktop.core.tiling.labels import read_patch_table

QUEUE_COLUMNS = (
    "rank",
    "slide",
    "slide_id",
    "patch_id",
    "l0_x",
    "l0_y",
    "l0_size",
    "label",
    "label_id",
    "source",
    "flag",
    "region",
    *SCORES,
    "current_decision",
    "decision",
    "new_label",
    "reason",
)
DECISION_COLUMNS = (
    "decision_id",
    "patch_id",
    "slide",
    "l0_x",
    "l0_y",
    "source",
    "action",
    "original_label",
    "label",
    "reason",
    "reviewer",
    "run_id",
    "decided_at",
    "undone_at",
)


def write_queue_csv(queue: ReviewQueue, path: str | os.PathLike[str]) -> int:
    """Write the queue; returns the rows written. ExportError if it cannot be written."""
    with atomic_output(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(QUEUE_COLUMNS)
        for e in queue.entries:
            current = e.decision
            if e.decision == "relabel":
                current = f"relabel to {e.decided_label}"
            elif e.decision == "exclude":
                current = f"exclude ({e.reason})"
            writer.writerow(
                [
                    e.rank, spreadsheet_text(e.slide), e.slide_id, e.patch_id, e.l0_x, e.l0_y,
                    e.l0_size, spreadsheet_text(e.label_name), _label_cell(e.label),
                    spreadsheet_text(e.source), e.flag, e.region,
                    *(_number(e.scores[name]) for name in SCORES),
                    spreadsheet_text(current), "", "", "",
                ]
            )  # fmt: skip
    return len(queue.entries)


def read_decisions_csv(
    project: Project, path: str | os.PathLike[str], *, reviewer: str, run_id: int | None
) -> list[ReviewInput]:
    """The decisions filled in a queue CSV (or any CSV with ``patch_id`` and ``decision``
    columns), in file order. ``reviewer``: who decided, unless a ``reviewer`` column says
    otherwise for a row. Raises LabelsError (unreadable, missing columns) or ReviewError
    (a bad patch id or class, naming the row)."""
    table = read_patch_table(Path(path), required=("patch_id", "decision"))
    names = [n.casefold() for n in project.class_names()]
    out = []
    for row in range(table.rows):
        cells = {name: values[row] for name, values in table.columns.items()}
        action = cells["decision"].strip().lower()
        if not action:
            continue
        where = f"{path}: row {row + 1}"
        try:
            patch_id = int(cells["patch_id"])
        except ValueError:
            raise ReviewError(f"{where}: patch_id {cells['patch_id']!r} is not a number") from None
        label = None
        if action == "relabel":
            label = _label_of(cells.get("new_label", ""), names, where)
        out.append(
            ReviewInput(
                patch_id=patch_id,
                action=action,
                reviewer=cells.get("reviewer", "").strip() or reviewer,
                label=label,
                reason=cells.get("reason", "").strip().lower()
                if action == "exclude"
                else cells.get("reason", "").strip(),
                run_id=run_id,
            )
        )
    return out


def write_decisions_csv(project: Project, path: str | os.PathLike[str]) -> int:
    """Every decision ever made (:data:`DECISION_COLUMNS`, by time); returns the rows."""
    decisions = project.review_decisions()
    rows = _decision_rows(project, decisions)
    with atomic_output(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(DECISION_COLUMNS)
        writer.writerows(
            [[spreadsheet_text(c) if isinstance(c, str) else c for c in r] for r in rows]
        )
    return len(rows)


def _decision_rows(project: Project, decisions: ReviewTable) -> list[list[object]]:
    patches = project.patches(patch_ids=decisions.patch_id)
    row_of = {int(p): k for k, p in enumerate(patches.id)}
    slides = {s.id: s.name for s in project.slides()}
    names = project.class_names()
    rows: list[list[object]] = []
    for k in range(len(decisions)):
        p = row_of[int(decisions.patch_id[k])]
        rows.append(
            [
                int(decisions.id[k]),
                int(decisions.patch_id[k]),
                slides.get(int(patches.slide_id[p]), ""),
                int(patches.l0_x[p]),
                int(patches.l0_y[p]),
                patches.source[p] or "",
                decisions.action[k],
                label_name(names, int(decisions.original_label[k]), unlabelled=""),
                label_name(names, int(decisions.label[k]), unlabelled=""),
                decisions.reason[k],
                decisions.reviewer[k],
                "" if decisions.run_id[k] < 0 else int(decisions.run_id[k]),
                iso_time(float(decisions.decided_at[k])),
                iso_time(float(decisions.undone_at[k])),
            ]
        )
    return rows


def _label_of(text: str, names: Sequence[str], where: str) -> int:
    """A class given by name (case-insensitive) or number."""
    text = text.strip()
    if text.casefold() in names:
        return list(names).index(text.casefold())
    try:
        return int(text)
    except ValueError:
        known = ", ".join(names) or "class numbers"
        raise ReviewError(
            f"{where}: relabel needs new_label, a class name or number ({known}); got {text!r}"
        ) from None


def _label_cell(label: int) -> str:
    return "" if label < 0 else str(label)


def _number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.6g}"
