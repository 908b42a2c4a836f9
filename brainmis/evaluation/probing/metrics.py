"""Scores of a probe's test predictions: accuracy and macro-F1 (classification) or Pearson r
(regression), on all test items and on those seen / unseen in training.

An item is "seen" when a train item has the same lower-cased input texts (the probed
sentence, word or span), as in Holmes. Subset scores are left out when the subset is empty
(or, for Pearson, has fewer than 2 items).
"""

from __future__ import annotations

import numpy as np

from brainmis.evaluation.probing.holmes_reader import ProbingTask


def accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Fraction of ``(n,)`` predictions equal to the labels."""
    return float(np.mean(np.asarray(labels) == np.asarray(predictions)))


def macro_f1(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Unweighted mean of per-class F1 over every class in labels or predictions (a class
    with no true and no predicted item does not count; F1 is 0 when precision+recall is 0)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    scores = []
    for cls in np.union1d(labels, predictions):
        true_positive = np.sum((predictions == cls) & (labels == cls))
        predicted, actual = np.sum(predictions == cls), np.sum(labels == cls)
        denominator = predicted + actual
        scores.append(0.0 if denominator == 0 else 2.0 * true_positive / denominator)
    return float(np.mean(scores))


def pearson(targets: np.ndarray, predictions: np.ndarray) -> float:
    """Pearson r of ``(n,)`` values; 0 when either side is constant."""
    x = np.asarray(targets, dtype=np.float64) - np.mean(targets)
    y = np.asarray(predictions, dtype=np.float64) - np.mean(predictions)
    denominator = np.sqrt(np.sum(x * x) * np.sum(y * y))
    return float(np.sum(x * y) / denominator) if denominator > 0 else 0.0


def seen_in_training(task: ProbingTask) -> np.ndarray:
    """``(n_test,)`` bool: the test item's input texts also occur in a train item."""
    train_keys = {item.surface_key() for item in task.split("train")}
    return np.asarray([item.surface_key() in train_keys for item in task.split("test")], dtype=bool)


def score_test_predictions(
    labels: np.ndarray, predictions: np.ndarray, seen: np.ndarray, regression: bool
) -> dict[str, float]:
    """Metric name -> score for one probe: ``accuracy``, ``macro_f1`` (+ ``_seen``/``_unseen``)
    for classification, ``pearson`` (+ subsets) for regression."""
    metrics = {"pearson": pearson} if regression else {"accuracy": accuracy, "macro_f1": macro_f1}
    minimum = 2 if regression else 1
    scores: dict[str, float] = {}
    for name, metric in metrics.items():
        scores[name] = metric(labels, predictions)
        for suffix, subset in (("seen", seen), ("unseen", ~seen)):
            if subset.sum() >= minimum:
                scores[f"{name}_{suffix}"] = metric(labels[subset], predictions[subset])
    return scores
