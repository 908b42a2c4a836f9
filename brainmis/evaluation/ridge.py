"""Voxelwise ridge regression with a per-voxel penalty chosen by cross-validation.

The math is written once on torch tensors and runs on CPU or CUDA. Shapes:

- ``X``: ``(n_samples, n_features)`` features (TRs x window features), float32.
- ``Y``: ``(n_samples, n_voxels)`` responses, float32.
- ``alphas``: ``(n_alphas,)`` ridge penalties.

How it stays fast. For one training set ``X_t`` (``n`` rows) the ridge prediction of rows
``X_v`` with penalty ``a`` is ``X_v W diag(1 / (lam + a)) W^T X_t^T Y_t`` where
``X_t^T X_t = W diag(lam) W^T``. Writing it over the smaller of the two Gram matrices
(``n x n`` kernel when ``n < n_features``, the ``n_features x n_features`` covariance
otherwise) gives ``A diag(1 / (lam + a)) B`` with ``A = (n_val, m)`` and ``B = (m, n_voxels)``
computed once per fold. Every penalty only rescales ``A``'s columns, and the shrinkage
vectors of all penalties span few directions (``_penalty_basis``: 12 penalties, about 7
directions at 1e-6 relative accuracy), so all penalties of a fold cost about 7 stacked
products ``(n_val, n_train) @ (n_train, V)`` in voxel batches. In the dual case the kernel is
computed once per outer fold and sliced for the inner folds. The refit with each voxel's own
penalty applies one ``(n_test, n_train)`` operator per distinct penalty. The Gram
matrix is formed in float32 and diagonalised in float64; spectral components with an
eigenvalue below ``rtol * max eigenvalue`` are dropped (a pseudo-inverse, which matters when
features are duplicated or constant).

Selection criterion: the validation mean squared error, averaged over the inner folds (the
same as himalaya's ``l2_neg_loss`` and, for leave-one-out, sklearn's ``RidgeCV``). No
intercept is fitted: the caller z-scores ``X`` and ``Y`` with training statistics
(:func:`zscore_train_apply`), so the training data are centred.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

DEFAULT_ALPHAS: np.ndarray = np.logspace(-2, 9, 12)
"""Default penalty grid: 12 values from 1e-2 to 1e9."""

LEAVE_ONE_OUT = "loo"
"""Pass as ``splits`` to select penalties by efficient leave-one-sample-out (as sklearn)."""

_BATCH_ELEMENTS = 2**24  # float32 elements per temporary block (64 MiB)


Split = tuple[np.ndarray, np.ndarray]


@dataclass
class RidgeCVResult:
    """Output of :func:`ridge_cv_predict`.

    Attributes:
        predictions: ``(n_test, n_voxels)`` float32 predictions of the test rows.
        best_alphas: ``(n_voxels,)`` float64 penalty chosen for each voxel.
        cv_mse: ``(n_alphas, n_voxels)`` float64 inner-validation mean squared error.
    """

    predictions: torch.Tensor
    best_alphas: torch.Tensor
    cv_mse: torch.Tensor


def group_splits(groups: np.ndarray | Sequence[int]) -> list[Split]:
    """Leave-one-group-out splits: for each distinct group (sorted), ``(train_idx, val_idx)``.

    Args:
        groups: ``(n_samples,)`` group label (run index) of every sample.
    """
    groups = np.asarray(groups)
    splits = []
    for group in np.unique(groups):
        val = np.flatnonzero(groups == group)
        train = np.flatnonzero(groups != group)
        splits.append((train, val))
    return splits


def zscore_train_apply(train: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Z-score columns of ``train`` and of each of ``others`` with ``train``'s mean and std.

    Columns with zero variance in ``train`` become 0 everywhere. Statistics are computed in
    float64; results keep the input dtype. Returns ``(train_z, *others_z)``.
    """
    mean = train.double().mean(0)
    std = train.double().std(0, unbiased=False)
    scale = torch.where(std > 0, 1.0 / std.clamp(min=1e-300), torch.zeros_like(std))
    out = []
    for tensor in (train, *others):
        out.append(((tensor.double() - mean) * scale).to(train.dtype))
    return tuple(out)


