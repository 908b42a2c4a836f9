"""Per-voxel noise ceilings: from repeated presentations, across subjects, or from a file.

All functions return one value per voxel in correlation units (Pearson r) unless stated, and
never NaN: a voxel without measurable signal (zero variance, no repeatable part) gets 0.

- ``noise_ceiling_from_repeats``: Schoppe et al. (2016) ``cc_max``, the highest correlation a
  perfect model can reach with the mean of ``N`` repeats (or, with ``n_averaged=1``, with a
  single scan). With ``TP = mean_n var_t(r_n)`` (total power),
  ``SP = (N var_t(m) - TP) / (N - 1)`` (signal power, ``m`` the mean over repeats):
  ``cc_max = 1 / sqrt(1 + (TP / SP - 1) / n_averaged)``.
- ``explainable_variance``: ``var_t(m) / mean_n var_t(r_n)``, optionally bias-corrected
  ``ev - (1 - ev) / (N - 1)``.
- ``inter_subject_ceiling``: cross-validated prediction of each subject's voxel from the
  mean of the other subjects' same voxel (needs a common voxel space).
- ``predictive_inter_subject_ceiling``: each voxel of a subject predicted from the first
  principal components of the other subjects' responses with the run-grouped ridge of the
  brain-alignment evaluation (no common space needed: Harry Potter subjects are in native
  space, with different voxel counts).
- ``load_precomputed_ceiling``: a ``(V,)`` ``.npy`` file, validated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from brainmis.errors import BrainmisInputError

if TYPE_CHECKING:
    import torch


def _check_repeats(repeats: np.ndarray) -> np.ndarray:
    repeats = np.asarray(repeats, dtype=np.float64)
    if repeats.ndim != 3 or repeats.shape[0] < 2 or repeats.shape[1] < 2:
        raise ValueError(f"repeats must be (n_repeats >= 2, T >= 2, V), got shape {repeats.shape}")
    return repeats


def _signal_and_total_power(repeats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``SP (V,)`` and ``TP (V,)`` of Schoppe et al. (population variances over time)."""
    n_repeats = repeats.shape[0]
    total_power = repeats.var(axis=1).mean(axis=0)
    mean_power = repeats.mean(axis=0).var(axis=0)
    signal_power = (n_repeats * mean_power - total_power) / (n_repeats - 1)
    return signal_power, total_power


def noise_ceiling_from_repeats(repeats: np.ndarray, n_averaged: int | None = None) -> np.ndarray:
    """Schoppe ``cc_max`` per voxel from repeated presentations of the same stimulus.

    Args:
        repeats: ``(n_repeats, T, V)`` responses to ``n_repeats`` presentations.
        n_averaged: number of scans averaged in the response the ceiling refers to; default
            ``n_repeats`` (the mean of the repeats, Schoppe's definition). Use 1 for the
            ceiling of a single scan (the form of non-repeated training runs).

    Returns:
        ``(V,)`` float64 in [0, 1]; voxels with ``SP <= 0`` (no repeatable signal) or
        non-finite values get 0.
    """
    repeats = _check_repeats(repeats)
    n_averaged = repeats.shape[0] if n_averaged is None else int(n_averaged)
    if n_averaged < 1:
        raise ValueError(f"n_averaged must be >= 1, got {n_averaged}")
    signal_power, total_power = _signal_and_total_power(repeats)
    usable = np.isfinite(signal_power) & np.isfinite(total_power) & (signal_power > 0)
    ratio = np.divide(total_power, signal_power, out=np.ones_like(total_power), where=usable)
    ceiling = 1.0 / np.sqrt(1.0 + np.maximum(ratio - 1.0, 0.0) / n_averaged)
    return np.where(usable, ceiling, 0.0)


def explainable_variance(repeats: np.ndarray, bias_corrected: bool = True) -> np.ndarray:
    """Fraction of a voxel's variance that repeats across presentations.

    Args:
        repeats: ``(n_repeats, T, V)``.
        bias_corrected: subtract the expected value under pure noise,
            ``ev - (1 - ev) / (n_repeats - 1)``.

    Returns:
        ``(V,)`` float64 (can be slightly negative when bias-corrected); 0 where a voxel has
        zero variance.
    """
    repeats = _check_repeats(repeats)
    n_repeats = repeats.shape[0]
    total_power = repeats.var(axis=1).mean(axis=0)
    mean_power = repeats.mean(axis=0).var(axis=0)
    usable = np.isfinite(total_power) & np.isfinite(mean_power) & (total_power > 0)
    ev = np.divide(mean_power, total_power, out=np.zeros_like(total_power), where=usable)
    if bias_corrected:
        ev = ev - (1.0 - ev) / (n_repeats - 1)
    return np.where(usable, ev, 0.0)


