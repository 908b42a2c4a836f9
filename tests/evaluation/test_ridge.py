"""Voxelwise ridge: agreement with sklearn and himalaya on fixed problems, edge cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge, RidgeCV

from brainmis.ridge import (
    LEAVE_ONE_OUT,
    group_splits,
    pearson_per_column,
    ridge_cv_predict,
    ridge_cv_score,
    zscore_train_apply,
)

ALPHAS = np.logspace(-2, 5, 8)


def fixed_problem(n_samples: int, n_features: int, n_voxels: int = 40, seed: int = 0):
    """Train/test split of a linear problem whose voxels range from pure noise to strong."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    weights = rng.standard_normal((n_features, n_voxels)) * rng.uniform(0, 1.5, n_voxels)
    Y = X @ weights / np.sqrt(n_features) + rng.standard_normal((n_samples, n_voxels))
    n_train = n_samples * 3 // 4
    X_train, X_test = zscore_train_apply(
        torch.tensor(X[:n_train], dtype=torch.float32),
        torch.tensor(X[n_train:], dtype=torch.float32),
    )
    Y_train, Y_test = zscore_train_apply(
        torch.tensor(Y[:n_train], dtype=torch.float32),
        torch.tensor(Y[n_train:], dtype=torch.float32),
    )
    return X_train, Y_train, X_test, Y_test


@pytest.mark.parametrize("n_features", [200, 30])  # dual (n < p) and primal (n > p) paths
def test_leave_one_out_matches_sklearn_ridgecv_alpha_per_target(n_features):
    X_train, Y_train, X_test, Y_test = fixed_problem(160, n_features)
    ours = ridge_cv_predict(X_train, Y_train, X_test, LEAVE_ONE_OUT, ALPHAS)
    reference = RidgeCV(alphas=ALPHAS, alpha_per_target=True, fit_intercept=False)
    reference.fit(X_train.double().numpy(), Y_train.double().numpy())
    np.testing.assert_allclose(ours.best_alphas.numpy(), reference.alpha_)
    r_ours = pearson_per_column(ours.predictions, Y_test)
    r_sklearn = pearson_per_column(
        torch.from_numpy(reference.predict(X_test.double().numpy())), Y_test
    )
    assert float((r_ours - r_sklearn).abs().max()) <= 1e-3
    # a test that can fail: the problem has both signal and noise voxels
    assert float(r_sklearn.max()) > 0.3


@pytest.mark.parametrize("n_features", [200, 30])
def test_grouped_folds_match_sklearn_ridge_grid(n_features):
    """Same alphas and run folds, reference built from sklearn ``Ridge`` fits per fold."""
    X_train, Y_train, X_test, Y_test = fixed_problem(160, n_features, seed=1)
    groups = np.repeat(np.arange(3), 40)
    splits = group_splits(groups)
    ours = ridge_cv_predict(X_train, Y_train, X_test, splits, ALPHAS)

    X64, Y64 = X_train.double().numpy(), Y_train.double().numpy()
    mse = np.zeros((len(ALPHAS), Y64.shape[1]))
    for train, val in splits:
        for index, alpha in enumerate(ALPHAS):
            fit = Ridge(alpha=alpha, fit_intercept=False).fit(X64[train], Y64[train])
            mse[index] += ((fit.predict(X64[val]) - Y64[val]) ** 2).mean(0) / len(splits)
    best = ALPHAS[mse.argmin(0)]
    np.testing.assert_allclose(ours.cv_mse.numpy(), mse, rtol=1e-3)
    np.testing.assert_allclose(ours.best_alphas.numpy(), best)
    prediction = np.stack(
        [
            Ridge(alpha=alpha, fit_intercept=False).fit(X64, Y64[:, v]).predict(X_test.numpy())
            for v, alpha in enumerate(best)
        ],
        axis=1,
    )
    r_reference = pearson_per_column(torch.from_numpy(prediction), Y_test)
    r_ours = pearson_per_column(ours.predictions, Y_test)
    assert float((r_ours - r_reference).abs().max()) <= 1e-3


def test_grouped_folds_match_himalaya_ridgecv():
    backend = pytest.importorskip(
        "himalaya.backend",
        reason="himalaya is not installed (the crosscheck extra: pip install -e '.[crosscheck]')",
    )
    from himalaya.ridge import RidgeCV as HimalayaRidgeCV

    backend.set_backend("torch", on_error="raise")
    X_train, Y_train, X_test, Y_test = fixed_problem(160, 60, seed=2)
    splits = group_splits(np.repeat(np.arange(4), 30))
    ours = ridge_cv_predict(X_train, Y_train, X_test, splits, ALPHAS)
    reference = HimalayaRidgeCV(alphas=ALPHAS, cv=splits).fit(X_train, Y_train)
    np.testing.assert_allclose(ours.best_alphas.numpy(), reference.best_alphas_.numpy(), rtol=1e-6)
    r_reference = pearson_per_column(torch.as_tensor(reference.predict(X_test)), Y_test)
    assert float((pearson_per_column(ours.predictions, Y_test) - r_reference).abs().max()) <= 1e-3


