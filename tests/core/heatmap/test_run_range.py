"""The run-wide range of the time slider (``range_over="run"``) is cached per run, slide
and metric, equals the recomputed one, and is recomputed once a live run writes a new
epoch (real SQLite store, real history writer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event

from cdfis_desktop.core.config import RunConfig, SamplerConfig
from cdfis_desktop.core.heatmap.metrics import metric
from cdfis_desktop.core.heatmap.overlay import OverlayRequest, render_overlay
from cdfis_desktop.core.heatmap.run_range import compute_run_range, run_range
from cdfis_desktop.core.storage import Project

N_SIDE = 20


def _record_epoch(writer, project_ids: np.ndarray, epoch: int, scale: float, seed: int) -> None:
    """Two steps of history in ``epoch`` whose scores are ``scale`` times gamma draws."""
    rng = np.random.default_rng(seed)
    for step_in_epoch in range(2):
        score = (rng.gamma(2.0, 0.3, project_ids.size) * scale).astype(np.float32)
        prob = score / score.sum()
        chosen = rng.multinomial(64, prob / prob.sum(dtype=np.float64)).astype(np.int32)
        writer.record(
            epoch * 2 + step_in_epoch + 1,
            epoch,
            project_ids,
            score,
            prob.astype(np.float32),
            chosen,
            chosen.astype(np.float32),
        )


@pytest.fixture
def live_run(tmp_path: Path):
    """A project (no slide file is opened) with a running history-mode run: 2 epochs."""
    project = Project.create(tmp_path / "project")
    slide_id = project.add_slide(
        "/nowhere/slide.tiff", fingerprint="f", width=N_SIDE * 100, height=N_SIDE * 100, mpp=0.25
    )
    k = np.arange(N_SIDE * N_SIDE)
    ids = project.add_patches(
        slide_id,
        l0_x=(k % N_SIDE) * 100,
        l0_y=(k // N_SIDE) * 100,
        l0_size=100,
        patch_px=64,
        mpp=0.5,
        label=k % 2,
        tissue_fraction=1.0,
        split="train",
    )
    run_id = project.create_run(
        RunConfig(sampler=SamplerConfig(rule="cdf", mode="history")), n_train=ids.size
    )
    writer = project.history_writer(run_id, flush_every_steps=1)
    for epoch in range(2):
        _record_epoch(writer, ids, epoch, scale=1.0, seed=epoch)
    yield project, run_id, project.slides()[0], ids, writer
    writer.close()
    project.close()


def _aggregate_reads(project: Project) -> list[str]:
    reads: list[str] = []
    event.listen(
        project.engine,
        "before_cursor_execute",
        lambda _c, _cur, sql, *_a: reads.append(sql) if "run_aggregates" in sql else None,
    )
    return reads


def test_cached_range_equals_the_recomputed_one_and_reads_one_epoch(live_run) -> None:
    project, run_id, slide, _ids, _writer = live_run
    entry = metric("last_score")
    first = run_range(project, run_id, slide.id, entry, "viridis")
    assert first == compute_run_range(project, run_id, slide.id, entry, "viridis")
    reads = _aggregate_reads(project)
    request = OverlayRequest(slide, run_id, "last_score", epoch=1, colormap="viridis")
    drawn = render_overlay(project, request).legend
    assert (drawn.vmin, drawn.vmax) == (first.low, first.high)
    # the shown epoch only: no query for epoch 0, none listing the epochs
    assert len(reads) == 1, reads


def test_a_new_epoch_of_a_live_run_invalidates_the_cached_range(live_run) -> None:
    project, run_id, slide, ids, writer = live_run
    entry = metric("last_score")
    before = run_range(project, run_id, slide.id, entry, "viridis")
    _record_epoch(writer, ids, 2, scale=10.0, seed=2)  # scores 10x larger
    writer.flush()
    after = run_range(project, run_id, slide.id, entry, "viridis")
    assert after == compute_run_range(project, run_id, slide.id, entry, "viridis")
    assert after.high > before.high * 2


def test_ranges_are_cached_per_metric_and_colormap_kind(live_run) -> None:
    project, run_id, slide, _ids, _writer = live_run
    for key, colormap in (("last_score", "viridis"), ("favour", "coolwarm")):
        entry = metric(key)
        assert run_range(project, run_id, slide.id, entry, colormap) == compute_run_range(
            project, run_id, slide.id, entry, colormap
        )
    diverging = run_range(project, run_id, slide.id, metric("last_score"), "coolwarm")
    assert diverging.low == -diverging.high  # not the sequential range cached above
