"""The encoder-free measures (RSA, linear CKA, Procrustes) on planted data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brainmis.errors import BrainmisInputError
from brainmis.evaluation.brain.similarity import (
    held_out_similarity,
    linear_cka,
    parse_metrics,
    procrustes_distance,
    procrustes_similarity,
    rsa,
)


def random_orthogonal(size: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((size, size)))
    return q * np.sign(np.diag(r))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_identical_representations_score_one(rng):
    x = rng.standard_normal((80, 12))
    assert rsa(x, x) == pytest.approx(1.0)
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert procrustes_similarity(x, x) == pytest.approx(1.0)


def test_unrelated_representations_score_near_zero(rng):
    x, y = rng.standard_normal((400, 5)), rng.standard_normal((400, 5))
    assert abs(rsa(x, y)) < 0.05
    # CKA and Procrustes of independent noise are small but positive (finite-sample bias)
    assert linear_cka(x, y) < 0.05
    assert procrustes_similarity(x, y) < 0.2


def test_cka_ignores_rotation_and_isotropic_scaling_but_not_anisotropic(rng):
    x = rng.standard_normal((60, 8))
    y = x @ rng.standard_normal((8, 20)) + 0.5 * rng.standard_normal((60, 20))
    base = linear_cka(x, y)
    assert 0.2 < base < 0.99
    assert linear_cka(3.0 * x @ random_orthogonal(8, rng), y) == pytest.approx(base)
    assert linear_cka(x, 0.1 * y @ random_orthogonal(20, rng)) == pytest.approx(base)
    stretched = x * np.array([10.0, 1, 1, 1, 1, 1, 1, 1])
    assert linear_cka(stretched, y) != pytest.approx(base, abs=1e-3)


def test_cka_gram_form_equals_feature_form(rng):
    x, y = rng.standard_normal((30, 7)), rng.standard_normal((30, 11))
    xc, yc = x - x.mean(0), y - y.mean(0)
    expected = np.linalg.norm(xc.T @ yc) ** 2 / (
        np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)
    )
    assert linear_cka(x, y) == pytest.approx(expected)


def test_procrustes_of_a_rotated_shifted_scaled_copy_is_perfect(rng):
    x = rng.standard_normal((50, 6))
    y = 4.0 * x @ random_orthogonal(6, rng) + 2.0
    assert procrustes_similarity(x, y) == pytest.approx(1.0)
    assert procrustes_distance(procrustes_similarity(x, y)) == pytest.approx(0.0, abs=1e-6)
    noisy = y + 3.0 * rng.standard_normal(y.shape)
    assert procrustes_similarity(x, noisy) < 0.95


def test_procrustes_distance_matches_the_optimal_rotation(rng):
    x, y = rng.standard_normal((40, 5)), rng.standard_normal((40, 5))
    xn = (x - x.mean(0)) / np.linalg.norm(x - x.mean(0))
    yn = (y - y.mean(0)) / np.linalg.norm(y - y.mean(0))
    u, _, vt = np.linalg.svd(xn.T @ yn)
    best = np.linalg.norm(xn @ (u @ vt) - yn)
    assert procrustes_distance(procrustes_similarity(x, y)) == pytest.approx(best)


def test_rsa_ignores_each_trs_offset_and_gain_but_not_a_shuffle_of_trs(rng):
    x = rng.standard_normal((40, 10))
    gains, offsets = rng.uniform(0.5, 3.0, (40, 1)), rng.standard_normal((40, 1))
    assert rsa(x, gains * x + offsets) == pytest.approx(1.0)
    assert abs(rsa(x, x[rng.permutation(40)])) < 0.2


def test_held_out_similarity_per_roi_orders_planted_alignment(rng):
    n_per_run, runs = 60, 3
    latent = rng.standard_normal((n_per_run * runs, 6))
    window_runs = np.repeat(np.arange(runs), n_per_run)
    responses = np.concatenate(
        [latent @ rng.standard_normal((6, 10)), rng.standard_normal((len(latent), 10))], axis=1
    )
    features = latent @ rng.standard_normal((6, 30)) + 0.1 * rng.standard_normal((len(latent), 30))
    masks = {
        "driven": np.arange(20) < 10,
        "noise": np.arange(20) >= 10,
        "empty": np.zeros(20, bool),
    }
    scores = held_out_similarity(features, responses, window_runs, test_run=2, roi_masks=masks)
    assert set(scores) == {"rsa", "cka", "procrustes"}
    for metric, score in scores.items():
        assert score.per_roi["driven"] > score.per_roi["noise"] + 0.2, metric
        assert np.isnan(score.per_roi["empty"])
        assert score.per_roi["noise"] < score.all, metric
        assert set(score.to_json()) == {"all", "per_roi"}
        assert score.to_json()["per_roi"]["empty"] is None


def test_parse_metrics_orders_and_refuses_unknown_names():
    assert parse_metrics("cka, ridge,rsa,cka") == ("ridge", "rsa", "cka")
    with pytest.raises(BrainmisInputError, match="--metrics: got foo; choose"):
        parse_metrics("ridge,foo")
    with pytest.raises(BrainmisInputError, match="metrics: got nothing"):
        parse_metrics("", option="metrics")


def test_principal_projection_spans_the_top_components_orthonormally(rng):
    from brainmis.evaluation.brain.similarity import principal_projection

    wide = rng.standard_normal((20, 50)) * np.linspace(3, 0.1, 50)
    tall = rng.standard_normal((80, 6)) * np.linspace(3, 0.5, 6)
    for train in (wide, tall):
        axes = principal_projection(torch.as_tensor(train), 4).numpy()
        np.testing.assert_allclose(axes.T @ axes, np.eye(4), atol=1e-8)
        _, _, vh = np.linalg.svd(train - train.mean(0), full_matrices=False)
        np.testing.assert_allclose(np.abs(axes.T @ vh[:4].T), np.eye(4), atol=1e-6)
