"""Voxelwise ridge regression with a per-voxel penalty chosen by cross-validation.

The math is written once on torch tensors and runs on CPU or CUDA. Shapes:

- ``X``: ``(n_samples, n_features)`` features (TRs x window features), float32.
- ``Y``: ``(n_samples, n_voxels)`` responses, float32.
- ``alphas``: ``(n_alphas,)`` ridge penalties.

How it stays fast. For one training set ``X_t`` (``n`` rows) the ridge prediction of rows
``X_v`` with penalty ``a`` is ``X_v W diag(1 / (lam + a)) W^T X_t^T Y_t`` where
``X_t^T X_t = W diag(lam) W^T``. Writing it over the smaller of the two Gram matrices
(``n x n`` kernel when ``n < n_features``, the ``n_features x n_features`` covariance
otherwise) gives ``A diag(1 / (lam + a)) B Y_t`` with ``A = (n_val, m)`` and ``B = (m, n)``
computed once per fold. Every penalty only rescales ``A``'s columns, and the shrinkage
vectors of all penalties, weighted by the norms of ``A``'s columns, span few directions
(:func:`_penalty_basis`: 6 for the 12 default penalties on the HP-sized benchmark, at 1e-4
relative accuracy). So one product of a stacked ``(r * n_val, n)`` matrix with the
responses gives the validation predictions of every penalty, and a small second product
mixes them into each penalty's residuals (:class:`_InnerFold`). Voxels go through in chunks
of a few hundred columns that stay near the CPU's cache, with buffers reused between chunks.
In the dual case the kernel is computed once per outer fold and sliced for the inner folds.
The refit with each voxel's own penalty applies one ``(n_test, n)`` operator per distinct
penalty (:class:`_Refit`). The Gram matrix is formed in float32 and diagonalised in float64;
spectral components with an eigenvalue below ``rtol * max eigenvalue`` are dropped (a
pseudo-inverse, which matters when features are duplicated or constant).

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

_CPU_CHUNK_FLOATS = 2**22  # temporaries of a voxel chunk on CPU (16 MiB: near the cache)
_DEVICE_CHUNK_FLOATS = 2**27  # on a GPU (512 MiB: few, large products)
_CHUNK_WIDTH_STEP = 128


Split = tuple[np.ndarray, np.ndarray]


@dataclass
class RidgeCVResult:
    """Output of :func:`ridge_cv_predict`.

    Attributes:
        predictions: ``(n_test, n_voxels)`` float32 predictions of the test rows.
        best_alphas: ``(n_voxels,)`` float64 penalty chosen for each voxel.
        cv_mse: ``(n_alphas, n_voxels)`` float64 inner-validation mean squared error.
        basis_ranks: directions of the penalty basis in each inner fold (empty for
            leave-one-out).
    """

    predictions: torch.Tensor
    best_alphas: torch.Tensor
    cv_mse: torch.Tensor
    basis_ranks: tuple[int, ...] = ()


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


def _voxel_batch(n_voxels: int, floats_per_voxel: int, device: torch.device) -> int:
    """Voxels per chunk so that a chunk's temporaries stay within the device's budget: on
    CPU few enough to stay near the cache (both smaller and much larger chunks ran slower),
    on a GPU many (few, large products). A multiple of 128 where possible (BLAS products of
    odd widths run slower)."""
    budget = _CPU_CHUNK_FLOATS if device.type == "cpu" else _DEVICE_CHUNK_FLOATS
    batch = max(1, budget // max(1, floats_per_voxel))
    if batch >= _CHUNK_WIDTH_STEP:
        batch -= batch % _CHUNK_WIDTH_STEP
    return min(n_voxels, batch)


def _cheapest_chain(left: torch.Tensor, right: torch.Tensor) -> list[torch.Tensor]:
    """The matrices that apply ``left @ right`` to voxel columns at the lowest cost, in the
    order they are applied: ``[left @ right]`` when the merged operator costs fewer
    multiply-adds per voxel than ``right`` then ``left``, else ``[right, left]``."""
    merged_cost = left.shape[0] * right.shape[1]
    factored_cost = right.shape[0] * (right.shape[1] + left.shape[0])
    if merged_cost <= factored_cost:
        return [left @ right]
    return [right, left]


def _apply_chain(chain: list[torch.Tensor], columns: torch.Tensor, out=None) -> torch.Tensor:
    """``chain[-1] @ ... @ chain[0] @ columns`` (written into ``out`` when given)."""
    for matrix in chain[:-1]:
        columns = matrix @ columns
    return torch.mm(chain[-1], columns, out=out)


def _penalty_basis(
    eigenvalues: torch.Tensor, weights: torch.Tensor, alphas: torch.Tensor, tol: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """A small basis for the shrinkage vectors of all penalties, weighted by what they feed.

    The shrinkage of penalty ``a`` is ``d(a) = 1 / (eigenvalues + a)`` ``(m,)``; spectral
    component ``k`` enters the predictions through a column of norm ``weights[k]``. Penalties
    far above (or below) every eigenvalue give nearly parallel vectors, so the ``(m,
    n_alphas)`` matrix of all ``weights * d(a)``, each column scaled to unit norm, has a low
    numerical rank. A float64 SVD keeps the ``r`` directions with singular value above
    ``tol`` times the largest, so that ``weights * d(a) = basis @ coefficients[:, a]`` up to
    a relative error of about ``tol`` in the predictions.

    Returns:
        ``basis (m, r)`` (multiplies the unit-norm columns) and ``coefficients (r,
        n_alphas)``, float64.
    """
    weighted = weights[:, None] / (eigenvalues[:, None] + alphas[None, :])  # (m, n_alphas)
    scale = weighted.norm(dim=0).clamp(min=1e-300)
    u, s, vh = torch.linalg.svd(weighted / scale, full_matrices=False)
    rank = max(1, int((s > tol * s[0]).sum()))
    return u[:, :rank], (s[:rank, None] * vh[:rank]) * scale


class _InnerFold:
    """Validation errors of all penalties for one inner fold, on chunks of voxels.

    The validation predictions of penalty ``a`` are ``left diag(d(a)) to_right Y_fold_train``
    (:class:`_FeatureGrams`). With the penalty basis (:func:`_penalty_basis`) they are
    ``sum_j c_j(a) Q_j`` with ``Q_j = (left diag(basis_j) to_right) Y``: one product with a
    stacked ``(r * n_val, n_fold_train)`` matrix (``r`` is usually 5-8 for 12 penalties)
    instead of one per penalty. A second product with ``mix (n_alphas, r + 1)``, whose last
    column is -1 against the validation responses, gives every penalty's residuals.
    """

    def __init__(
        self,
        grams: _FeatureGrams,
        train_rows: torch.Tensor,
        val_rows: torch.Tensor,
        alphas: torch.Tensor,
        rtol: float,
        basis_tol: float,
    ):
        self.train_rows, self.val_rows = train_rows, val_rows
        self.buffers: tuple[torch.Tensor, ...] | None = None
        spectrum, left, to_right = grams.fold(train_rows, val_rows, rtol)
        dtype = left.dtype
        if spectrum.eigenvalues.numel() == 0:  # features without variance: predictions are 0
            self.chain = [left.new_zeros(0, to_right.shape[1])]  # no stacked parts
            self.mix = torch.full((len(alphas), 1), -1.0, dtype=dtype, device=left.device)
            self.rank = 0
            return
        weights = left.double().norm(dim=0)  # (m,)
        unit_left = left / weights.clamp(min=1e-300).to(dtype)
        basis, coefficients = _penalty_basis(spectrum.eigenvalues, weights, alphas, basis_tol)
        self.rank = basis.shape[1]
        stacked_left = unit_left[None, :, :] * basis.T.to(dtype)[:, None, :]  # (r, n_val, m)
        self.chain = _cheapest_chain(stacked_left.reshape(-1, left.shape[1]), to_right)
        minus_one = -torch.ones(len(alphas), 1, dtype=torch.float64, device=left.device)
        self.mix = torch.cat([coefficients.T, minus_one], dim=1).to(dtype)  # (n_alphas, r + 1)

    def floats_per_voxel(self) -> int:
        """Temporary floats per voxel of :meth:`mse`."""
        return len(self.train_rows) + (self.rank + 1 + self.mix.shape[0]) * len(self.val_rows)

    def mse(self, Y_chunk: torch.Tensor) -> torch.Tensor:
        """Validation MSE ``(n_alphas, b)`` float64 of the training-row responses
        ``Y_chunk`` ``(n_train, b)``."""
        n_val, n_stacked = len(self.val_rows), self.rank * len(self.val_rows)
        train, parts, residuals = self._workspace(Y_chunk)
        torch.index_select(Y_chunk, 0, self.train_rows, out=train)
        _apply_chain(self.chain, train, out=parts[:n_stacked])
        torch.index_select(Y_chunk, 0, self.val_rows, out=parts[n_stacked:])
        torch.mm(self.mix, parts.view(self.rank + 1, -1), out=residuals)
        squares = residuals.square_().view(len(self.mix), n_val, -1).sum(1)
        return squares.double() / n_val

    def _workspace(self, Y_chunk: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Buffers reused across chunks of the same width (fresh allocations of several MiB
        per chunk cost page faults): training rows ``(n_fold_train, b)``, stacked parts
        ``((r + 1) * n_val, b)``, residuals ``(n_alphas, n_val * b)``."""
        width = Y_chunk.shape[1]
        if self.buffers is None or self.buffers[0].shape[1] != width:
            n_val = len(self.val_rows)
            self.buffers = (
                Y_chunk.new_empty(len(self.train_rows), width),
                Y_chunk.new_empty((self.rank + 1) * n_val, width),
                Y_chunk.new_empty(len(self.mix), n_val * width),
            )
        return self.buffers


