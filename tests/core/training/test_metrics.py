"""Metrics: the rank-based AUC against a brute-force pairwise count, ties included."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cdfis_desktop.core.training.metrics import (
    accuracy,
    balanced_accuracy,
    classification_metrics,
    roc_auc,
)


def brute_force_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    pos, neg = scores[labels == 1], scores[labels != 1]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_pairwise_count_with_many_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.normal(labels * 0.7, 1.0), 1)  # rounding makes many ties
    assert roc_auc(labels, scores) == pytest.approx(brute_force_auc(labels, scores), abs=1e-12)


def test_auc_extremes_and_undefined() -> None:
    labels = np.array([0, 0, 1, 1])
    assert roc_auc(labels, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert roc_auc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert roc_auc(labels, np.full(4, 0.5)) == 0.5
    assert math.isnan(roc_auc(np.ones(3), np.array([0.1, 0.2, 0.3])))
    with pytest.raises(ValueError, match="shape"):
        roc_auc(labels, np.zeros(3))


def test_accuracy_and_balanced_accuracy() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1])
    predicted = np.array([0, 0, 0, 0, 0, 1])
    assert accuracy(labels, predicted) == pytest.approx(5 / 6)
    assert balanced_accuracy(labels, predicted) == pytest.approx((1.0 + 0.5) / 2)
    assert math.isnan(accuracy(np.zeros(0), np.zeros(0)))
    assert math.isnan(balanced_accuracy(np.zeros(0), np.zeros(0)))


def test_classification_metrics_from_probabilities() -> None:
    labels = np.array([0, 1, 1, 0])
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    m = classification_metrics(labels, probabilities, loss=0.5)
    assert m.accuracy == pytest.approx(0.75)
    assert m.auc == pytest.approx(brute_force_auc(labels, probabilities[:, 1]))
    assert m.loss == 0.5
