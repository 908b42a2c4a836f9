"""Train / validation / test windows of one fold.

Folds go over runs: fold ``k`` holds out run ``k`` as the test set (k-fold over runs). The
validation set is, by default, the last ``val_fraction`` of the remaining (training) windows
in presentation order, i.e. the end of the last training run(s). We take a contiguous block
at the end rather than random windows because neighbouring TRs share words (overlapping
windows) and slow BOLD drifts: random validation windows would sit between training windows
and overstate generalisation. No gap is left between the training and validation blocks; the
first ``context_trs - 1`` validation windows share context words with the last training
windows, which is negligible next to the block's size. Alternatively a whole named run can
be the validation set (``val_run``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from brainmis.errors import BrainmisInputError


@dataclass
class FoldSplit:
    """Indices into the window table, each increasing.

    Attributes:
        train: ``(n_train,)`` int64 training windows.
        val: ``(n_val,)`` int64 validation windows.
        test: ``(n_test,)`` int64 windows of the held-out run.
        test_run: index of the held-out run.
        val_run: index of the validation run, or None when validation is a tail fraction.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    test_run: int
    val_run: int | None = None


def fold_split(
    window_runs: np.ndarray,
    run_names: Sequence[str],
    fold: int,
    val_fraction: float = 0.2,
    val_run: str | None = None,
    source: str | None = None,
) -> FoldSplit:
    """Split windows for fold ``fold``.

    Args:
        window_runs: ``(N,)`` run index of every window, in table order (run, then time).
        run_names: names of the runs, indexed by run index.
        fold: index of the run held out for testing, ``0 <= fold < len(run_names)``.
        val_fraction: fraction of the training windows (the last ones in presentation
            order) kept for validation, ``0 <= val_fraction < 1``; ignored with ``val_run``.
        val_run: name of a run to use whole as the validation set instead.
        source: file or dataset named in error messages.

    Returns:
        The ``FoldSplit``.

    Raises:
        BrainmisInputError: fewer than 2 runs, fold out of range, unknown or test
            ``val_run``, ``val_fraction`` out of range, or an empty training set.
    """
    window_runs = np.asarray(window_runs, dtype=np.int64)
    n_runs = len(run_names)
    if n_runs < 2:
        raise BrainmisInputError(source, f"needs at least 2 runs for folds over runs, has {n_runs}")
    if not 0 <= fold < n_runs:
        raise BrainmisInputError(
            source, f"fold {fold} out of range: {n_runs} runs give folds 0..{n_runs - 1}"
        )
    is_test = window_runs == fold
    test = np.flatnonzero(is_test)
    rest = np.flatnonzero(~is_test)
    val_index = None
    if val_run is not None:
        if val_run not in run_names:
            raise BrainmisInputError(
                source, f"val_run {val_run!r} is not a run; runs are {', '.join(run_names)}"
            )
        val_index = list(run_names).index(val_run)
        if val_index == fold:
            raise BrainmisInputError(
                source, f"val_run {val_run!r} is the test run of fold {fold}; choose another"
            )
        in_val = window_runs[rest] == val_index
        train, val = rest[~in_val], rest[in_val]
    else:
        if not 0 <= val_fraction < 1:
            raise BrainmisInputError(source, f"val_fraction must be in [0, 1), got {val_fraction}")
        n_val = math.ceil(round(val_fraction * len(rest), 9))
        train, val = rest[: len(rest) - n_val], rest[len(rest) - n_val :]
    if len(train) == 0:
        raise BrainmisInputError(source, f"fold {fold} leaves no training windows")
    return FoldSplit(train=train, val=val, test=test, test_run=fold, val_run=val_index)
