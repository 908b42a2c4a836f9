"""Noise targets for the ``noise_adversary`` condition.

``noise_adversary`` trains exactly like ``misaligned`` (gradient reversal before the head)
against targets that have the voxels' statistics but no relation to the stimulus at all:
it bounds what adversarial training does to a model by itself. (``preserving`` differs: its
targets are the real responses, paired with the wrong stimuli.)

Per set of windows (training and validation separately, like the shuffle), per run inside
it and per voxel, the real targets' mean, standard deviation and lag-1 autocorrelation
``phi`` (over consecutive windows, i.e. consecutive TRs) are measured, and a seeded AR(1)
series ``z_t = phi z_{t-1} + sqrt(1 - phi^2) eps_t`` (stationary, unit variance, started
from its stationary distribution) is standardised and scaled to exactly that mean and standard deviation. The targets are
z-scored per run, so the noise is too (up to the part's own small deviations from 0 and 1).
Test windows keep their true targets; ``true_targets`` are never replaced.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_AUTOCORRELATION = 0.99  # |phi| cap: keeps sqrt(1 - phi^2) away from 0


def lag1_autocorrelation(values: np.ndarray) -> np.ndarray:
    """Lag-1 autocorrelation of every column over the rows.

    Args:
        values: ``(T, V)`` series in time order.

    Returns:
        ``(V,)`` float64 in ``[-0.99, 0.99]``; 0 for a column with zero variance or T < 3.
    """
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 3:
        return np.zeros(values.shape[1])
    centred = values - values.mean(axis=0, keepdims=True)
    variance = (centred * centred).sum(axis=0)
    lagged = (centred[1:] * centred[:-1]).sum(axis=0)
    phi = np.divide(lagged, variance, out=np.zeros_like(variance), where=variance > 0)
    return np.clip(phi, -MAX_AUTOCORRELATION, MAX_AUTOCORRELATION)


def ar1_series(phi: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """``(length, V)`` stationary unit-variance AR(1) series with coefficients ``phi (V,)``."""
    phi = np.asarray(phi, dtype=np.float64)
    innovation_scale = np.sqrt(1.0 - phi * phi)
    shocks = rng.standard_normal((length, len(phi)))
    series = np.empty((length, len(phi)))
    series[0] = shocks[0]
    for t in range(1, length):
        series[t] = phi * series[t - 1] + innovation_scale * shocks[t]
    return series


def matched_noise_targets(
    targets: np.ndarray, window_runs: np.ndarray, sets: Sequence[np.ndarray], seed: int
) -> np.ndarray:
    """Targets replaced by matched AR(1) noise within ``sets`` (see the module docstring).

    Args:
        targets: ``(N, V)`` real targets, table order (run, then time).
        window_runs: ``(N,)`` run index of every window.
        sets: index arrays (increasing) of the window sets given noise, e.g. ``(train,
            val)``; windows in no set keep their real target.
        seed: seed of the generator; the same seed and sets give the same noise.

    Returns:
        ``(N, V)`` float32: per set and run, noise with the part's per-voxel mean, standard
        deviation and lag-1 autocorrelation; a constant voxel stays constant.
    """
    targets = np.asarray(targets, dtype=np.float32)
    window_runs = np.asarray(window_runs, dtype=np.int64)
    result = targets.copy()
    rng = np.random.default_rng(seed)
    for members in sets:
        members = np.asarray(members, dtype=np.int64)
        for run in np.unique(window_runs[members]):
            part = members[window_runs[members] == run]
            real = targets[part].astype(np.float64)
            mean, std = real.mean(axis=0), real.std(axis=0)
            series = ar1_series(lag1_autocorrelation(real), len(part), rng)
            if len(part) > 1:  # exactly the part's mean and standard deviation
                series = (series - series.mean(axis=0)) / series.std(axis=0)
            result[part] = (mean + std * series).astype(np.float32)
    return result