def _zscore_within_runs(responses: np.ndarray, runs: np.ndarray) -> np.ndarray:
    out = np.zeros_like(responses, dtype=np.float64)
    for run in np.unique(runs):
        rows = runs == run
        block = responses[rows]
        std = block.std(axis=0)
        out[rows] = np.where(
            std > 0, (block - block.mean(axis=0)) / np.where(std > 0, std, 1.0), 0.0
        )
    return out


def _pearson_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-column Pearson r of two ``(T, V)`` arrays; 0 where either column is constant."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    denominator = np.sqrt((a**2).sum(axis=0) * (b**2).sum(axis=0))
    numerator = (a * b).sum(axis=0)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def inter_subject_ceiling(
    responses: list[np.ndarray], runs: np.ndarray, zscore_runs: bool = True
) -> np.ndarray:
    """Cross-validated inter-subject ceiling: how well the others predict each subject.

    For subject ``s`` and held-out run ``k``: the predictor is the mean response of the other
    subjects; a per-voxel linear map ``y = a x + b`` is fitted on the other runs by least
    squares and applied to run ``k``; the score is Pearson r on run ``k``. Scores are averaged
    over the runs (folds). With few subjects this underestimates the true ceiling (the mean of
    the others is itself noisy): with two subjects of equal ceiling ``c`` it tends to ``c**2``.

    Args:
        responses: one ``(T, V)`` array per subject, rows aligned (same stimuli, same TRs).
        runs: ``(T,)`` run label of every row; at least 2 distinct runs.
        zscore_runs: z-score every voxel within each run first (removes run offsets).

    Returns:
        ``(n_subjects, V)`` float64; 0 for voxels that are constant within a fold.
    """
    if len(responses) < 2:
        raise ValueError("an inter-subject ceiling needs at least 2 subjects")
    runs = np.asarray(runs)
    shapes = {np.shape(r) for r in responses}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2 or next(iter(shapes))[0] != runs.shape[0]:
        raise ValueError(
            f"responses must all be (T={runs.shape[0]}, V); got shapes {sorted(shapes)}"
        )
    labels = np.unique(runs)
    if labels.size < 2:
        raise ValueError("an inter-subject ceiling needs at least 2 runs")
    data = [np.asarray(r, dtype=np.float64) for r in responses]
    if zscore_runs:
        data = [_zscore_within_runs(r, runs) for r in data]
    total = np.sum(data, axis=0)
    ceilings = np.zeros((len(data), data[0].shape[1]))
    for index, target in enumerate(data):
        others = (total - target) / (len(data) - 1)
        scores = []
        for run in labels:
            train, test = runs != run, runs == run
            x, y = others[train], target[train]
            x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
            x_var = ((x - x_mean) ** 2).sum(axis=0)
            slope = np.divide(
                ((x - x_mean) * (y - y_mean)).sum(axis=0),
                x_var,
                out=np.zeros_like(x_var),
                where=x_var > 0,
            )
            prediction = slope * (others[test] - x_mean) + y_mean
            scores.append(_pearson_columns(prediction, target[test]))
        ceilings[index] = np.mean(scores, axis=0)
    return ceilings


DEFAULT_CEILING_COMPONENTS = 50
"""Principal components of the other subjects' responses used as predictors (``k``)."""


def predictive_ceiling_method(n_components: int, inner: str = "leave-one-run-out") -> str:
    """The method name stored with a predictive inter-subject ceiling."""
    return (
        f"predictive inter-subject (PCA k={n_components}, ridge, leave-one-run-out"
        + ("" if inner == "leave-one-run-out" else f", inner {inner}")
        + ")"
    )


def _zscore_float32(responses: np.ndarray, runs: np.ndarray) -> np.ndarray:
    """``(T, V)`` float32 z-scored per run (float64 statistics); constant or non-finite
    columns of a run become 0."""
    out = np.empty(np.shape(responses), dtype=np.float32)
    for run in np.unique(runs):
        rows = np.flatnonzero(runs == run)
        block = np.asarray(responses[rows], dtype=np.float64)
        mean, std = block.mean(axis=0), block.std(axis=0)
        usable = np.isfinite(std) & (std > 0)
        scaled = (block - mean) / np.where(usable, std, 1.0)
        out[rows] = np.where(usable, scaled, 0.0)
    return out


