"""Data-map statistics on hand-made epoch sums and histories with known answers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cdfis_desktop.core.config import RunConfig, SamplerConfig
from cdfis_desktop.core.datamaps import (
    NONE,
    RANKINGS,
    DataMapAccumulator,
    data_map,
    label_error_ranking,
    precision_at_k,
    regions,
)
from cdfis_desktop.core.errors import ReviewError
from cdfis_desktop.core.storage import Project


def _epoch(seen, probability_sum, margin_sum, correct):
    return (
        np.array(seen, np.int32),
        np.array(probability_sum, np.float32),
        np.array(margin_sum, np.float32),
        np.array(correct, np.int32),
    )


# ids 0..3: 0 unused; 1 trained once per epoch; 2 twice in epoch 0 only; 3 never
EPOCHS = [
    _epoch([0, 1, 2, 0], [0, 0.2, 1.8, 0], [0, -1.0, 4.0, 0], [0, 0, 2, 0]),
    _epoch([0, 1, 0, 0], [0, 0.6, 0, 0], [0, 0.5, 0, 0], [0, 1, 0, 0]),
]


def test_cartography_and_aum_of_hand_made_epochs() -> None:
    accumulator = DataMapAccumulator()
    for epoch in EPOCHS:
        accumulator.add_epoch(*epoch)
    result = accumulator.result()
    assert result.n_epochs == 2 and len(result) == 4
    assert result.epochs_seen.tolist() == [0, 2, 1, 0]
    np.testing.assert_allclose(result.confidence[1:3], [0.4, 0.9], rtol=1e-6)
    np.testing.assert_allclose(result.variability[1:3], [0.2, 0.0], atol=1e-6)
    np.testing.assert_allclose(result.correctness[1:3], [0.5, 1.0])
    np.testing.assert_allclose(result.aum[1:3], [-0.25, 2.0])
    np.testing.assert_allclose(result.final_loss[1:3], [-math.log(0.6), -math.log(0.9)], rtol=1e-6)
    for name in ("confidence", "variability", "correctness", "aum", "final_loss"):
        assert np.isnan(getattr(result, name)[[0, 3]]).all(), name
    assert result.trained_ids().tolist() == [1, 2]
    assert result.at("aum", np.array([2, 9])).tolist()[0] == 2.0
    assert np.isnan(result.at("aum", np.array([9]))).all()


def test_arrays_of_different_lengths_grow() -> None:
    accumulator = DataMapAccumulator()
    accumulator.add_epoch(*_epoch([0, 1], [0, 0.5], [0, 0.0], [0, 0]))
    accumulator.add_epoch(*_epoch([0, 1, 0, 1], [0, 0.7, 0, 1.0], [0, 1.0, 0, 3.0], [0, 1, 0, 1]))
    result = accumulator.result()
    assert result.epochs_seen.tolist() == [0, 2, 0, 1]
    np.testing.assert_allclose(result.confidence[[1, 3]], [0.6, 1.0], rtol=1e-6)


def test_regions_split_the_most_variable_third_then_by_confidence() -> None:
    confidence = np.array([0.9, 0.8, 0.2, 0.1, 0.5, 0.6, np.nan])
    variability = np.array([0.01, 0.02, 0.03, 0.04, 0.30, 0.40, np.nan])
    codes = regions(confidence, variability)
    # 6 valid values: the 2/3 quantile is 0.1167, so the last two are ambiguous
    assert codes.tolist() == [0, 0, 2, 2, 1, 1, NONE]
    # one epoch: no variability, nobody is ambiguous
    flat = regions(np.array([0.9, 0.2]), np.zeros(2))
    assert flat.tolist() == [0, 2]


def test_rankings_order_by_aum_or_final_loss_with_ties_broken() -> None:
    accumulator = DataMapAccumulator()
    # ids 1..5; id 4 never trained. AUM: 1 -> -2, 2 -> 1, 3 -> -2 (ties with 1, lower p), 5 -> 0
    accumulator.add_epoch(
        *_epoch(
            [0, 1, 1, 1, 0, 1], [0, 0.3, 0.9, 0.1, 0, 0.5], [0, -2, 1, -2, 0, 0], [0, 0, 1, 0, 0, 0]
        )
    )
    result = accumulator.result()
    ids = np.array([5, 4, 3, 2, 1])
    assert ids[label_error_ranking(result, ids)].tolist() == [3, 1, 5, 2]
    assert ids[label_error_ranking(result, ids, "final_loss")].tolist() == [3, 1, 5, 2]
    assert precision_at_k(np.array([3, 1, 5, 2]), np.array([1, 2]), 2) == 0.5


def test_each_ranking_orders_by_its_own_statistic() -> None:
    """Two epochs where AUM, mean label probability and last-epoch loss disagree:
    id 1: p 0.1 then 0.5, margins -1 then 3 (AUM 1.0, confidence 0.3, final loss -ln 0.5);
    id 2: p 0.45 twice, margins -0.1 twice (AUM -0.1, confidence 0.45, loss -ln 0.45);
    id 3: p 0.6 then 0.2, margins 2 then -0.5 (AUM 0.75, confidence 0.4, loss -ln 0.2)."""
    accumulator = DataMapAccumulator()
    accumulator.add_epoch(*_epoch([0, 1, 1, 1], [0, 0.1, 0.45, 0.6], [0, -1, -0.1, 2], [0] * 4))
    accumulator.add_epoch(*_epoch([0, 1, 1, 1], [0, 0.5, 0.45, 0.2], [0, 3, -0.1, -0.5], [0] * 4))
    result = accumulator.result()
    ids = np.array([1, 2, 3])
    expected = {"aum": [2, 3, 1], "confidence": [1, 3, 2], "final_loss": [3, 2, 1]}
    assert set(expected) == set(RANKINGS)
    for name, order in expected.items():
        assert ids[label_error_ranking(result, ids, name)].tolist() == order, name
    with pytest.raises(ReviewError, match="unknown ranking 'loss'"):
        label_error_ranking(result, ids, "loss")


def _record_epochs(project: Project, run_id: int, ids: np.ndarray, epochs: list[list[float]]):
    """One step per epoch training every patch once, with label probability p and margin
    ln(p / (1 - p)) (two classes)."""
    with project.history_writer(run_id, flush_every_steps=2) as writer:
        for epoch, probabilities in enumerate(epochs):
            p = np.array(probabilities, np.float32)
            writer.record(
                epoch + 1, epoch, ids, np.ones(len(ids)), np.full(len(ids), 0.25), np.ones(len(ids)),
                np.ones(len(ids)), label_probability=p, margin=np.log(p / (1 - p)).astype(np.float32),
            )  # fmt: skip


def test_data_map_of_a_stored_history_is_kept_until_the_run_records_more(
    tmp_path: Path,
) -> None:
    with Project.create(tmp_path / "p") as project:
        slide = project.add_slide("/a.svs", fingerprint="a", width=10, height=10, mpp=0.5)
        ids = project.add_patches(
            slide, l0_x=np.arange(3), l0_y=0, l0_size=1, patch_px=1, mpp=0.5, label=0,
            tissue_fraction=1.0, split="train",
        )  # fmt: skip
        run_id = project.create_run(
            RunConfig(sampler=SamplerConfig(rule="uniform")), n_train=3, device="cpu"
        )
        _record_epochs(project, run_id, ids, [[0.2, 0.9, 0.5], [0.4, 0.7, 0.5], [0.9, 0.8, 0.5]])
        first = data_map(project, run_id)
        np.testing.assert_allclose(first.confidence[ids], [0.5, 0.8, 0.5], rtol=1e-6)
        np.testing.assert_allclose(
            first.variability[ids], [np.std([0.2, 0.4, 0.9]), np.std([0.9, 0.7, 0.8]), 0.0],
            rtol=1e-5, atol=1e-7,
        )  # fmt: skip
        np.testing.assert_allclose(first.correctness[ids], [1 / 3, 1.0, 0.0])
        assert first.region[ids].tolist() == [1, 0, 0]  # the most variable third: ambiguous
        logit = np.log(np.array([0.2, 0.4, 0.9]) / (1 - np.array([0.2, 0.4, 0.9])))
        assert first.aum[ids[0]] == pytest.approx(logit.mean(), rel=1e-5)
        assert first.final_loss[ids[1]] == pytest.approx(-math.log(0.8), rel=1e-6)
        stored = project.stored_data_map(run_id)
        assert stored is not None and stored.fresh and stored.last_step == 3
        again = data_map(project, run_id)
        assert project.stored_data_map(run_id).computed_at == stored.computed_at  # type: ignore[union-attr]
        np.testing.assert_array_equal(again.aum, first.aum)
        _record_more = project.history_writer(run_id)
        _record_more.record(4, 3, ids[:1], [1.0], [1.0], [1], [1.0],
                            label_probability=np.array([0.1], np.float32),
                            margin=np.array([-3.0], np.float32))  # fmt: skip
        _record_more.close()
        assert not project.stored_data_map(run_id).fresh  # type: ignore[union-attr]
        later = data_map(project, run_id)
        assert later.epochs_seen[ids].tolist() == [4, 3, 3]
        assert later.final_loss[ids[0]] == pytest.approx(-math.log(0.1), rel=1e-6)
        assert project.stored_data_map(run_id).fresh  # type: ignore[union-attr]
