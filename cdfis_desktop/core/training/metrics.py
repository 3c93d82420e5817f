"""Classification metrics in numpy: accuracy, balanced accuracy, rank-based ROC AUC.

All functions take plain numpy arrays (``labels int[n]`` with class indices, scores or
predictions of the same length) and return Python floats. A metric that is undefined for
the input (no samples; AUC with only one class present) is ``nan``, never an exception, so
a validation set that happens to hold one class does not stop a run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassificationMetrics:
    """Metrics of one evaluation pass; ``loss`` is the mean cross-entropy in nats."""

    loss: float
    accuracy: float
    balanced_accuracy: float
    auc: float


def accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Share of ``predicted == labels``; nan when empty."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return float("nan")
    return float(np.mean(np.asarray(predicted) == labels))


def balanced_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Mean over the classes present in ``labels`` of the recall of that class; nan when empty."""
    labels = np.asarray(labels)
    predicted = np.asarray(predicted)
    classes = np.unique(labels)
    if classes.size == 0:
        return float("nan")
    recalls = [np.mean(predicted[labels == c] == c) for c in classes]
    return float(np.mean(recalls))


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve for binary ``labels`` (1 = positive, anything else negative).

    Rank-based (Mann-Whitney U): the probability that a random positive scores higher than
    a random negative, ties counted as one half (average ranks over tied scores).
    ``scores float[n]`` (higher = more positive). O(n log n). nan when either class is
    missing.
    """
    labels = np.asarray(labels).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} differ in shape")
    positive = labels == 1
    n_pos = int(positive.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = average_ranks(scores)
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values float[n]``; tied values share the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # start of each run of equal values, and the run each sorted element belongs to
    is_start = np.empty(values.size, dtype=bool)
    is_start[0] = True
    is_start[1:] = sorted_values[1:] != sorted_values[:-1]
    run_id = np.cumsum(is_start) - 1
    starts = np.flatnonzero(is_start)
    ends = np.append(starts[1:], values.size)  # exclusive
    mean_rank = (starts + 1 + ends) / 2.0  # mean of ranks start+1 .. end
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = mean_rank[run_id]
    return ranks


def classification_metrics(
    labels: np.ndarray, probabilities: np.ndarray, loss: float
) -> ClassificationMetrics:
    """Metrics from ``labels int[n]`` and class ``probabilities float[n, C]``.

    The predicted class is the argmax; AUC uses the probability of class 1 (for more than
    two classes it is the one-vs-rest AUC of class 1, documented as such in reports).
    """
    probabilities = np.asarray(probabilities)
    predicted = probabilities.argmax(axis=1) if probabilities.size else np.zeros(0, dtype=int)
    positive = probabilities[:, 1] if probabilities.size else np.zeros(0)
    return ClassificationMetrics(
        loss=float(loss),
        accuracy=accuracy(labels, predicted),
        balanced_accuracy=balanced_accuracy(labels, predicted),
        auc=roc_auc(labels, positive),
    )


BASELINE_METRICS = ("balanced_accuracy", "accuracy", "auc")


def majority_baseline(metric: str, labels: np.ndarray) -> float:
    """What a model that always predicts the most frequent class of ``labels int[n]``
    scores on them: ``accuracy`` = that class's share, ``balanced_accuracy`` = 1 / the
    number of classes present, ``auc`` = 0.5 (a constant score ranks nothing). nan when
    ``labels`` is empty. A target at or below this is met without learning."""
    if metric not in BASELINE_METRICS:
        raise ValueError(f"no baseline for metric {metric!r}; one of {BASELINE_METRICS}")
    counts = list(class_counts(labels).values())
    if not counts:
        return float("nan")
    if metric == "accuracy":
        return max(counts) / sum(counts)
    return 1.0 / len(counts) if metric == "balanced_accuracy" else 0.5


def class_counts(labels: np.ndarray) -> dict[int, int]:
    """Patches per class present in ``labels int[n]``, by ascending class."""
    classes, counts = np.unique(np.asarray(labels), return_counts=True)
    return {int(c): int(n) for c, n in zip(classes, counts, strict=True)}
