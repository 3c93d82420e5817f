"""Review decisions in force, as the ``review`` property every export carries.

Thread rules: reads only; any thread.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

from cdfis_desktop.core.class_names import label_name
from cdfis_desktop.core.storage import Project

REVIEW_KEYS = (
    "decision",
    "original_label",
    "label",
    "label_id",
    "reason",
    "reviewer",
    "decided_at",
)
"""Keys of a patch's ``review`` property, in export column order."""


def review_properties(project: Project) -> dict[int, dict[str, object]]:
    """patch id -> its decision in force now as a JSON-ready object (:data:`REVIEW_KEYS`:
    ``decision``, ``original_label`` and ``label`` class names ("" when excluded),
    ``label_id`` the class number the patch trains with (-1: excluded), ``reason``,
    ``reviewer``, ``decided_at`` ISO 8601 UTC): the ``review`` property of exports."""
    decided = project.review_decisions(in_force_at=math.inf)
    names = project.class_names()
    return {
        int(decided.patch_id[k]): {
            "decision": str(decided.action[k]),
            "original_label": label_name(names, int(decided.original_label[k]), unlabelled=""),
            "label": label_name(names, int(decided.label[k]), unlabelled=""),
            "label_id": int(decided.label[k]),
            "reason": str(decided.reason[k]),
            "reviewer": str(decided.reviewer[k]),
            "decided_at": iso_time(float(decided.decided_at[k])),
        }
        for k in range(len(decided))
    }


def iso_time(seconds: float) -> str:
    """Unix seconds as ISO 8601 UTC ("" for NaN)."""
    if math.isnan(seconds):
        return ""
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")
