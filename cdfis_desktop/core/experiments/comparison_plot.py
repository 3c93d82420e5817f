"""comparison.png: the sampler comparison in one figure (matplotlib Agg, no display).

Left: the smoothed validation curve of the target metric against training seconds, per
sampler the mean over seeds and the min-max band, the target and the majority-class
baseline as horizontal lines, a triangle on the time axis where each run switched
importance sampling on, and each censored run drawn thin and dashed, ending in a cross.
Right: the per-seed time ratio to uniform (log scale; hollow = censored), with the
geometric mean and its 95 % bootstrap interval.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cdfis_desktop.core.experiments.compare import ComparisonRuns, run_curves
from cdfis_desktop.core.experiments.comparison_stats import (
    REFERENCE,
    ComparisonSummary,
    smooth,
)
from cdfis_desktop.core.reporting.files import atomic_output

if TYPE_CHECKING:
    from matplotlib.axes import Axes

_GRID_POINTS = 300


def plot_comparison(path: Path, runs: ComparisonRuns, summary: ComparisonSummary) -> Path:
    """Draw the figure into ``path`` (PNG, written atomically); returns ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 5), dpi=110)
    FigureCanvasAgg(figure)
    curves_ax, ratio_ax = figure.subplots(1, 2, gridspec_kw={"width_ratios": [2.2, 1]})
    curves = run_curves(runs)
    window = runs.protocol.smoothing_window
    outcome = {(o.sampler, o.seed): o for o in summary.outcomes}
    grid = np.linspace(0.0, summary.budget_s, _GRID_POINTS)
    colours = {}
    for s in summary.samplers:
        mine = [c for c in curves if c.sampler == s.sampler]
        stack = np.ma.masked_invalid(
            np.vstack([_hold(c.wall_s, smooth(c.values, window), grid) for c in mine])
        )
        mean, low, high = (v.filled(np.nan) for v in (stack.mean(0), stack.min(0), stack.max(0)))
        (line,) = curves_ax.plot(grid, mean, lw=2, label=f"{s.sampler} (mean of {len(mine)})")
        colour = colours[s.sampler] = line.get_color()
        curves_ax.fill_between(grid, low, high, color=colour, alpha=0.15, lw=0)
        for c, row in zip(mine, stack.filled(np.nan), strict=True):
            if not outcome[(c.sampler, c.seed)].reached:
                curves_ax.plot(grid, row, color=colour, lw=0.8, ls="--")
                curves_ax.plot(grid[-1], row[-1], marker="x", color=colour, ms=7, clip_on=False)
        switches = [c.switch_s for c in mine if math.isfinite(c.switch_s)]
        curves_ax.plot(
            switches,
            np.zeros(len(switches)),
            marker="^",
            ls="none",
            color=colour,
            ms=7,
            clip_on=False,
            transform=curves_ax.get_xaxis_transform(),
        )
    target = summary.target
    curves_ax.axhline(target.value, color="0.3", ls="--", lw=1, label=f"target {target.value:.3f}")
    curves_ax.axhline(
        target.baseline, color="0.5", ls=":", lw=1, label=f"majority baseline {target.baseline:.3f}"
    )
    curves_ax.set(
        xlim=(0, summary.budget_s),
        xlabel="training time (s, evaluation excluded)",
        ylabel=f"validation {target.metric.replace('_', ' ')} (running median of {window})",
        title=f"Smoothed validation curves, {runs.protocol.seeds} seed(s): mean and min-max\n"
        "▲ importance sampling on, dashed + × = censored run",
    )
    curves_ax.grid(alpha=0.3)
    curves_ax.legend(loc="lower right", fontsize=8)
    _ratio_panel(ratio_ax, summary, colours)
    figure.tight_layout()
    with atomic_output(path) as tmp:
        figure.savefig(tmp, format="png")
    return path


def _ratio_panel(ax: Axes, summary: ComparisonSummary, colours: dict[str, str]) -> None:
    """Per-seed time ratios to uniform, geometric mean and interval, one row per sampler."""
    outcome = {(o.sampler, o.seed): o for o in summary.outcomes}
    others = [s for s in summary.samplers if s.sampler != REFERENCE]
    if not others or not any(s.ratio.pairs for s in others):
        ax.text(
            0.5,
            0.5,
            "no ratios: uniform was not compared",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_axis_off()
        return
    for row, s in enumerate(others):
        colour = colours[s.sampler]
        for (name, seed), o in outcome.items():
            uniform = outcome.get((REFERENCE, seed))
            if name != s.sampler or uniform is None:
                continue
            ax.plot(
                o.time_s / uniform.time_s,
                row,
                "o",
                ms=6,
                color=colour,
                markerfacecolor=colour if o.reached else "none",
            )
        if s.ratio.pairs:
            ax.errorbar(
                s.ratio.estimate,
                row + 0.25,
                xerr=[
                    [s.ratio.estimate - s.ratio.ci95_low],
                    [s.ratio.ci95_high - s.ratio.estimate],
                ],
                fmt="D",
                color=colour,
                capsize=4,
            )
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.axvline(1.0, color="0.3", lw=1)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks(range(len(others)), [s.sampler for s in others])
    ax.set_ylim(-0.6, len(others) - 0.2)
    ax.set(
        xlabel="time to target / uniform's (same seed)",
        title="Per-seed ratio (hollow = censored)\n◆ geometric mean, 95 % CI",
    )
    ax.grid(alpha=0.3, axis="x")


def _hold(wall_s: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``values`` held from each validation to the next, on ``grid`` (nan before the first
    validation, the last value after the last one)."""
    position = np.searchsorted(wall_s, grid, side="right") - 1
    held = np.where(position >= 0, values[np.clip(position, 0, None)], np.nan)
    held[grid > wall_s[-1] + 1e-9] = values[-1]
    return held
