"""Training dynamics: label probability and margin from logits, placed on record entries,
and recorded by a real run into the history and the per-epoch aggregates."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch

from cdfis_desktop.core.config import RunConfig, SamplerConfig
from cdfis_desktop.core.sampling import DrawRecord
from cdfis_desktop.core.storage.aggregates import load
from cdfis_desktop.core.training.dynamics import label_outputs, step_dynamics
from cdfis_desktop.core.training.engine import Trainer

from .synthetic_project import make_project


def test_label_probability_and_margin_of_hand_made_logits() -> None:
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 3.0, 1.0], [1.0, 1.0, 1.0], [800.0, 0, 0]])
    probability, margin = label_outputs(logits, np.array([0, 2, 1, 0]))
    expected = torch.softmax(torch.from_numpy(logits), dim=1)[[0, 1, 2, 3], [0, 2, 1, 0]]
    np.testing.assert_allclose(probability, expected.numpy(), rtol=1e-12)
    np.testing.assert_array_equal(margin, [2.0, -2.0, 0.0, 800.0])


def _record(dataset_index: list[int]) -> DrawRecord:
    n = len(dataset_index)
    return DrawRecord(
        np.array(dataset_index, dtype=np.int64),
        np.zeros(n, np.float32),
        np.full(n, 1 / n, np.float32),
        np.zeros(n, np.int32),
        np.zeros(n, np.float32),
    )


def test_step_dynamics_average_repeats_and_leave_untrained_entries_nan() -> None:
    # rows trained: index 7 twice (margins 1 and 3), index 2 once (margin -2); 5 not trained
    logits = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    labels = torch.tensor([0, 0, 0])
    trained = torch.tensor([7, 7, 2])
    dynamics = step_dynamics(logits, labels, trained, _record([2, 5, 7]))
    sigmoid = 1 / (1 + np.exp(-np.array([-2.0, 1.0, 3.0])))
    np.testing.assert_allclose(dynamics.margin[[0, 2]], [-2.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(
        dynamics.label_probability[[0, 2]], [sigmoid[0], (sigmoid[1] + sigmoid[2]) / 2], rtol=1e-6
    )
    assert np.isnan(dynamics.margin[1]) and np.isnan(dynamics.label_probability[1])


@pytest.mark.parametrize("rule", ["uniform", "cdf"])
def test_a_run_records_the_dynamics_of_every_trained_row(tmp_path: Path, rule: str) -> None:
    """History holds a label probability and margin exactly where a step trained on a patch
    (two classes: probability = sigmoid(margin) for a patch trained once), and each epoch's aggregates are their
    sums (uniform: every training patch once per epoch)."""
    project, dataset = make_project(tmp_path / "p", n_per_group=16, n_groups=4, px=32)
    sampler = SamplerConfig(rule=rule, presample_ratio=2.0, warmup="steps:2")
    config = RunConfig(
        sampler=sampler, batch_size=8, epochs=2, input_px=32, device="cpu", history_flush_steps=3
    )
    reports = list(Trainer(project, dataset=dataset).iter_run(config))
    run_id = reports[-1].run_id
    with sqlite3.connect(project.db_path) as conn:
        rows = conn.execute(
            "SELECT s.epoch, h.patch_id, h.times_chosen, h.label_probability_bits, h.margin_bits "
            "FROM history h JOIN history_steps s ON s.run_id = h.run_id "
            "AND s.step = h.block + h.step_offset WHERE h.run_id = ?",
            (run_id,),
        ).fetchall()
    chosen = np.array([r[2] for r in rows])
    has_value = np.array([r[3] is not None for r in rows])
    np.testing.assert_array_equal(has_value, chosen > 0)
    bits = np.array([(r[3], r[4]) for r in rows if r[2] == 1], dtype=np.int64)  # no averages
    probability, margin = (bits[:, k].astype(np.int32).view(np.float32) for k in (0, 1))
    np.testing.assert_allclose(probability, 1 / (1 + np.exp(-margin.astype(np.float64))), atol=1e-5)
    with project.engine.connect() as conn:
        for epoch in (0, 1):
            arrays = load(conn, run_id, epoch)
            assert arrays is not None
            mine = [(r[1], r[3], r[4]) for r in rows if r[0] == epoch and r[3] is not None]
            ids = np.array([m[0] for m in mine])
            mine_bits = np.array([m[1:] for m in mine], dtype=np.int64)
            p, m = (mine_bits[:, k].astype(np.int32).view(np.float32) for k in (0, 1))
            seen = np.bincount(ids, minlength=arrays["label_seen"].shape[0])
            np.testing.assert_array_equal(arrays["label_seen"], seen)
            sums = np.bincount(ids, p.astype(np.float64), arrays["label_seen"].shape[0])
            np.testing.assert_allclose(arrays["label_probability_sum"], sums, rtol=1e-5)
            correct = np.bincount(ids[m > 0], minlength=seen.shape[0])
            np.testing.assert_array_equal(arrays["label_correct"], correct)
            if rule == "uniform":  # each trained patch once per epoch, every one trained
                assert seen.max() == 1
                np.testing.assert_array_equal(seen > 0, arrays["times_scored"] > 0)
    project.close()
