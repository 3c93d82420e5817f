"""The PDF report of a run, drawn headless with matplotlib (Agg figures + PdfPages).

Pages, in order: run configuration and provenance (software versions, seed, device, data
summary, sampler settings, the step importance sampling switched on); training curves;
the comparison with the project's other runs (table and plot, when there are others);
the conclusion and figure of the ``cdfis compare`` that made the run (when one did, see
:mod:`cdfis_desktop.core.reporting.comparisons`);
the score distribution and its CDF at a few epochs; one page per slide (thumbnail, label
and prediction overlays, favour and mean-score overlays with their legends); galleries of
the most favoured and the most ignored patches, read from the slides; the data map, the
likeliest label errors and the review decisions (:mod:`.datamap_pages`).

Thread rules: any thread (the GUI calls it from a worker); ``progress`` is called from
that thread after each page, ``cancel`` is checked between pages (a cancel raises
:class:`~cdfis_desktop.core.progress.Cancelled` and leaves no file). The file is written
atomically. Raises :class:`ExportError` when it cannot be written and the store's errors
for an unknown run.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cdfis_desktop import __version__
from cdfis_desktop.core.class_names import label_name
from cdfis_desktop.core.heatmap import LegendSpec, colormap_lut, legend_ticks
from cdfis_desktop.core.heatmap.overlay import OverlayRequest, downsample_for, render_overlay
from cdfis_desktop.core.heatmap.plaintext import literal_text
from cdfis_desktop.core.progress import CancelToken, Progress, ProgressCallback
from cdfis_desktop.core.reporting.comparisons import StoredComparison, comparison_of_run
from cdfis_desktop.core.reporting.data import patch_measurements
from cdfis_desktop.core.reporting.datamap_pages import data_map_pages
from cdfis_desktop.core.reporting.files import atomic_output
from cdfis_desktop.core.reporting.overlays import background_or_none, on_background
from cdfis_desktop.core.storage import PatchStat, Project, RunSummary, SlideRecord

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.table import Table

    from cdfis_desktop.core.heatmap import ValueRange
    from cdfis_desktop.core.slides import SlideReader

PAGE_SIZE_IN = (8.27, 11.69)  # A4 portrait
GALLERY_SIZE = 12
_OVERLAY_MAX_PX = 640
_PATCH_VIEW_PX = 128
_ACCENT = "#1f4e79"


def write_report(
    project: Project,
    run_id: int,
    path: str | os.PathLike[str],
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Write the PDF report of run ``run_id`` to ``path``; returns ``path``. Names (run,
    slides, classes) are drawn as written (:func:`literal_text`)."""
    from matplotlib.backends.backend_pdf import PdfPages

    run = project.run(run_id)
    builder = _ReportBuilder(project, run)
    pages = list(builder.pages())
    target = Path(path)
    with atomic_output(target) as tmp, literal_text():
        with PdfPages(tmp, metadata=_metadata(run)) as pdf:
            for done, (title, make_page) in enumerate(pages):
                if cancel is not None:
                    cancel.raise_if_cancelled()
                figure = make_page()
                pdf.savefig(figure)
                if progress is not None:
                    progress(Progress(done + 1, len(pages), title))
        builder.close()
    return target


def _metadata(run: RunSummary) -> dict[str, str]:
    return {
        "Title": f"cdfis run {run.id} report",
        "Subject": f"run {run.id} ({run.sampler}), seed {run.seed}",
        "Creator": f"cdfis-desktop {__version__}",
    }


