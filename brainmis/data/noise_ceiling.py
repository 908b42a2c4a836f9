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
  mean of the other subjects (for data without repeats, e.g. Harry Potter).
- ``load_precomputed_ceiling``: a ``(V,)`` ``.npy`` file, validated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brainmis.errors import BrainmisInputError


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
