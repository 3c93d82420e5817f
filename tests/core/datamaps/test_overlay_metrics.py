"""Training dynamics as overlay metrics of the registry, from a hand-made recorded run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cdfis_desktop.core.config import RunConfig, SamplerConfig
from cdfis_desktop.core.datamaps import data_map
from cdfis_desktop.core.heatmap.overlay import OverlayRequest, metric_values, render_overlay
from cdfis_desktop.core.storage import Project


def test_dynamics_and_regions_are_drawn_from_the_store(tmp_path: Path) -> None:
    with Project.create(tmp_path / "p") as project:
        slide_id = project.add_slide("/a.svs", fingerprint="a", width=40, height=10, mpp=0.5)
        ids = project.add_patches(
            slide_id, l0_x=np.arange(4) * 10, l0_y=0, l0_size=10, patch_px=10, mpp=0.5,
            label=0, tissue_fraction=1.0, split="train",
        )  # fmt: skip
        run_id = project.create_run(
            RunConfig(sampler=SamplerConfig(rule="uniform")), n_train=4, device="cpu"
        )
        # two epochs; patch 4 never trained; patch 1 trained twice in epoch 0
        steps = [
            (1, 0, ids[:3], [0.2, 0.9, 0.6], [-1.0, 2.0, 0.5]),
            (2, 0, ids[:1], [0.4, 0, 0], [1.0, 0, 0]),
            (3, 1, ids[:3], [0.3, 0.95, 0.1], [-0.5, 3.0, -2.0]),
        ]
        with project.history_writer(run_id) as writer:
            for step, epoch, patch_ids, p, m in steps:
                n = len(patch_ids)
                writer.record(
                    step, epoch, patch_ids, np.ones(n), np.full(n, 1 / n), np.ones(n),
                    np.ones(n), label_probability=np.array(p[:n], np.float32),
                    margin=np.array(m[:n], np.float32),
                )  # fmt: skip
        slide = project.slides()[0]
        margin = metric_values(project, run_id, slide_id, "margin").value
        np.testing.assert_allclose(margin[:3], [(-1 + 1 - 0.5) / 3, 2.5, -0.75], rtol=1e-6)
        assert np.isnan(margin[3])
        epoch_0 = metric_values(project, run_id, slide_id, "label_probability", epoch=0).value
        np.testing.assert_allclose(epoch_0[:3], [0.3, 0.9, 0.6], rtol=1e-6)
        correct = metric_values(project, run_id, slide_id, "training_correctness").value
        np.testing.assert_allclose(correct[:3], [1 / 3, 1.0, 0.5])
        no_map = metric_values(project, run_id, slide_id, "data_map_region").value
        assert np.isnan(no_map).all()  # nothing stored yet
        stored = data_map(project, run_id)
        region = metric_values(project, run_id, slide_id, "data_map_region").value
        np.testing.assert_array_equal(region[:3], stored.region[ids[:3]])
        assert np.isnan(region[3])
        overlay = render_overlay(project, OverlayRequest(slide, run_id, "data_map_region"))
        assert overlay.legend.categories == ("easy", "ambiguous", "hard to learn")
        assert overlay.rgba[..., 3].any()