class _Refit:
    """Test predictions of ridge fits on all training rows, one penalty per voxel.

    Voxels are grouped by penalty; each penalty's operator ``left diag(d(a)) to_right``
    ``(n_test, n_train)`` is formed once, when a voxel first needs it, and applied to its
    group (or, when cheaper per voxel, ``to_right`` then the scaled ``left``).
    """

    def __init__(self, grams: _FeatureGrams, alphas: torch.Tensor, rtol: float):
        self.spectrum, self.left, self.to_right = grams.full(rtol)
        self.alphas = alphas
        self.chains: dict[int, list[torch.Tensor]] = {}

    @property
    def n_test(self) -> int:
        return self.left.shape[0]

    def _chain(self, index: int) -> list[torch.Tensor]:
        if index not in self.chains:
            shrink = 1.0 / (self.spectrum.eigenvalues + self.alphas[index])
            scaled_left = self.left * shrink.to(self.left.dtype)
            self.chains[index] = _cheapest_chain(scaled_left, self.to_right)
        return self.chains[index]

    def predict(self, Y_chunk: torch.Tensor, alpha_index: torch.Tensor) -> torch.Tensor:
        """``(n_test, b)`` predictions from training responses ``Y_chunk`` ``(n_train, b)``
        with penalty ``alphas[alpha_index[v]]`` for voxel ``v``."""
        predictions = Y_chunk.new_empty(self.n_test, Y_chunk.shape[1])
        for index in torch.unique(alpha_index).tolist():
            voxels = torch.nonzero(alpha_index == index).flatten()
            group = _apply_chain(self._chain(index), Y_chunk.index_select(1, voxels))
            predictions.index_copy_(1, voxels, group)
        return predictions


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
    basis_tol: float = 1e-4,
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
            predictions (:func:`_penalty_basis`); 0 keeps one direction per penalty. A
            looser tolerance flips near-tied penalties between distant values (visible in
            r); ``benchmarks/brain_eval.py`` prints the flips of the default against 0.

    Returns:
        :class:`RidgeCVResult` on the device of ``X_train``. Ties go to the smaller penalty.
    """
    device = X_train.device
    alpha_grid = torch.as_tensor(np.asarray(alphas, dtype=np.float64), device=device)
    if alpha_grid.ndim != 1 or len(alpha_grid) == 0 or bool((alpha_grid <= 0).any()):
        raise ValueError("alphas must be a non-empty 1-D sequence of positive numbers")
    grams = _FeatureGrams(X_train, X_test)
    basis_ranks: tuple[int, ...] = ()
    if isinstance(splits, str):
        if splits != LEAVE_ONE_OUT:
            raise ValueError(f"splits must be index pairs or {LEAVE_ONE_OUT!r}, got {splits!r}")
        cv_mse = _loo_mse(grams, Y_train, alpha_grid, rtol)
    else:
        folds = [
            _InnerFold(
                grams,
                torch.as_tensor(train_idx, device=device),
                torch.as_tensor(val_idx, device=device),
                alpha_grid,
                rtol,
                basis_tol,
            )
            for train_idx, val_idx in splits
        ]
        cv_mse = _grouped_cv_mse(folds, Y_train)
        basis_ranks = tuple(fold.rank for fold in folds)
        del folds  # their chunk buffers are not needed by the refit
    alpha_index = cv_mse.argmin(0)  # first minimum: ties go to the smaller alpha
    predictions = _refit_predict(_Refit(grams, alpha_grid, rtol), Y_train, alpha_index)
    return RidgeCVResult(
        predictions=predictions,
        best_alphas=alpha_grid[alpha_index],
        cv_mse=cv_mse,
        basis_ranks=basis_ranks,
    )


def _grouped_cv_mse(folds: Sequence[_InnerFold], Y_train: torch.Tensor) -> torch.Tensor:
    """Validation MSE ``(n_alphas, V)`` float64 averaged over the inner folds, in voxel
    chunks (:func:`_voxel_batch`)."""
    n_alphas, n_voxels = folds[0].mix.shape[0], Y_train.shape[1]
    cv_mse = torch.empty(n_alphas, n_voxels, dtype=torch.float64, device=Y_train.device)
    floats = max(fold.floats_per_voxel() for fold in folds)
    batch = _voxel_batch(n_voxels, floats, Y_train.device)
    for start in range(0, n_voxels, batch):
        cols = slice(start, start + batch)
        Y_chunk = Y_train[:, cols]
        cv_mse[:, cols] = sum(fold.mse(Y_chunk) for fold in folds) / len(folds)
    return cv_mse


def _refit_predict(refit: _Refit, Y_train: torch.Tensor, alpha_index: torch.Tensor) -> torch.Tensor:
    """Test predictions ``(n_test, V)``, voxel ``v`` with penalty ``alphas[alpha_index[v]]``."""
    n_voxels, device = Y_train.shape[1], Y_train.device
    predictions = torch.empty(refit.n_test, n_voxels, dtype=Y_train.dtype, device=device)
    floats = len(Y_train) + refit.n_test
    batch = _voxel_batch(n_voxels, floats, device)
    for start in range(0, n_voxels, batch):
        cols = slice(start, start + batch)
        # a contiguous copy: column gathers from a strided view are several times slower
        predictions[:, cols] = refit.predict(Y_train[:, cols].contiguous(), alpha_index[cols])
    return predictions


@dataclass
class HeldOutPredictions:
    """Output of :func:`ridge_cv_held_out`, on the device of the computation.

    Attributes:
        predictions: ``(n_test, n_voxels)`` float32 ridge predictions of the test rows.
        targets: ``(n_test, n_voxels)`` float32 test responses, z-scored with the training
            statistics (Pearson r against ``predictions`` is the held-out score).
        best_alphas: ``(n_voxels,)`` float64 penalty chosen for each voxel.
    """

    predictions: torch.Tensor
    targets: torch.Tensor
    best_alphas: torch.Tensor


def ridge_cv_held_out(
    X_train: torch.Tensor,
    Y_train: torch.Tensor,
    X_test: torch.Tensor,
    Y_test: torch.Tensor,
    train_groups: np.ndarray | Sequence[int] | None,
    alphas: np.ndarray | Sequence[float] = DEFAULT_ALPHAS,
    device: str | torch.device | None = None,
) -> HeldOutPredictions:
    """Z-score with training statistics, fit a per-voxel-penalty ridge, predict the test rows.

    Arguments as :func:`ridge_cv_score`; returns the test predictions and the z-scored test
    responses on ``device`` (default: the inputs' device).
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
    return HeldOutPredictions(result.predictions, Y_te, result.best_alphas)


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
    held_out = ridge_cv_held_out(X_train, Y_train, X_test, Y_test, train_groups, alphas, device)
    r = pearson_per_column(held_out.predictions, held_out.targets)
    return r.cpu(), held_out.best_alphas.cpu()