def test_penalty_basis_changes_nothing_measurable():
    """The low-rank penalty basis gives the same CV errors as one product per penalty."""
    X_train, Y_train, X_test, _ = fixed_problem(200, 300, seed=3)
    splits = group_splits(np.repeat(np.arange(3), 50))
    alphas = np.logspace(-2, 9, 12)
    fast = ridge_cv_predict(X_train, Y_train, X_test, splits, alphas)
    full = ridge_cv_predict(X_train, Y_train, X_test, splits, alphas, basis_tol=0.0)
    assert len(fast.basis_ranks) == len(splits)
    ranks = zip(fast.basis_ranks, full.basis_ranks, strict=True)
    assert all(fast_rank < full_rank for fast_rank, full_rank in ranks)
    np.testing.assert_allclose(fast.cv_mse.numpy(), full.cv_mse.numpy(), rtol=1e-4)
    torch.testing.assert_close(fast.predictions, full.predictions)


@pytest.mark.parametrize("n_features", [200, 30])
def test_voxel_chunks_and_reused_buffers_change_nothing(monkeypatch, n_features):
    """Chunks (a few dozen voxels in the validation step, 128 in the refit) with a narrower
    last chunk (reallocated buffers) give the numbers of a single chunk."""
    import brainmis.ridge as ridge

    X_train, Y_train, X_test, _ = fixed_problem(160, n_features, n_voxels=300, seed=7)
    splits = group_splits(np.repeat(np.arange(3), 40))
    whole = ridge_cv_predict(X_train, Y_train, X_test, splits, ALPHAS)
    monkeypatch.setattr(ridge, "_CPU_CHUNK_FLOATS", 128 * 160)  # refit: 128 voxels a chunk
    chunked = ridge_cv_predict(X_train, Y_train, X_test, splits, ALPHAS)
    torch.testing.assert_close(chunked.cv_mse, whole.cv_mse, rtol=1e-5, atol=0)
    torch.testing.assert_close(chunked.best_alphas, whole.best_alphas)
    torch.testing.assert_close(chunked.predictions, whole.predictions, rtol=1e-4, atol=1e-5)


def test_duplicated_and_constant_features_stay_finite():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((90, 20))
    X = np.concatenate([X, X, np.zeros((90, 5))], axis=1)  # rank-deficient, zero columns
    Y = X[:, :3] @ rng.standard_normal((3, 6)) + rng.standard_normal((90, 6))
    groups = np.repeat(np.arange(3), 30)
    r, alphas = ridge_cv_score(X[:60], Y[:60], X[60:], Y[60:], groups[:60], np.logspace(-2, 4, 7))
    assert torch.isfinite(r).all() and r.shape == (6,) and alphas.shape == (6,)
    assert float(r.mean()) > 0.3


def test_constant_features_predict_nothing():
    rng = np.random.default_rng(6)
    Y = rng.standard_normal((60, 3))
    r, _ = ridge_cv_score(
        np.ones((45, 4)), Y[:45], np.ones((15, 4)), Y[45:], np.repeat([0, 1, 2], 15)
    )
    torch.testing.assert_close(r, torch.zeros(3, dtype=torch.float64))


def test_zscore_uses_training_statistics_and_zeroes_constant_columns():
    train = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
    test = torch.tensor([[2.0, 7.0]])
    train_z, test_z = zscore_train_apply(train, test)
    torch.testing.assert_close(train_z, torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
    torch.testing.assert_close(test_z, torch.tensor([[0.0, 0.0]]))


def test_pearson_of_constant_column_is_zero():
    prediction = torch.tensor([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
    target = torch.tensor([[2.0, 1.0], [4.0, 2.0], [6.0, 3.0]])
    r = pearson_per_column(prediction, target)
    torch.testing.assert_close(r, torch.tensor([1.0, 0.0], dtype=torch.float64))


def test_bad_alphas_and_splits_are_refused():
    X_train, Y_train, X_test, _ = fixed_problem(40, 10)
    with pytest.raises(ValueError, match="alphas"):
        ridge_cv_predict(X_train, Y_train, X_test, LEAVE_ONE_OUT, [0.0, 1.0])
    with pytest.raises(ValueError, match="splits"):
        ridge_cv_predict(X_train, Y_train, X_test, "kfold", ALPHAS)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_gives_the_cpu_numbers():
    X_train, Y_train, X_test, Y_test = fixed_problem(160, 200, seed=5)
    splits = group_splits(np.repeat(np.arange(3), 40))
    cpu = ridge_cv_predict(X_train, Y_train, X_test, splits, ALPHAS)
    gpu = ridge_cv_predict(X_train.cuda(), Y_train.cuda(), X_test.cuda(), splits, ALPHAS)
    r_cpu = pearson_per_column(cpu.predictions, Y_test)
    r_gpu = pearson_per_column(gpu.predictions.cpu(), Y_test)
    assert float((r_cpu - r_gpu).abs().max()) <= 1e-3
