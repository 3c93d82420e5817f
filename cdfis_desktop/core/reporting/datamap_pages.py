"""Report pages of issue 17: the run's data map, its top flagged patches with their
histories, and a summary of the project's review decisions.

Pages (only when there is something to show): **Data map** (confidence against
variability for every trained patch, coloured by correctness, with the region counts,
and the histogram of the area under the margin); **Likely label errors** (the first
:data:`FLAGGED` patches of the review queue, each with its image, its label probability
and margin per step, and its scores); **Review decisions** (counts per decision and
reason, and the latest decisions). The builder of :mod:`.report` passes its page factory
and its patch reader, so the pages look and read slides like the others.

Thread rules: the thread writing the report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from cdfis_desktop.core.class_names import label_name
from cdfis_desktop.core.datamaps import NONE, REGION_NAMES
from cdfis_desktop.core.datamaps.decisions import iso_time
from cdfis_desktop.core.datamaps.queue import ReviewQueue, build_queue
from cdfis_desktop.core.storage import Project, RunSummary

FLAGGED = 6
"""Flagged patches shown with their histories."""
LATEST_DECISIONS = 14
REGION_COLOURS = {"easy": "#2a9d8f", "ambiguous": "#e9c46a", "hard": "#e76f51"}

Page = Callable[[str], Any]
"""``new_page(title) -> matplotlib Figure`` (the report's page layout)."""
PatchImage = Callable[[int], "np.ndarray | None"]
"""``patch_image(patch_id) -> uint8[h, w, 3]`` read from its slide, None if unreadable."""


def data_map_pages(
    project: Project, run: RunSummary, *, new_page: Page, patch_image: PatchImage
) -> Iterator[tuple[str, Callable[[], Any]]]:
    """(title, make_page) of the pages above, to be drawn one at a time."""
    queue = build_queue(project, run.id, top=FLAGGED)
    if queue.total:
        yield "Data map", lambda: _data_map_page(queue, run, new_page)
        yield (
            "Likely label errors",
            lambda: _flagged_page(project, queue, run, new_page, patch_image),
        )
    if len(project.review_decisions()):
        yield "Review decisions", lambda: _decisions_page(project, new_page)


def _data_map_page(queue: ReviewQueue, run: RunSummary, new_page: Page) -> Any:
    dm = queue.data_map
    figure = new_page(f"Run {run.id}: data map of training dynamics")
    ids = dm.trained_ids()
    codes = dm.region[ids]
    counts = Counter(REGION_NAMES[c] for c in codes.tolist() if c != NONE)
    figure.text(
        0.06, 0.915,
        f"{len(ids)} trained patches over {dm.n_epochs} epochs: "
        + ", ".join(f"{counts.get(name, 0)} {name}" for name in REGION_NAMES)
        + " (Swayamdipta et al. 2020); AUM: area under the margin (Pleiss et al. 2020)",
        fontsize=7.5, color="#444444", wrap=True,
    )  # fmt: skip
    scatter_ax, histogram_ax = figure.subplots(
        2, 1, gridspec_kw={"top": 0.88, "bottom": 0.07, "hspace": 0.3, "height_ratios": [3, 2]}
    )
    points = scatter_ax.scatter(
        dm.variability[ids], dm.confidence[ids], c=dm.correctness[ids], cmap="viridis",
        vmin=0, vmax=1, s=6, alpha=0.7, linewidths=0,
    )  # fmt: skip
    figure.colorbar(points, ax=scatter_ax, label="correctness", fraction=0.04)
    scatter_ax.set_xlabel("variability (std of the label probability across epochs)")
    scatter_ax.set_ylabel("confidence (mean label probability)")
    scatter_ax.grid(alpha=0.3)
    for name, (x, y) in {"easy": (0.02, 0.95), "hard": (0.02, 0.05)}.items():
        scatter_ax.text(x, y, f"{name} to learn", transform=scatter_ax.transAxes, fontsize=8,
                        color=REGION_COLOURS[name], weight="bold", va="center")  # fmt: skip
    scatter_ax.text(0.98, 0.5, "ambiguous", transform=scatter_ax.transAxes, fontsize=8,
                    color="#b08900", weight="bold", ha="right")  # fmt: skip
    aum = dm.aum[ids]
    histogram_ax.hist(aum, bins=60, color="#1f4e79", alpha=0.8)
    histogram_ax.axvline(0, color="#e76f51", lw=1.2)
    flagged = int((aum < 0).sum())
    histogram_ax.set_title(
        f"area under the margin: {flagged} patches below 0 (flagged as likely label errors)",
        fontsize=9,
    )
    histogram_ax.set_xlabel("AUM (label logit - largest other logit, mean over epochs)")
    histogram_ax.set_ylabel("patches")
    histogram_ax.grid(alpha=0.3)
    return figure


def _flagged_page(
    project: Project, queue: ReviewQueue, run: RunSummary, new_page: Page, patch_image: PatchImage
) -> Any:
    figure = new_page(f"Run {run.id}: the {len(queue.entries)} likeliest label errors")
    grid = figure.add_gridspec(
        FLAGGED, 2, top=0.9, bottom=0.05, left=0.06, right=0.96, hspace=0.6, wspace=0.25,
        width_ratios=[1, 3],
    )  # fmt: skip
    for row, entry in enumerate(queue.entries):
        image_ax = figure.add_subplot(grid[row, 0])
        history_ax = figure.add_subplot(grid[row, 1])
        image = patch_image(entry.patch_id)
        image_ax.set_xticks([])
        image_ax.set_yticks([])
        if image is not None:
            image_ax.imshow(image, interpolation="none")
        image_ax.set_xlabel(f"#{entry.patch_id} {entry.slide[:18]}", fontsize=6.5)
        history = project.patch_history(run.id, entry.patch_id)
        trained = ~np.isnan(history.label_probability)
        history_ax.plot(history.step[trained], history.label_probability[trained], "o-",
                        ms=3, lw=1, color="#1f4e79", label="label probability")  # fmt: skip
        history_ax.set_ylim(-0.02, 1.02)
        history_ax.tick_params(labelsize=7)
        history_ax.grid(alpha=0.3)
        margin_ax = history_ax.twinx()
        margin_ax.plot(history.step[trained], history.margin[trained], "s--", ms=2, lw=0.8,
                       color="#e76f51", label="margin")  # fmt: skip
        margin_ax.axhline(0, color="#e76f51", lw=0.5, alpha=0.5)
        margin_ax.tick_params(labelsize=7, colors="#e76f51")
        s = entry.scores
        history_ax.set_title(
            f"{entry.rank}. label {entry.label_name or '-'}  {entry.flag}  AUM {s['aum']:.2f}  "
            f"confidence {s['confidence']:.2f}  variability {s['variability']:.2f}"
            + (f"  [{entry.decision}]" if entry.decision else ""),
            fontsize=7.5, loc="left",
        )  # fmt: skip
        if row == 0:
            history_ax.legend(fontsize=6, loc="upper left")
            margin_ax.legend(fontsize=6, loc="upper right")
        if row == len(queue.entries) - 1:
            history_ax.set_xlabel("training step", fontsize=7)
    return figure


def _decisions_page(project: Project, new_page: Page) -> Any:
    decisions = project.review_decisions()
    figure = new_page("Review decisions")
    active = np.isnan(decisions.undone_at)
    by_action = Counter(decisions.action[active].tolist())
    reasons = Counter(
        r for r, a in zip(decisions.reason[active], decisions.action[active], strict=True)
        if a == "exclude"
    )  # fmt: skip
    reviewers = sorted(set(decisions.reviewer.tolist()))
    figure.text(
        0.06, 0.91,
        f"{len(decisions)} decisions ({int((~active).sum())} undone) by {', '.join(reviewers)}; "
        "decisions never change the stored labels; the next run trains with those in force",
        fontsize=8, color="#444444",
    )  # fmt: skip
    count_ax, table_ax = figure.subplots(
        2, 1, gridspec_kw={"top": 0.87, "bottom": 0.04, "hspace": 0.25, "height_ratios": [1, 3]}
    )
    labels = [*by_action, *(f"exclude: {r}" for r in reasons)]
    values = [*by_action.values(), *reasons.values()]
    count_ax.barh(labels, values, color="#1f4e79")
    count_ax.invert_yaxis()
    count_ax.tick_params(labelsize=8)
    count_ax.set_xlabel("decisions in force (undone ones not counted)", fontsize=8)
    table_ax.axis("off")
    names = project.class_names()
    latest = np.argsort(-decisions.decided_at, kind="stable")[:LATEST_DECISIONS]
    rows = [
        [
            iso_time(float(decisions.decided_at[k])).replace("T", " ")[:16],
            str(int(decisions.patch_id[k])),
            str(decisions.action[k]) + (" (undone)" if not active[k] else ""),
            label_name(names, int(decisions.original_label[k]), unlabelled=""),
            label_name(names, int(decisions.label[k]), unlabelled="") or "-",
            str(decisions.reason[k])[:24],
            str(decisions.reviewer[k])[:16],
        ]
        for k in latest.tolist()
    ]
    table = table_ax.table(
        cellText=rows,
        colLabels=["when (UTC)", "patch", "decision", "was", "now", "reason", "who"],
        loc="upper center",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(7.5)
    table.scale(1.0, 1.3)
    return figure