def predictive_inter_subject_ceiling(
    responses: Sequence[np.ndarray],
    runs: np.ndarray,
    n_components: int = DEFAULT_CEILING_COMPONENTS,
    alphas: Sequence[float] | np.ndarray | None = None,
    targets: Sequence[int] | None = None,
    device: str | None = None,
    on_subject: Callable[[int, float], None] | None = None,
) -> list[np.ndarray | None]:
    """Cross-validated ceiling of every voxel, predicted from the other subjects' responses.

    For subject ``s`` and held-out run ``k``: every subject's responses are z-scored within
    each run; the other subjects' voxels, side by side ``(T, sum V_o)``, are reduced to their
    first ``n_components`` principal components fitted on the training runs only (runs
    ``!= k``; the test rows are projected on those components); a ridge with a penalty per
    voxel, chosen by leave-one-run-out cross-validation inside the training runs
    (``brainmis.ridge``, the brain-alignment ridge; leave-one-TR-out when only one
    training run is left), maps the components to subject ``s``'s voxels; the score is the
    Pearson r on run ``k``. Scores are averaged over the runs (folds). The subjects need no
    common voxel space, only a common stimulus timeline (rows aligned).

    The principal components come from the ``(T, T)`` Gram matrix of each subject, computed
    once: the others' Gram is the sum over all subjects minus the target's, and its training
    block gives the components (a kernel PCA with a linear kernel, its leading eigenpairs by
    randomized subspace iteration; the per-run z-scoring already centres the training rows).
    The cost is one ``T x T x V`` product per subject plus ``n_subjects x n_runs`` ridges
    with ``n_components`` features (measured single-threaded: ~3.5 ms of CPU per voxel of
    an 8-subject, 1211-TR, 4-run problem, all subjects, i.e. ~1.5 min for 8 x 25k voxels).

    Args:
        responses: one ``(T, V_s)`` array per subject (memmaps are fine), rows aligned.
        runs: ``(T,)`` run label of every row; at least 2 distinct runs.
        n_components: principal components kept (fewer when the training rows have fewer).
        alphas: ridge penalties (default ``brainmis.ridge.DEFAULT_ALPHAS``).
        targets: indices of the subjects to compute (default all); the others only predict.
        device: torch device of the ridge (default CPU).
        on_subject: called after each target subject with its index and the seconds it took.

    Returns:
        One ``(V_s,)`` float64 array per subject (None for subjects not in ``targets``); 0 for
        voxels constant within a run.
    """
    # The evaluation's ridge is a dependency-free numerical module (numpy + torch, no
    # brainmis imports): using it here adds no import cycle, and the data layer gets the
    # same estimator as the brain-alignment score. Imported here so that importing this
    # module stays light (torch) for the repeat-based ceilings.
    import torch

    from brainmis.ridge import DEFAULT_ALPHAS, ridge_cv_score

    runs = np.asarray(runs)
    if len(responses) < 2:
        raise ValueError("an inter-subject ceiling needs at least 2 subjects")
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1, got {n_components}")
    for index, array in enumerate(responses):
        if np.ndim(array) != 2 or np.shape(array)[0] != runs.shape[0]:
            raise ValueError(
                f"subject {index}: responses must be (T={runs.shape[0]}, V), got {np.shape(array)}"
            )
    labels = np.unique(runs)
    if labels.size < 2:
        raise ValueError("an inter-subject ceiling needs at least 2 runs")
    alphas = DEFAULT_ALPHAS if alphas is None else np.asarray(alphas, dtype=np.float64)
    targets = list(range(len(responses))) if targets is None else [int(t) for t in targets]

    where = torch.device(device) if device is not None else torch.device("cpu")
    grams = []
    for array in responses:
        z = torch.from_numpy(_zscore_float32(array, runs)).to(where)
        grams.append((z @ z.T).double())  # (T, T), float32 products
        del z
    total = torch.stack(grams).sum(0)

    ceilings: list[np.ndarray | None] = [None] * len(responses)
    for index in targets:
        start = time.perf_counter()
        target = torch.from_numpy(_zscore_float32(responses[index], runs)).to(where)
        others = total - grams[index]
        scores = np.zeros(target.shape[1])
        for run in labels:
            train, test = np.flatnonzero(runs != run), np.flatnonzero(runs == run)
            x_train, x_test = _principal_components(others, train, test, n_components)
            train_runs = runs[train]
            groups = train_runs if np.unique(train_runs).size >= 2 else None
            rows_train = torch.as_tensor(train, device=where)
            rows_test = torch.as_tensor(test, device=where)
            r, _ = ridge_cv_score(
                x_train,
                target.index_select(0, rows_train),
                x_test,
                target.index_select(0, rows_test),
                groups,
                alphas,
                device=where,
            )
            scores += r.numpy()
        ceilings[index] = scores / labels.size
        if on_subject is not None:
            on_subject(index, time.perf_counter() - start)
    return ceilings


