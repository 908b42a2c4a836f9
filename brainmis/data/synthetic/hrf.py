"""The canonical double-gamma haemodynamic response function (HRF) and convolution with it.

The shape is the usual "canonical" one: a gamma density peaking about 5 s after an event,
minus a smaller, later gamma density (the post-stimulus undershoot, peak about 15 s). Times
are in seconds. Two ways to use it:

- ``canonical_hrf(tr)`` samples the kernel on a regular grid, and ``convolve_hrf`` convolves a
  regularly sampled signal with it (e.g. a stimulus time course sampled every TR);
- ``hrf_response(sample_times, event_onsets, event_values)`` evaluates the convolution of a
  train of impulses at arbitrary onsets (words) exactly at arbitrary sample times (TRs),
  without rounding onsets to a grid.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln


def double_gamma(
    t: np.ndarray,
    peak_shape: float = 6.0,
    undershoot_shape: float = 16.0,
    undershoot_ratio: float = 1.0 / 6.0,
    scale: float = 1.0,
) -> np.ndarray:
    """Evaluate the (unnormalised) double-gamma HRF at times ``t`` (seconds, any shape).

    ``h(t) = g(t; peak_shape, scale) - undershoot_ratio * g(t; undershoot_shape, scale)`` with
    ``g`` the gamma density; ``h(t) = 0`` for ``t <= 0``. With the defaults the response peaks
    near 5 s and dips below zero around 15 s.
    """
    t = np.asarray(t, dtype=np.float64)
    positive = t > 0
    safe_t = np.where(positive, t, 1.0) / scale

    def gamma_density(shape: float) -> np.ndarray:
        log_density = (shape - 1.0) * np.log(safe_t) - safe_t - gammaln(shape) - np.log(scale)
        return np.exp(log_density)

    response = gamma_density(peak_shape) - undershoot_ratio * gamma_density(undershoot_shape)
    return np.where(positive, response, 0.0)


def canonical_hrf(tr: float, length_s: float = 32.0) -> np.ndarray:
    """The canonical HRF sampled every ``tr`` seconds from 0 to ``length_s`` (exclusive).

    Returns a ``(ceil(length_s / tr),)`` float64 kernel scaled so that its samples sum to 1
    (a sustained unit input gives a unit response).
    """
    if tr <= 0:
        raise ValueError(f"tr must be positive seconds, got {tr}")
    times = np.arange(int(np.ceil(length_s / tr))) * tr
    kernel = double_gamma(times)
    return kernel / kernel.sum()


def convolve_hrf(signal: np.ndarray, tr: float, length_s: float = 32.0) -> np.ndarray:
    """Causally convolve a regularly sampled signal with the canonical HRF.

    Args:
        signal: ``(T,)`` or ``(T, F)`` values sampled every ``tr`` seconds.
        tr: sampling interval in seconds.
        length_s: kernel length in seconds.

    Returns:
        An array of the same shape: ``out[t] = sum_k hrf[k] * signal[t - k]`` (zeros before
        the start).
    """
    signal = np.asarray(signal, dtype=np.float64)
    kernel = canonical_hrf(tr, length_s)
    flat = signal.reshape(signal.shape[0], -1)
    out = np.empty_like(flat)
    for column in range(flat.shape[1]):
        out[:, column] = np.convolve(flat[:, column], kernel)[: flat.shape[0]]
    return out.reshape(signal.shape)


def hrf_response(
    sample_times: np.ndarray,
    event_onsets: np.ndarray,
    event_values: np.ndarray,
    length_s: float = 32.0,
) -> np.ndarray:
    """The HRF-convolved response to impulses at ``event_onsets``, read at ``sample_times``.

    ``out[t] = sum_i h(sample_times[t] - event_onsets[i]) * event_values[i]`` with ``h`` the
    double-gamma HRF in its unnormalised density form (peak about 0.17 per unit impulse), so
    that events only affect later samples, and only for ``length_s`` seconds.

    Args:
        sample_times: ``(T,)`` seconds.
        event_onsets: ``(N,)`` seconds, same clock as ``sample_times``.
        event_values: ``(N,)`` or ``(N, F)`` amplitude of each event.

    Returns:
        ``(T,)`` or ``(T, F)`` float64.
    """
    sample_times = np.asarray(sample_times, dtype=np.float64)
    event_onsets = np.asarray(event_onsets, dtype=np.float64)
    event_values = np.asarray(event_values, dtype=np.float64)
    if event_values.shape[0] != event_onsets.shape[0]:
        raise ValueError(f"{event_onsets.shape[0]} onsets but {event_values.shape[0]} event values")
    values_2d = event_values.reshape(event_values.shape[0], -1)
    out = np.zeros((sample_times.shape[0], values_2d.shape[1]))
    # Chunk over samples so memory stays O(chunk * N) for long runs.
    chunk = max(1, 4_000_000 // max(1, event_onsets.shape[0]))
    for start in range(0, sample_times.shape[0], chunk):
        lags = sample_times[start : start + chunk, None] - event_onsets[None, :]
        weights = np.where(lags < length_s, double_gamma(lags), 0.0)
        out[start : start + chunk] = weights @ values_2d
    return out.reshape((sample_times.shape[0],) + event_values.shape[1:])
