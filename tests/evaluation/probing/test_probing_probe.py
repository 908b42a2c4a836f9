"""Batched probes against the one-probe loop, early stopping, metrics against sklearn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from brainmis.evaluation.probing.metrics import accuracy, macro_f1, pearson, score_test_predictions
from brainmis.evaluation.probing.probe import (
    ProbeProblem,
    ProbeProtocol,
    lr_factor,
    train_probes,
    train_single_probe,
)


def linear_problem(
    name: str, n: int, width: int, classes: int, noise: float, seed: int
) -> ProbeProblem:
    """Labels from a random linear rule plus noise (``classes == 1``: regression)."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(width, max(classes, 1)))

    def draw(m: int):
        x = rng.normal(size=(m, width)).astype(np.float32)
        scores = x @ weights + noise * rng.normal(size=(m, max(classes, 1)))
        y = scores[:, 0].astype(np.float32) if classes == 1 else scores.argmax(1)
        return x, y

    (xt, yt), (xd, yd), (xs, _) = draw(n), draw(n // 4), draw(n // 4)
    return ProbeProblem(name, xt, yt, xd, yd, xs, classes)


def test_batched_probes_equal_the_single_probe_loop_without_dropout():
    problems = [
        linear_problem("two", 90, 6, 2, 1.0, 0),
        linear_problem("three", 130, 9, 3, 1.0, 1),  # more batches, wider, more classes
        linear_problem("regression", 70, 4, 1, 0.5, 2),
    ]
    protocol = ProbeProtocol(dropout=0.0, seeds=(0, 3), max_epochs=6, patience=2)
    batched = train_probes(problems, protocol)
    for problem, results in zip(problems, batched, strict=True):
        for result, seed in zip(results, protocol.seeds, strict=True):
            reference = train_single_probe(problem, seed, protocol)
            assert result.seed == seed and result.problem == problem.name
            assert result.epochs_trained == reference.epochs_trained
            assert result.best_dev_loss == pytest.approx(reference.best_dev_loss, rel=1e-4)
            np.testing.assert_allclose(
                result.test_predictions, reference.test_predictions, atol=1e-4
            )


def test_early_stopping_freezes_a_probe_when_dev_loss_stops_improving():
    # dev labels unrelated to train labels: dev loss rises soon, so the probe stops early
    problem = linear_problem("noise", 200, 8, 2, 0.0, 0)
    problem.y_dev = np.random.default_rng(1).integers(0, 2, len(problem.y_dev))
    fine = linear_problem("fine", 200, 8, 2, 0.0, 2)
    results = train_probes([problem, fine], ProbeProtocol(seeds=(0,), patience=2))
    assert results[0][0].epochs_trained < 20
    assert results[1][0].epochs_trained > results[0][0].epochs_trained


@pytest.mark.slow
def test_batched_probes_with_dropout_learn_like_the_loop():
    problem = linear_problem("easy", 240, 10, 3, 0.2, 5)
    rng = np.random.default_rng(5)
    truth = (problem.x_test @ rng.normal(size=(10, 3))).argmax(1)  # noiseless rule, test items
    # lr 1e-2: with lr 1e-3, 300 steps barely turn the random initial weights (Holmes data
    # sets are larger); the point here is batched vs loop under dropout
    protocol = ProbeProtocol(seeds=(0, 1, 2), learning_rate=1e-2)
    batched = [np.mean(r.test_predictions == truth) for r in train_probes([problem], protocol)[0]]
    loop = [
        np.mean(train_single_probe(problem, s, protocol).test_predictions == truth) for s in (0, 1)
    ]
    assert min(batched) > 0.8  # chance is 1/3
    assert abs(np.mean(batched) - np.mean(loop)) < 0.05


def test_learning_rate_warms_up_then_decays():
    factors = [lr_factor(step, 100, 0.1) for step in range(101)]
    assert factors[0] == 0 and factors[10] == pytest.approx(1.0)
    assert factors[5] == pytest.approx(0.5) and factors[100] == 0
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))


def test_metrics_match_sklearn_and_scipy():
    rng = np.random.default_rng(0)
    labels, predictions = rng.integers(0, 4, 60), rng.integers(0, 3, 60)
    assert accuracy(labels, predictions) == pytest.approx(np.mean(labels == predictions))
    assert macro_f1(labels, predictions) == pytest.approx(
        f1_score(labels, predictions, average="macro")
    )
    x, y = rng.normal(size=50), rng.normal(size=50)
    assert pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert pearson(x, np.ones(50)) == 0.0


def test_seen_and_unseen_scores_are_on_their_subsets():
    labels = np.array([0, 1, 1, 0, 1])
    predictions = np.array([0, 1, 0, 0, 0])
    seen = np.array([True, True, False, False, False])
    scores = score_test_predictions(labels, predictions, seen, regression=False)
    assert scores["accuracy"] == pytest.approx(3 / 5)
    assert scores["accuracy_seen"] == 1.0
    assert scores["accuracy_unseen"] == pytest.approx(1 / 3)
    only_unseen = score_test_predictions(labels, predictions, np.zeros(5, bool), regression=False)
    assert "accuracy_seen" not in only_unseen
    regression = score_test_predictions(np.arange(5.0), np.arange(5.0) * 2, seen, regression=True)
    assert set(regression) == {"pearson", "pearson_seen", "pearson_unseen"}
