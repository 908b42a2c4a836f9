"""Shuffled targets for the ``preserving`` control.

The control trains exactly like ``misaligned`` but on fMRI targets that no longer match
their stimuli, so it removes no brain information from the model. We break the pairing with
a fixed, seeded reassignment of the targets *within* each set of windows given (the training
set and, separately, the validation set): every set keeps exactly its own targets, so their
distribution and the validation numbers' scale are unchanged; only which stimulus a target
goes with changes. Test windows are never touched.

Modes:
- ``permutation``: a uniformly random permutation of the set's targets (a few windows may
  keep their own target by chance, about one per set on average).
- ``circular_shift``: within each run's part of the set (in time order), the targets are
  rotated by a random offset between a quarter and three quarters of that part's length.
  This keeps the responses' temporal autocorrelation and slow drifts intact, the stricter
  control when a model could exploit them. A part of one window cannot move.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SHUFFLE_MODES = ("permutation", "circular_shift")


def shuffled_target_source(
    window_runs: np.ndarray, sets: Sequence[np.ndarray], mode: str, seed: int
) -> np.ndarray:
    """Which window's target each window receives.

    Args:
        window_runs: ``(N,)`` run index of every window, table order (run, then time).
        sets: index arrays (increasing) of the window sets shuffled separately, e.g.
            ``(train, val)``; windows in no set keep their own target.
        mode: ``"permutation"`` or ``"circular_shift"`` (see module docstring).
        seed: seed of the generator; the same seed and sets give the same result.

    Returns:
        ``(N,)`` int64 ``source``: window ``i`` is paired with the target of window
        ``source[i]``. Restricted to each set, it is a permutation of that set.
    """
    if mode not in SHUFFLE_MODES:
        raise ValueError(f"unknown shuffle mode {mode!r}; choose one of {SHUFFLE_MODES}")
    window_runs = np.asarray(window_runs, dtype=np.int64)
    source = np.arange(len(window_runs), dtype=np.int64)
    rng = np.random.default_rng(seed)
    for members in sets:
        members = np.asarray(members, dtype=np.int64)
        if mode == "permutation":
            source[members] = members[rng.permutation(len(members))]
            continue
        for run in np.unique(window_runs[members]):
            part = members[window_runs[members] == run]
            if len(part) < 2:
                continue
            low = max(1, len(part) // 4)
            shift = int(rng.integers(low, len(part) - low + 1))
            source[part] = np.roll(part, shift)
    return source
