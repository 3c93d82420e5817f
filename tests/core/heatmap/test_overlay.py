"""The overlay service and the metric registry on a real project (SQLite store, OpenSlide
TIFF): one path from the store to pixels for the GUI, the report and the exports."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import event

from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.heatmap import colormap_lut, is_diverging
from cdfis_desktop.core.heatmap.metrics import METRICS, measurement_metrics, metric
from cdfis_desktop.core.heatmap.overlay import (
    OverlayRequest,
    downsample_for,
    metric_values,
    render_overlay,
)
from cdfis_desktop.core.reporting import CSV_COLUMNS, export_png, patch_measurements
from cdfis_desktop.core.storage import Project


def test_registry_defaults_follow_the_kind_of_value() -> None:
    keys = [m.key for m in METRICS]
    assert len(keys) == len(set(keys))
    for entry in METRICS:
        assert entry.title and entry.definition
        if entry.kind == "categorical":
            assert entry.default_colormap is None
        elif entry.kind == "signed":
            assert is_diverging(entry.default_colormap)
        else:  # counts and scores: sequential
            assert not is_diverging(entry.default_colormap)
    assert metric("favour").kind == "signed" and metric("times_chosen").kind == "count"
    # the CSV's measurement columns are the registry's measurements, in its order
    measured = tuple(m.key for m in measurement_metrics())
    assert CSV_COLUMNS[-len(measured) :] == measured
    with pytest.raises(ConfigError, match="unknown heatmap metric 'importance'"):
        metric("importance")


def test_export_draws_favour_exactly_as_the_service(trained_project, tmp_path) -> None:
    from matplotlib.image import imread

    with Project.open(trained_project.folder) as project:
        slide = project.slides()[0]
        downsample = downsample_for(slide, max_px=256)
        overlay = render_overlay(
            project,
            OverlayRequest(slide, trained_project.run_id, "favour", downsample=downsample),
        )
        paths = export_png(
            project,
            trained_project.run_id,
            tmp_path,
            downsample_of={slide.id: downsample},
            opacity=1.0,
        )
    legend = overlay.legend
    assert legend.colormap == "RdBu_r" and np.array_equal(legend.lut, colormap_lut("RdBu_r"))
    assert legend.vmin == pytest.approx(-legend.vmax) and legend.vmax > 0
    exported = np.rint(imread(paths[0]) * 255).astype(np.uint8)
    assert np.array_equal(exported, overlay.rgba)


def test_export_of_an_epoch_view_draws_that_epoch(trained_project, tmp_path) -> None:
    """An export given the viewer's epoch draws that epoch, not the cumulative overlay,
    and says so in its file names; an unknown view option is a ConfigError."""
    from matplotlib.image import imread

    with Project.open(trained_project.folder) as project:
        slide = project.slides()[0]
        downsample = downsample_for(slide, max_px=256)
        epoch_view = OverlayRequest(
            slide, trained_project.run_id, "times_chosen", epoch=0, downsample=downsample
        )
        cumulative = OverlayRequest(
            slide, trained_project.run_id, "times_chosen", downsample=downsample
        )
        paths = export_png(
            project,
            trained_project.run_id,
            tmp_path,
            metric="times_chosen",
            downsample_of={slide.id: downsample},
            opacity=1.0,
            view={"epoch": 0},
        )
        expected = render_overlay(project, epoch_view).rgba
        assert not np.array_equal(expected, render_overlay(project, cumulative).rgba)
        with pytest.raises(ConfigError, match="view option"):
            export_png(
                project,
                trained_project.run_id,
                tmp_path / "bad",
                downsample_of={slide.id: downsample},
                view={"epok": 0},
            )
    assert paths[0].name.endswith("-times_chosen-epoch0-overlay.png")
    exported = np.rint(imread(paths[0]) * 255).astype(np.uint8)
    assert np.array_equal(exported, expected)


def test_epoch_views_share_the_range_of_the_whole_run(trained_project) -> None:
    with Project.open(trained_project.folder) as project:
        slide = project.slides()[0]
        epochs = project.epochs(trained_project.run_id)
        assert len(epochs) == 3

        def legend(epoch: int, range_over: str) -> tuple[float, float]:
            request = OverlayRequest(
                slide, trained_project.run_id, "times_chosen", epoch=epoch, range_over=range_over
            )
            drawn = render_overlay(project, request).legend
            return drawn.vmin, drawn.vmax

        fixed = {legend(e, "run") for e in epochs}
        own = {legend(e, "view") for e in epochs}
        every = np.concatenate(
            [
                metric_values(project, trained_project.run_id, slide.id, "times_chosen", e).value
                for e in epochs
            ]
        )
    assert len(fixed) == 1  # one range for every epoch of the slider
    assert len(own) > 1  # per-view ranges would differ
    low, high = fixed.pop()
    finite = every[np.isfinite(every)]
    assert (low, high) == pytest.approx(tuple(np.percentile(finite, [2, 98])))


def test_a_metric_the_run_did_not_record_says_why(trained_project) -> None:
    with Project.open(trained_project.folder) as project:
        slide = project.slides()[0]
        request = OverlayRequest(slide, trained_project.run_id, "gradnorm")
        with pytest.raises(ConfigError, match="not recorded.*scored patches by 'loss'"):
            render_overlay(project, request)
        assert metric("gradnorm").unavailable_reason(1, "gradnorm") is None
        loss = metric_values(project, trained_project.run_id, slide.id, "loss").value
        mean = metric_values(project, trained_project.run_id, slide.id, "mean_score").value
    assert np.array_equal(loss, mean, equal_nan=True)


def test_categories_and_comparisons(trained_project) -> None:
    with Project.open(trained_project.folder) as project:
        slide = project.slides()[0]
        names = project.class_names()
        label = render_overlay(project, OverlayRequest(slide, trained_project.run_id, "label"))
        difference = render_overlay(
            project,
            OverlayRequest(
                slide,
                trained_project.run_id,
                "times_chosen",
                epoch=2,
                compare="epoch",
                compare_epoch=0,
                colormap="viridis",
            ),
        )
    assert label.legend.categories[: len(names)] == tuple(names)
    assert label.value_range is None
    assert difference.legend.colormap == "RdBu_r"  # a difference is always diverging
    assert difference.legend.vmin == pytest.approx(-difference.legend.vmax)
    assert difference.legend.title == "Times chosen: epoch 2 − epoch 0"


def test_measurements_of_a_slide_are_one_aggregate_read(trained_project) -> None:
    """patch_measurements reads a slide's aggregates once (it used to read them once per
    measurement) and agrees with the per-metric values."""
    with Project.open(trained_project.folder) as project:
        slide = project.slides()[0]
        statements: list[str] = []

        @event.listens_for(project.engine, "before_cursor_execute")
        def count(conn, cursor, statement, *args) -> None:
            statements.append(statement)

        table = patch_measurements(project, trained_project.run_id, slide.id)
        event.remove(project.engine, "before_cursor_execute", count)
        favour = metric_values(project, trained_project.run_id, slide.id, "favour").value
    assert sum("run_aggregates" in s for s in statements) == 1
    assert np.array_equal(table.values["favour"], favour, equal_nan=True)