def pearson_per_column(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pearson r between matching columns of ``(n, V)`` tensors -> ``(V,)`` float64.

    A column with zero variance in either input gives r = 0.
    """
    p = prediction.double() - prediction.double().mean(0)
    t = target.double() - target.double().mean(0)
    denominator = p.norm(dim=0) * t.norm(dim=0)
    r = (p * t).sum(0) / denominator.clamp(min=1e-300)
    return torch.where(denominator > 0, r, torch.zeros_like(r))


@dataclass
class _Spectrum:
    """Eigen-decomposition of the smaller Gram matrix of one training set.

    ``eigenvalues``: ``(m,)`` float64 (components below tolerance removed); ``vectors``:
    ``(n_train, m)`` when ``dual`` (kernel ``X X^T``) else ``(n_features, m)`` (``X^T X``),
    in the features' dtype.
    """

    eigenvalues: torch.Tensor
    vectors: torch.Tensor
    dual: bool


def _eigen(gram: torch.Tensor, dual: bool, rtol: float) -> _Spectrum:
    eigenvalues, vectors = torch.linalg.eigh(gram.double())
    keep = eigenvalues > rtol * eigenvalues.max().clamp(min=0)
    return _Spectrum(eigenvalues[keep], vectors[:, keep].to(gram.dtype), dual)


class _FeatureGrams:
    """Gram matrices of the training rows, computed once and sliced for every inner fold.

    Dual (``n_train <= n_features``): the kernel ``K = X_train X_train^T`` ``(n, n)`` and the
    test kernel ``X_test X_train^T``. A fold's kernel is a sub-block of ``K``. Primal: the
    features themselves; a fold's covariance is recomputed.
    """

    def __init__(self, X_train: torch.Tensor, X_test: torch.Tensor):
        self.dual = X_train.shape[0] <= X_train.shape[1]
        self.X_train = X_train
        self.X_test = X_test
        if self.dual:
            self.kernel = X_train @ X_train.T
            self.test_kernel = X_test @ X_train.T

    def fold(
        self, train_idx: torch.Tensor, val_idx: torch.Tensor, rtol: float
    ) -> tuple[_Spectrum, torch.Tensor, torch.Tensor]:
        """``(spectrum, left (n_val, m), to_right (m, n_fold_train))`` of one inner fold."""
        if self.dual:
            spectrum = _eigen(self.kernel[train_idx][:, train_idx], True, rtol)
            left = self.kernel[val_idx][:, train_idx] @ spectrum.vectors
            return spectrum, left, spectrum.vectors.T
        X_fold = self.X_train[train_idx]
        spectrum = _eigen(X_fold.T @ X_fold, False, rtol)
        left = self.X_train[val_idx] @ spectrum.vectors
        return spectrum, left, spectrum.vectors.T @ X_fold.T

    def full(self, rtol: float) -> tuple[_Spectrum, torch.Tensor, torch.Tensor]:
        """``(spectrum, left (n_test, m), to_right (m, n_train))`` of all training rows."""
        if self.dual:
            spectrum = _eigen(self.kernel, True, rtol)
            return spectrum, self.test_kernel @ spectrum.vectors, spectrum.vectors.T
        spectrum = _eigen(self.X_train.T @ self.X_train, False, rtol)
        return spectrum, self.X_test @ spectrum.vectors, spectrum.vectors.T @ self.X_train.T


def _voxel_batch(n_voxels: int, rows_per_voxel: int) -> int:
    return max(1, min(n_voxels, _BATCH_ELEMENTS // max(1, rows_per_voxel)))


def _penalty_basis(
    eigenvalues: torch.Tensor, alphas: torch.Tensor, tol: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """A small basis for the shrinkage vectors of all penalties.

    The shrinkage of penalty ``a`` is ``d(a) = 1 / (eigenvalues + a)`` ``(m,)``. Penalties far
    above (or below) every eigenvalue give nearly parallel vectors, so the ``(m, n_alphas)``
    matrix of all of them has a low numerical rank. With each column scaled to a maximum of
    1, a float64 SVD keeps the ``r`` directions with singular value above ``tol`` times the
    largest, so that ``d(a) = basis @ coefficients[:, a]`` up to a relative error ~``tol``.

    Returns:
        ``basis (m, r)`` and ``coefficients (r, n_alphas)``, float64.
    """
    shrink = 1.0 / (eigenvalues[:, None] + alphas[None, :])  # (m, n_alphas)
    scale = shrink.abs().amax(0)
    u, s, vh = torch.linalg.svd(shrink / scale, full_matrices=False)
    rank = max(1, int((s > tol * s[0]).sum()))
    return u[:, :rank], (s[:rank, None] * vh[:rank]) * scale


def _fold_mse(
    spectrum: _Spectrum,
    left: torch.Tensor,
    to_right: torch.Tensor,
    Y_fold_train: torch.Tensor,
    Y_val: torch.Tensor,
    alphas: torch.Tensor,
    basis_tol: float,
) -> torch.Tensor:
    """Validation MSE ``(n_alphas, V)`` float64 of ridge fits on one inner fold.

    The validation predictions of penalty ``a`` are ``left diag(d(a)) to_right Y``. With the
    penalty basis (:func:`_penalty_basis`) they are ``sum_j c_j(a) Q_j`` where
    ``Q_j = (left diag(basis_j) to_right) Y``: ``r`` (usually 6-8 for 12 penalties) stacked
    products ``(r * n_val, n_fold_train) @ (n_fold_train, batch)`` per voxel batch instead of
    one per penalty, then a small ``(n_alphas, r)`` mix.
    """
    if spectrum.eigenvalues.numel() == 0:  # features without variance: predictions are 0
        return Y_val.double().square().mean(0).expand(len(alphas), -1).clone()
    basis, coefficients = _penalty_basis(spectrum.eigenvalues, alphas, basis_tol)
    rank, n_val = basis.shape[1], left.shape[0]
    scaled_left = left[None, :, :] * basis.T.to(left.dtype)[:, None, :]  # (r, n_val, m)
    stacked = scaled_left.reshape(rank * n_val, -1) @ to_right  # (r * n_val, n_fold_train)
    mix = coefficients.T.to(left.dtype)  # (n_alphas, r)
    n_alphas, n_voxels = len(alphas), Y_fold_train.shape[1]
    mse = torch.empty(n_alphas, n_voxels, dtype=torch.float64, device=left.device)
    batch = _voxel_batch(n_voxels, (rank + n_alphas) * n_val)
    for start in range(0, n_voxels, batch):
        cols = slice(start, start + batch)
        parts = stacked @ Y_fold_train[:, cols]  # (r * n_val, b)
        predictions = (mix @ parts.view(rank, -1)).view(n_alphas, n_val, -1)
        predictions -= Y_val[None, :, cols]
        mse[:, cols] = predictions.square_().mean(1).double()
    return mse


def _loo_mse(
    grams: _FeatureGrams, Y: torch.Tensor, alphas: torch.Tensor, rtol: float
) -> torch.Tensor:
    """Leave-one-sample-out MSE ``(n_alphas, V)`` float64 from the hat matrix (sklearn's GCV).

    With ``X = U diag(s) ...`` (thin SVD), the hat matrix of penalty ``a`` is
    ``U diag(s^2 / (s^2 + a)) U^T`` and the held-out residual of row i is
    ``(y - H y)_i / (1 - H_ii)``. Computed in float64.
    """
    everything = torch.arange(Y.shape[0], device=Y.device)
    spectrum, _, _ = grams.fold(everything, everything[:0], rtol)
    lam = spectrum.eigenvalues
    if spectrum.dual:
        U = spectrum.vectors.double()
    else:
        U = (grams.X_train.double() @ spectrum.vectors.double()) / lam.sqrt()
    Y64 = Y.double()
    UtY = U.T @ Y64  # (m, V)
    mse = torch.empty(len(alphas), Y.shape[1], dtype=torch.float64, device=Y.device)
    for index, alpha in enumerate(alphas):
        weights = lam / (lam + alpha)  # (m,)
        hat_diag = (U.square() * weights).sum(1)  # (n,)
        residual = (Y64 - U @ (weights[:, None] * UtY)) / (1.0 - hat_diag)[:, None]
        mse[index] = residual.square().mean(0)
    return mse


def ridge_cv_predict(
    X_train: torch.Tensor,
    Y_train: torch.Tensor,
    X_test: torch.Tensor,
    splits: Sequence[Split] | str,
    alphas: np.ndarray | Sequence[float] = DEFAULT_ALPHAS,
    rtol: float = 1e-6,
    basis_tol: float = 1e-6,
) -> RidgeCVResult:
    """Choose a penalty per voxel by inner cross-validation, refit on all training rows,
    predict the test rows.

    Args:
        X_train: ``(n_train, n_features)`` float32, z-scored with training statistics.
        Y_train: ``(n_train, n_voxels)`` float32, z-scored with training statistics.
        X_test: ``(n_test, n_features)`` float32, z-scored with the training statistics.
        splits: inner folds as ``(train_idx, val_idx)`` index arrays into the training rows
            (e.g. :func:`group_splits` of the run labels), or :data:`LEAVE_ONE_OUT`.
        alphas: ``(n_alphas,)`` candidate penalties (positive).
        rtol: spectral components with eigenvalue below ``rtol * max`` are dropped.
        basis_tol: relative accuracy of the penalty basis used for the inner-fold
            predictions (:func:`_penalty_basis`); 0 keeps one direction per penalty.

    Returns:
        :class:`RidgeCVResult` on the device of ``X_train``. Ties go to the smaller penalty.
    """
    device = X_train.device
    alpha_grid = torch.as_tensor(np.asarray(alphas, dtype=np.float64), device=device)
    if alpha_grid.ndim != 1 or len(alpha_grid) == 0 or bool((alpha_grid <= 0).any()):
        raise ValueError("alphas must be a non-empty 1-D sequence of positive numbers")
    grams = _FeatureGrams(X_train, X_test)
    if isinstance(splits, str):
        if splits != LEAVE_ONE_OUT:
            raise ValueError(f"splits must be index pairs or {LEAVE_ONE_OUT!r}, got {splits!r}")
        cv_mse = _loo_mse(grams, Y_train, alpha_grid, rtol)
    else:
        cv_mse = torch.zeros(len(alpha_grid), Y_train.shape[1], dtype=torch.float64, device=device)
        for train_idx, val_idx in splits:
            train_rows = torch.as_tensor(train_idx, device=device)
            val_rows = torch.as_tensor(val_idx, device=device)
            spectrum, left, to_right = grams.fold(train_rows, val_rows, rtol)
            cv_mse += _fold_mse(
                spectrum,
                left,
                to_right,
                Y_train[train_rows],
                Y_train[val_rows],
                alpha_grid,
                basis_tol,
            )
        cv_mse /= len(splits)
    best_alphas = alpha_grid[cv_mse.argmin(0)]  # first minimum: ties go to the smaller alpha
    predictions = _refit_predict(grams, Y_train, best_alphas, rtol)
    return RidgeCVResult(predictions=predictions, best_alphas=best_alphas, cv_mse=cv_mse)


def _refit_predict(
    grams: _FeatureGrams, Y_train: torch.Tensor, voxel_alphas: torch.Tensor, rtol: float
) -> torch.Tensor:
    """Test predictions ``(n_test, V)`` of ridge fits on all training rows, one penalty per
    voxel (``voxel_alphas`` ``(V,)``, values from a small grid).

    Voxels are grouped by their penalty. For a large group the operator
    ``left diag(d(a)) to_right`` ``(n_test, n_train)`` is formed once and applied to the
    group's responses (one ``n_test x n_train`` product per voxel); for a small group the
    responses go through ``to_right`` first, whichever costs fewer operations.
    """
    spectrum, left, to_right = grams.full(rtol)
    (n_test, m), n_train = left.shape, to_right.shape[1]
    n_voxels = Y_train.shape[1]
    predictions = torch.empty(n_test, n_voxels, dtype=left.dtype, device=left.device)
    for alpha in torch.unique(voxel_alphas):
        voxels = torch.nonzero(voxel_alphas == alpha).flatten()
        scaled_left = left * (1.0 / (spectrum.eigenvalues + alpha)).to(left.dtype)
        operator_cost = n_test * m * n_train + n_test * n_train * len(voxels)
        if operator_cost < (m * n_train + n_test * m) * len(voxels):
            operator = scaled_left @ to_right  # (n_test, n_train)
        else:
            operator = None
        batch = _voxel_batch(len(voxels), n_train + n_test)
        for start in range(0, len(voxels), batch):
            chunk = voxels[start : start + batch]
            if operator is not None:
                predictions[:, chunk] = operator @ Y_train[:, chunk]
            else:
                predictions[:, chunk] = scaled_left @ (to_right @ Y_train[:, chunk])
    return predictions


def ridge_cv_score(
    X_train: torch.Tensor,
    Y_train: torch.Tensor,
    X_test: torch.Tensor,
    Y_test: torch.Tensor,
    train_groups: np.ndarray | Sequence[int] | None,
    alphas: np.ndarray | Sequence[float] = DEFAULT_ALPHAS,
    device: str | torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Z-score with training statistics, fit a per-voxel-penalty ridge, score the test rows.

    Args:
        X_train: ``(n_train, n_features)`` raw features of the training TRs.
        Y_train: ``(n_train, n_voxels)`` responses of the training TRs.
        X_test: ``(n_test, n_features)``; Y_test: ``(n_test, n_voxels)``.
        train_groups: ``(n_train,)`` run label of each training TR; the inner folds leave one
            run out. ``None`` selects leave-one-sample-out.
        alphas: candidate penalties.
        device: where to compute (default: the inputs' device).

    Returns:
        ``(r, best_alphas)``: ``(n_voxels,)`` float64 Pearson r on the test rows and the
        ``(n_voxels,)`` chosen penalties, both on CPU.
    """
    device = torch.device(device) if device is not None else X_train.device
    tensors = [
        torch.as_tensor(t).to(device=device, dtype=torch.float32)
        for t in (X_train, Y_train, X_test, Y_test)
    ]
    X_tr, X_te = zscore_train_apply(tensors[0], tensors[2])
    Y_tr, Y_te = zscore_train_apply(tensors[1], tensors[3])
    splits = LEAVE_ONE_OUT if train_groups is None else group_splits(np.asarray(train_groups))
    if not isinstance(splits, str) and len(splits) < 2:
        raise ValueError("inner cross-validation needs at least 2 training runs")
    result = ridge_cv_predict(X_tr, Y_tr, X_te, splits, alphas)
    r = pearson_per_column(result.predictions, Y_te)
    return r.cpu(), result.best_alphas.cpu()