def _principal_components(
    gram: torch.Tensor, train: np.ndarray, test: np.ndarray, n_components: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores ``(n_train, k)`` and ``(n_test, k)`` float32 on the first ``k`` principal
    components of the training rows, from the ``(T, T)`` float64 Gram matrix of the
    predictors (on its device).

    With ``X_train X_train^T = U diag(lam) U^T``, the training scores are ``U sqrt(lam)`` and
    a test row ``x`` scores ``x X_train^T U / sqrt(lam)`` (its projection on the components);
    components with ``lam <= 1e-10 * max`` are dropped. The leading eigenpairs come from
    ``_leading_eigenpairs`` (a randomized subspace iteration, as in randomized PCA).
    Everything stays in torch: mixing numpy's BLAS threads with torch's made a loaded 2-core
    machine ~15x slower.
    """
    import torch

    train_t = torch.as_tensor(train, device=gram.device)
    test_t = torch.as_tensor(test, device=gram.device)
    block = gram.index_select(0, train_t).index_select(1, train_t)
    eigenvalues, vectors = _leading_eigenpairs(block, n_components)
    keep = eigenvalues > 1e-10 * eigenvalues.max().clamp(min=1e-300)
    eigenvalues, vectors = eigenvalues[keep], vectors[:, keep]
    if eigenvalues.numel() == 0:  # the others are constant: nothing to predict from
        zeros = gram.new_zeros((len(train) + len(test), 1), dtype=torch.float32)
        return zeros[: len(train)], zeros[len(train) :]
    root = eigenvalues.sqrt()
    x_train = vectors * root
    x_test = gram.index_select(0, test_t).index_select(1, train_t) @ vectors / root
    return x_train.float(), x_test.float()


def _leading_eigenpairs(
    matrix: torch.Tensor,
    n_components: int,
    oversample: int = 10,
    n_iter: int = 4,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest eigenvalues ``(k,)`` (descending) and eigenvectors ``(n, k)`` of a
    symmetric positive semi-definite ``(n, n)`` matrix.

    Randomized subspace iteration (Halko, Martinsson & Tropp 2011, as in randomized PCA):
    ``k + oversample`` seeded random directions, ``n_iter`` multiplications by the matrix
    with re-orthonormalisation, then the eigenpairs of the small projected matrix. The
    leading components are accurate; those near ``k`` in a flat (noise) spectrum only span
    about the right subspace, which is all a ridge on the scores needs. A full ``eigh`` of
    a 908 x 908 matrix (an HP training set) costs ~10x more and ran slowly when threads are
    scarce. Small matrices (``n <= k + oversample``) get the exact ``eigh``.
    """
    import torch

    n = matrix.shape[0]
    width = n_components + oversample
    if n <= width:
        eigenvalues, vectors = torch.linalg.eigh(matrix)
        return eigenvalues.flip(0)[:n_components], vectors.flip(1)[:, :n_components]
    generator = torch.Generator().manual_seed(seed)
    start = torch.randn(n, width, generator=generator, dtype=matrix.dtype).to(matrix.device)
    basis = torch.linalg.qr(matrix @ start).Q
    for _ in range(n_iter):
        basis = torch.linalg.qr(matrix @ basis).Q
    eigenvalues, small = torch.linalg.eigh(basis.T @ matrix @ basis)  # ascending
    vectors = basis @ small
    return eigenvalues.flip(0)[:n_components], vectors.flip(1)[:, :n_components]


def load_precomputed_ceiling(path: str | Path, n_voxels: int) -> np.ndarray:
    """Load a ``(V,)`` per-voxel ceiling from ``.npy`` and validate it.

    Raises ``BrainmisInputError`` naming the file when it is missing, pickled/object, not
    one-dimensional, not ``n_voxels`` long, not finite, or outside [-1, 1].
    """
    path = Path(path)
    if not path.is_file():
        raise BrainmisInputError(path, "noise ceiling file not found")
    try:
        values = np.load(path, allow_pickle=False)
    except ValueError:
        raise BrainmisInputError(
            path, "holds a pickled/object array; save a plain float array"
        ) from None
    except OSError as error:
        raise BrainmisInputError(path, f"not a readable .npy file ({error})") from None
    if not isinstance(values, np.ndarray) or values.dtype.kind not in "fiu":
        raise BrainmisInputError(
            path, f"noise ceiling must be numeric, got dtype {getattr(values, 'dtype', '?')}"
        )
    if values.ndim != 1 or values.shape[0] != n_voxels:
        raise BrainmisInputError(
            path, f"noise ceiling has shape {values.shape}, expected ({n_voxels},)"
        )
    values = values.astype(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise BrainmisInputError(path, f"noise ceiling has {int(bad.sum())} NaN/Inf values")
    if np.abs(values).max(initial=0.0) > 1.0 + 1e-6:
        raise BrainmisInputError(path, "noise ceiling values must be correlations in [-1, 1]")
    return values
