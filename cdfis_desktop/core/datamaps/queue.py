"""The review queue: a run's trained patches ranked as likely label errors, with context.

Ranking: area under the margin, lowest first, by default; any of
:data:`.statistics.RANKINGS` on request (:func:`.statistics.label_error_ranking`). Each entry carries a ``flag`` saying why it is there: ``label error?`` (AUM < 0: the model
ranked another class above the patch's label on average), ``hard to learn`` (hard region,
AUM >= 0: low confidence, often an artefact, blur or pen), ``ambiguous`` (ambiguous region)
or empty. Only the ranking needs every trained patch (the stored data map, indexed by
patch id); the patch rows, slide names and decisions are read for the ``top`` entries only,
so opening the queue costs about the same for 1,000 or 100,000 patches
(``benchmarks/datamap_open.py``).

Thread rules: build in any thread (reads only); the result is immutable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cdfis_desktop.core.class_names import label_name
from cdfis_desktop.core.datamaps.service import data_map
from cdfis_desktop.core.datamaps.statistics import (
    DEFAULT_RANKING,
    NONE,
    REGION_NAMES,
    DataMap,
    label_error_ranking,
)
from cdfis_desktop.core.storage import Project

SCORES = ("aum", "confidence", "variability", "correctness", "final_loss", "epochs_seen")
"""The data-map values each queue entry carries (see :class:`.statistics.DataMap`)."""


def flag_of(aum: float, region: int) -> str:
    """Why a patch is in the queue (see the module docstring)."""
    if aum < 0:
        return "label error?"
    if region == REGION_NAMES.index("hard"):
        return "hard to learn"
    if region == REGION_NAMES.index("ambiguous"):
        return "ambiguous"
    return ""


def region_name(code: int) -> str:
    """The region's name ("" for :data:`.statistics.NONE`)."""
    return "" if code == NONE else REGION_NAMES[code]


@dataclass(frozen=True)
class QueueEntry:
    """One patch of the queue. ``rank`` from 1; ``label`` its stored label (-1: none) and
    ``label_name``; ``source`` the patch-set image file ("" if none); ``scores`` name ->
    value (:data:`SCORES`); ``decision`` the review decision in force now ("" if none,
    else its action), ``decided_label`` the label it trains with after it (-1: excluded
    or none), ``reason`` and ``reviewer`` of that decision."""

    rank: int
    patch_id: int
    slide_id: int
    slide: str
    l0_x: int
    l0_y: int
    l0_size: int
    label: int
    label_name: str
    source: str
    flag: str
    region: str
    scores: dict[str, float]
    decision: str
    decided_label: int
    reason: str
    reviewer: str


@dataclass(frozen=True)
class ReviewQueue:
    """The ranked queue of one run: ``entries`` (the first ``top``, best first) out of
    ``total`` trained patches, ordered by ``ranking`` (a :data:`.statistics.RANKINGS`
    name); ``data_map`` the run's whole map (for plots)."""

    run_id: int
    entries: list[QueueEntry]
    total: int
    data_map: DataMap
    ranking: str


def build_queue(
    project: Project, run_id: int, *, top: int | None = None, ranking: str = DEFAULT_RANKING
) -> ReviewQueue:
    """The run's review queue (``top`` None: every trained patch) ordered by ``ranking``.
    Raises the store's errors for an unknown run, ReviewError for an unknown ranking."""
    result = data_map(project, run_id)
    trained = result.trained_ids()
    ranked = trained[label_error_ranking(result, trained, ranking)]
    chosen = ranked if top is None else ranked[: max(int(top), 0)]
    codes = result.region
    table = project.patches(patch_ids=chosen)
    slides = {s.id: s.name for s in project.slides()}
    names = project.class_names()
    decided = project.review_decisions(in_force_at=math.inf)
    decision_of = {int(p): k for k, p in enumerate(decided.patch_id)}
    row_of = {int(p): k for k, p in enumerate(table.id)}
    entries = []
    for rank, patch_id in enumerate(chosen.tolist(), start=1):
        row = row_of[patch_id]
        label = int(table.label[row])
        k = decision_of.get(patch_id)
        scores = {name: float(getattr(result, name)[patch_id]) for name in SCORES}
        entries.append(
            QueueEntry(
                rank=rank,
                patch_id=patch_id,
                slide_id=int(table.slide_id[row]),
                slide=slides.get(int(table.slide_id[row]), ""),
                l0_x=int(table.l0_x[row]),
                l0_y=int(table.l0_y[row]),
                l0_size=int(table.l0_size[row]),
                label=label,
                label_name=label_name(names, label, unlabelled=""),
                source=table.source[row] or "",
                flag=flag_of(scores["aum"], int(codes[patch_id])),
                region=region_name(int(codes[patch_id])),
                scores=scores,
                decision="" if k is None else str(decided.action[k]),
                decided_label=-1 if k is None else int(decided.label[k]),
                reason="" if k is None else str(decided.reason[k]),
                reviewer="" if k is None else str(decided.reviewer[k]),
            )
        )
    return ReviewQueue(
        run_id=run_id, entries=entries, total=int(trained.size), data_map=result, ranking=ranking
    )