class _ReportBuilder:
    """Makes the report's pages lazily (one figure at a time keeps memory flat)."""

    def __init__(self, project: Project, run: RunSummary) -> None:
        self.project = project
        self.run = run
        self.slides = project.slides()
        self.class_names = project.class_names()
        self.table = patch_measurements(project, run.id)
        self.metrics = project.metrics(run.id)
        self._readers: dict[int, SlideReader | _Unreadable] = {}

    def pages(self) -> Iterator[tuple[str, Callable[[], Figure]]]:
        yield "Run configuration", self._config_page
        yield "Training curves", self._curves_page
        others = [r for r in self.project.runs() if r.id != self.run.id]
        if others:
            yield "Comparison of samplers", lambda: self._comparison_page(others)
        stored = comparison_of_run(self.project.folder, self.run.id)
        if stored is not None:
            yield "Sampler comparison summary", lambda: self._comparison_summary_page(stored)
        if self.project.epochs(self.run.id):
            yield "Score distribution", self._scores_page
        for slide in self.slides:
            yield f"Slide {slide.name}", partial(self._slide_page, slide)
        yield "Most favoured patches", lambda: self._gallery_page(ignored=False)
        yield "Most ignored patches", lambda: self._gallery_page(ignored=True)
        yield from data_map_pages(
            self.project,
            self.run,
            new_page=_page,
            patch_image=lambda patch_id: self._patch_image(self.table.index_of(patch_id)),
        )

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()

    # ---- pages ---------------------------------------------------------------------

    def _config_page(self) -> Figure:
        run = self.run
        figure = _page(f"Run {run.id}: configuration and provenance")
        config = run.config
        sampler = config.get("sampler", {})
        switch = "not recorded" if run.switch_step is None else f"step {run.switch_step}"
        run_rows = [
            ("Run", f"{run.id}" + (f" ({run.name})" if run.name else "")),
            ("Status", run.status + (f": {run.error}" if run.error else "")),
            ("Started / ended", f"{_when(run.started_at)} / {_when(run.ended_at)}"),
            ("Duration", _duration(run.duration_s)),
            ("Steps", "-" if run.steps is None else str(run.steps)),
            ("Best val. accuracy", _number(run.best_val_accuracy)),
            ("Seed / device", f"{run.seed} / {run.device}"),
            ("Model", str(config.get("model", "-"))),
            (
                "Batch size / learning rate",
                f"{config.get('batch_size', '-')} / {config.get('learning_rate', '-')}",
            ),
            ("Stopping rule", _stopping(config)),
        ]
        sampler_rows = [
            ("Rule / mode / metric", run.sampler),
            *_mode_rows(sampler),
            *(
                [("Uniform floor", str(sampler.get("floor", "-")))]
                if sampler.get("mode") != "prune"  # pruning mixes in no uniform share
                else []
            ),
            ("Weighting", str(sampler.get("weighting", "-"))),
            ("Warm-up rule", str(sampler.get("warmup", "-"))),
            ("Importance sampling on from", switch),
        ]
        split_counts = {s: int(np.sum(self.table.split == s)) for s in ("train", "val", "test")}
        class_counts = ", ".join(
            f"{label_name(self.class_names, k)} {int(np.sum(self.table.label == k))}"
            for k in sorted(set(self.table.label.tolist()))
        )
        stored_split = (
            f" (train {split_counts['train']}, val {split_counts['val']}, "
            f"test {split_counts['test']})"
            if any(split_counts.values())
            else " (split into training and validation per run)"
        )
        data_rows = [
            ("Slides", str(len(self.slides))),
            ("Patches", f"{len(self.table)}{stored_split}"),
            ("Training patches in run", str(run.n_train)),
            ("Patches per class", class_counts or "-"),
        ]
        version_rows = [(k, str(v)) for k, v in sorted(run.versions.items())]
        version_rows.append(("report made by", f"cdfis {__version__}, {_when(time.time())}"))
        sections = [
            ("Run", run_rows),
            ("Sampler", sampler_rows),
            ("Data", data_rows),
            ("Software", version_rows),
        ]
        _key_value_sections(figure, sections, top=0.9)
        return figure

    def _curves_page(self) -> Figure:
        figure = _page(f"Run {self.run.id}: training curves")
        m = self.metrics
        axes = figure.subplots(
            3,
            1,
            gridspec_kw={"top": 0.9, "bottom": 0.06, "hspace": 0.35, "left": 0.12, "right": 0.95},
        )
        if m["step"].size == 0:
            for ax in axes:
                _empty(ax, "no metrics recorded")
            return figure
        step = m["step"]
        _series(axes[0], step, m["train_loss"], "train loss", "#555555", thin=True)
        _series(axes[0], step, m["val_loss"], "validation loss", _ACCENT)
        axes[0].set_ylabel("loss")
        for name, colour in (
            ("val_accuracy", _ACCENT),
            ("val_balanced_accuracy", "#2a9d8f"),
            ("val_auc", "#e76f51"),
        ):
            _series(
                axes[1],
                step,
                m[name],
                name.replace("val_", "validation ").replace("_", " "),
                colour,
            )
        axes[1].set_ylabel("validation")
        _series(axes[2], step, m["samples_per_s"], "samples / s", "#555555", thin=True)
        axes[2].set_ylabel("throughput (samples/s)")
        for ax in axes:
            ax.set_xlabel("step")
            if self.run.switch_step is not None:
                ax.axvline(
                    self.run.switch_step,
                    color="#c0392b",
                    ls="--",
                    lw=1,
                    label="importance sampling on",
                )
            _legend(ax)
        return figure

    def _comparison_page(self, others: list[RunSummary]) -> Figure:
        figure = _page("Comparison of samplers (all runs of the project)")
        runs = [self.run, *others]
        series = {r.id: self.project.metrics(r.id) for r in runs}
        best = [r.best_val_accuracy for r in runs if r.best_val_accuracy is not None]
        target = math.floor(min(best) * 100) / 100 if best else None
        rows = []
        for r in runs:
            reach = _time_to(series[r.id], target)
            rows.append(
                [
                    f"{r.id}{' *' if r.id == self.run.id else ''}",
                    r.sampler,
                    str(r.seed),
                    "-" if r.steps is None else str(r.steps),
                    _number(r.best_val_accuracy),
                    _duration(reach),
                    r.status,
                ]
            )
        reach_title = f"time to {target:.2f}" if target is not None else "time to target"
        table_ax = figure.add_axes((0.06, 0.62, 0.88, 0.26))
        table_ax.axis("off")
        table = table_ax.table(
            cellText=rows[:14],
            colLabels=["run", "sampler", "seed", "steps", "best val acc", reach_title, "status"],
            loc="upper center",
            cellLoc="center",
        )
        _style_table(table)
        table.auto_set_column_width(list(range(7)))
        table_ax.set_title(
            "* = this report's run; times are training wall time (evaluation excluded)",
            fontsize=8,
            loc="left",
        )
        ax = figure.add_axes((0.1, 0.08, 0.85, 0.5))
        for r in runs:
            m = series[r.id]
            valid = ~np.isnan(m["val_accuracy"])
            if valid.any():
                ax.plot(
                    m["wall_s"][valid],
                    m["val_accuracy"][valid],
                    marker="o",
                    ms=3,
                    lw=2.2 if r.id == self.run.id else 1.2,
                    label=f"run {r.id}: {r.sampler}",
                )
        if target is not None:
            ax.axhline(target, color="#888888", ls=":", lw=1, label=f"target {target:.2f}")
        ax.set_xlabel("training wall time (s)")
        ax.set_ylabel("validation accuracy")
        ax.grid(alpha=0.3)
        _legend(ax)
        return figure

    def _comparison_summary_page(self, stored: StoredComparison) -> Figure:
        import textwrap

        from matplotlib.image import imread

        figure = _page(f"Sampler comparison {stored.name}")
        figure.text(
            0.06,
            0.925,
            f"cdfis compare made this run and {len(stored.run_ids) - 1} others "
            f"(runs {', '.join(map(str, stored.run_ids))}); conclusion from its summary.md:",
            fontsize=8.5,
            color="#444444",
        )
        y = 0.9
        for item in stored.conclusion():
            for k, line in enumerate(textwrap.wrap(item.replace("`", ""), 112)):
                figure.text(
                    0.06 if k == 0 else 0.075, y, ("• " if k == 0 else "") + line, fontsize=8
                )
                y -= 0.016
            y -= 0.006
        ax = figure.add_axes((0.04, 0.05, 0.92, max(0.1, min(0.42, y - 0.08))))
        ax.axis("off")
        if stored.plot_path.is_file():
            ax.imshow(imread(stored.plot_path))
        else:
            _empty(ax, "comparison.png is missing")
        return figure

    def _scores_page(self) -> Figure:
        figure = _page(f"Run {self.run.id}: score distribution ({self.run.metric})")
        epochs = self.project.epochs(self.run.id)
        picked = sorted({epochs[round(i * (len(epochs) - 1) / 3)] for i in range(4)})
        scores = {e: self.project.score_distribution(self.run.id, epoch=e) for e in picked}
        hist_ax, cdf_ax, age_ax = figure.subplots(
            3, 1, gridspec_kw={"top": 0.9, "bottom": 0.06, "hspace": 0.42}
        )
        self._score_age_panel(age_ax)
        finite = [s[np.isfinite(s)] for s in scores.values()]
        everything = np.concatenate(finite) if finite else np.zeros(0)
        if everything.size == 0:
            _empty(hist_ax, "no scores recorded")
            _empty(cdf_ax, "no scores recorded")
            return figure
        bins = np.linspace(everything.min(), np.percentile(everything, 99.5) + 1e-9, 40)
        colours = [
            colormap_lut("viridis")[int(k)][:3] / 255 for k in np.linspace(0, 220, len(picked))
        ]
        for colour, (epoch, values) in zip(colours, scores.items(), strict=True):
            values = values[np.isfinite(values)]
            label = f"epoch {epoch} (n = {values.size})"
            hist_ax.hist(
                values, bins=bins, histtype="step", lw=1.6, color=colour, density=True, label=label
            )
            ordered = np.sort(values)
            cdf_ax.step(
                ordered,
                np.arange(1, ordered.size + 1) / ordered.size,
                where="post",
                color=colour,
                lw=1.6,
                label=label,
            )
        hist_ax.set_title("each patch's latest score in the epoch", fontsize=9, loc="left")
        hist_ax.set_xlabel(f"score ({self.run.metric})")
        hist_ax.set_ylabel("density")
        cdf_ax.set_title(
            "empirical CDF of those scores (the sampler draws through the CDF "
            "of p = score / sum of scores)",
            fontsize=9,
            loc="left",
        )
        cdf_ax.set_xlabel(f"score ({self.run.metric})")
        cdf_ax.set_ylabel("fraction of patches")
        for ax in (hist_ax, cdf_ax):
            ax.grid(alpha=0.3)
            _legend(ax)
        return figure

    def _score_age_panel(self, ax: Axes) -> None:
        """Median and 90th percentile of the score age at each epoch's end (steps)."""
        ages = self.project.score_ages(self.run.id)
        if ages.epoch.size == 0:
            _empty(ax, "no scores recorded")
            return
        _series(ax, ages.epoch, ages.median_steps, "median", _ACCENT)
        _series(ax, ages.epoch, ages.p90_steps, "90th percentile", "#c0504d")
        batch = int(self.run.config.get("batch_size") or 0)
        per_epoch = f" (an epoch: {math.ceil(self.run.n_train / batch)} steps)" if batch else ""
        last = (
            f"last epoch: median {ages.median_steps[-1]:.0f}, 90 % {ages.p90_steps[-1]:.0f} "
            f"steps{per_epoch}"
        )
        ax.set_title(
            f"age of each patch's latest score at the epoch's end; {last}", fontsize=9, loc="left"
        )
        ax.set_xlabel("epoch")
        ax.set_ylabel("score age (steps)")
        ax.grid(alpha=0.3)
        _legend(ax)

    def _slide_page(self, slide: SlideRecord) -> Figure:
        figure = _page(
            f"Slide {slide.name} (slide {slide.id}"
            + (f", case {slide.group}" if slide.group else "")
            + ")"
        )
        downsample = downsample_for(slide, max_px=_OVERLAY_MAX_PX)
        metrics = ("label", "prediction", "favour", "mean_score")
        background = background_or_none(slide, downsample)
        overlays = [
            render_overlay(
                self.project,
                OverlayRequest(slide, self.run.id, m, opacity=0.55, downsample=downsample),
            )
            for m in metrics
        ]
        grid = figure.add_gridspec(
            3, 2, top=0.9, bottom=0.04, left=0.04, right=0.96, hspace=0.28, wspace=0.12
        )
        ax = figure.add_subplot(grid[0, :])
        if background is None:
            _empty(ax, f"slide file not readable: {slide.file}")
        else:
            ax.imshow(background, interpolation="none")
            ax.set_title("slide", fontsize=9)
            ax.axis("off")
        for overlay, cell in zip(
            overlays, (grid[1, 0], grid[1, 1], grid[2, 0], grid[2, 1]), strict=True
        ):
            panel = figure.add_subplot(cell)
            panel.imshow(on_background(overlay.rgba, background), interpolation="none")
            self._legend_panel(figure, panel, overlay.legend)
        return figure

    def _legend_panel(self, figure: Figure, ax: Axes, legend: LegendSpec) -> None:
        from matplotlib.patches import Patch

        ax.set_title(legend.title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if legend.categories:
            handles = [
                Patch(facecolor=legend.lut[k][:3] / 255, label=name)
                for k, name in enumerate(legend.categories)
            ]
            ax.legend(handles=handles, fontsize=7, loc="lower right", framealpha=0.85)
            return
        assert legend.colormap is not None
        _colorbar(figure, ax, legend.colormap, legend.value_range)

    def _gallery_page(self, *, ignored: bool) -> Figure:
        word = "ignored" if ignored else "favoured"
        figure = _page(f"Run {self.run.id}: the {GALLERY_SIZE} most {word} patches")
        stats = self.project.favoured_patches(self.run.id, GALLERY_SIZE, ignored=ignored)
        rule = (
            "favour = times chosen - times uniform sampling would have chosen it "
            f"({stats[0].expected_uniform:.2f})"
            if stats
            else "no patches were scored"
        )
        figure.text(0.06, 0.915, rule, fontsize=8, color="#444444")
        n_cols = 4
        n_rows = max(1, math.ceil(GALLERY_SIZE / n_cols))
        grid = figure.add_gridspec(
            n_rows, n_cols, top=0.89, bottom=0.07, left=0.04, right=0.96, hspace=0.55, wspace=0.15
        )
        for k in range(n_rows * n_cols):
            ax = figure.add_subplot(grid[k // n_cols, k % n_cols])
            ax.set_xticks([])
            ax.set_yticks([])
            if k >= len(stats):
                ax.axis("off")
                continue
            self._gallery_cell(ax, stats[k])
        return figure

    def _gallery_cell(self, ax: Axes, stat: PatchStat) -> None:
        row = self.table.index_of(stat.patch_id)
        image = self._patch_image(row)
        if image is None:
            _empty(ax, "slide not readable")
        else:
            ax.imshow(image, interpolation="none")
        slide = next(s for s in self.slides if s.id == stat.slide_id)
        prediction = int(self.table.prediction[row])
        lines = [
            f"{_shorten(slide.name, 22)}  #{stat.patch_id}",
            f"x {stat.l0_x}, y {stat.l0_y} (l0 px)",
            f"label {label_name(self.class_names, stat.label)}, pred. "
            f"{label_name(self.class_names, prediction) if prediction >= 0 else '-'}",
            f"chosen {stat.times_chosen}/{stat.times_scored} scored, favour {stat.favour:+.1f}",
            f"mean score {stat.mean_score:.3g}, last {stat.last_score:.3g}",
        ]
        ax.set_xlabel("\n".join(lines), fontsize=6.5, linespacing=1.3)

    def _patch_image(self, row: int) -> np.ndarray | None:
        from cdfis_desktop.core.errors import SlideOpenError

        slide_id = int(self.table.slide_id[row])
        if slide_id not in self._readers:
            slide = next(s for s in self.slides if s.id == slide_id)
            try:
                self._readers[slide_id] = slide.open()
            except SlideOpenError:
                self._readers[slide_id] = _Unreadable()
        reader = self._readers[slide_id]
        if isinstance(reader, _Unreadable):
            return None
        patch_px, mpp = int(self.table.patch_px[row]), float(self.table.mpp[row])
        view_px = min(patch_px, _PATCH_VIEW_PX)
        return reader.read_region_at_mpp(
            int(self.table.l0_x[row]),
            int(self.table.l0_y[row]),
            view_px,
            view_px,
            mpp * patch_px / view_px,
        )


class _Unreadable:
    """Placeholder for a slide whose file could not be opened (gallery shows a note)."""

    def close(self) -> None:
        """Nothing to close."""


# ---- drawing helpers ----------------------------------------------------------------


def _page(title: str) -> Figure:
    from matplotlib.figure import Figure as MplFigure

    figure = MplFigure(figsize=PAGE_SIZE_IN, facecolor="white")
    figure.text(0.06, 0.955, title, fontsize=14, weight="bold", color=_ACCENT)
    figure.add_artist(_rule(figure))
    figure.text(
        0.94, 0.015, f"cdfis-desktop {__version__}", fontsize=7, color="#888888", ha="right"
    )
    return figure


def _rule(figure: Figure) -> Line2D:
    from matplotlib.lines import Line2D

    return Line2D([0.06, 0.94], [0.945, 0.945], transform=figure.transFigure, color=_ACCENT, lw=1.0)


def _key_value_sections(
    figure: Figure, sections: Sequence[tuple[str, Sequence[tuple[str, str]]]], *, top: float
) -> None:
    y = top
    for heading, rows in sections:
        figure.text(0.06, y, heading, fontsize=11, weight="bold", color=_ACCENT)
        y -= 0.028
        for key, value in rows:
            figure.text(0.08, y, key, fontsize=8.5, color="#444444")
            figure.text(0.40, y, _shorten(value, 80), fontsize=8.5, family="monospace")
            y -= 0.021
        y -= 0.018


def _style_table(table: Table) -> None:
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1.0, 1.4)
    for (row, _), cell in table.get_celld().items():
        cell.set_edgecolor("#cccccc")
        if row == 0:
            cell.set_facecolor("#e8eef5")
            cell.set_text_props(weight="bold")


def _colorbar(figure: Figure, ax: Axes, colormap: str, value_range: ValueRange) -> None:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize

    low, high = value_range.low, value_range.high
    if value_range.span == 0:
        low, high = low - 0.5, high + 0.5
    mappable = ScalarMappable(
        Normalize(low, high), ListedColormap(colormap_lut(colormap)[:, :3] / 255)
    )
    bar = figure.colorbar(mappable, ax=ax, orientation="horizontal", fraction=0.05, pad=0.03)
    ticks = legend_ticks(value_range)
    bar.set_ticks([t.value for t in ticks], labels=[t.text for t in ticks])
    bar.ax.tick_params(labelsize=7)


def _series(
    ax: Axes, x: np.ndarray, y: np.ndarray, label: str, colour: str, *, thin: bool = False
) -> None:
    valid = ~np.isnan(y)
    if not valid.any():
        return
    if thin:
        ax.plot(x[valid], y[valid], color=colour, lw=0.8, alpha=0.7, label=label)
    else:
        ax.plot(x[valid], y[valid], color=colour, lw=1.8, marker="o", ms=3, label=label)
    ax.grid(alpha=0.3)


def _legend(ax: Axes) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best", framealpha=0.85)


def _empty(ax: Axes, message: str) -> None:
    ax.text(
        0.5,
        0.5,
        message,
        ha="center",
        va="center",
        fontsize=9,
        color="#888888",
        transform=ax.transAxes,
        wrap=True,
    )
    ax.set_xticks([])
    ax.set_yticks([])


def _time_to(metrics: dict[str, np.ndarray], target: float | None) -> float | None:
    if target is None:
        return None
    reached = np.nonzero(metrics["val_accuracy"] >= target)[0]
    return float(metrics["wall_s"][reached[0]]) if reached.size else None


def _mode_rows(sampler: dict[str, Any]) -> list[tuple[str, str]]:
    """The configuration rows that matter for the sampler's mode (a presample ratio means
    nothing to a history run)."""
    mode = sampler.get("mode", "presample")
    if sampler.get("rule") == "uniform":
        return []
    if mode == "history":
        return [("Stalest rescored per step", f"{sampler.get('refresh', '-')} x batch")]
    if mode == "prune":
        return [
            ("Prune ratio", str(sampler.get("prune_ratio", "-"))),
            ("Full data for the last", f"{sampler.get('prune_tail', '-')} of the run"),
        ]
    rows = [("Presample ratio (B / b)", str(sampler.get("presample_ratio", "-")))]
    if sampler.get("train_fraction", 1.0) != 1.0:
        rows.append(("Trained share of each batch", str(sampler["train_fraction"])))
    if sampler.get("score_scale", 1.0) != 1.0:
        rows.append(("Scored at input scale", str(sampler["score_scale"])))
    return rows


def _stopping(config: dict[str, Any]) -> str:
    parts = [
        f"{name} {config[key]}"
        for key, name in (
            ("epochs", "epochs"),
            ("time_budget_s", "time budget (s)"),
            ("max_steps", "steps"),
        )
        if config.get(key) is not None
    ]
    return ", ".join(parts) or "-"


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def _number(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
