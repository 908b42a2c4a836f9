"""Words to TRs, TRs to windows, and per-run z-scoring of responses.

A word belongs to TR ``t`` when ``tr_times[t] - tr < onset <= tr_times[t]``: the words shown
during the scan that ends at ``t``. A *window* is the sample the models see: the word groups
of ``context_trs`` consecutive TRs ending at a target TR, paired with the response of that
target TR. Only kept TRs (those with a response row) are targets; trimmed TRs still give their
words as context; TRs before the start of the run contribute empty groups; a window never
reaches into another run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from brainmis.data.records import Run

BOUNDARY_TOLERANCE_S = 1e-6
"""Seconds: an onset within this of a TR time counts as on it (so belongs to that TR), which
keeps the rule stable when onsets and TR times were computed with different rounding."""


def tr_of_words(tr_times: np.ndarray, tr: float, word_onsets: np.ndarray) -> np.ndarray:
    """The TR each word belongs to.

    Args:
        tr_times: ``(n_TR,)`` increasing TR time stamps in seconds.
        tr: repetition time in seconds.
        word_onsets: ``(n_words,)`` onsets in seconds.

    Returns:
        ``(n_words,)`` int64 index into ``tr_times``, or -1 for a word that falls in no TR
        (before ``tr_times[0] - tr`` or after ``tr_times[-1]``).
    """
    tr_times = np.asarray(tr_times, dtype=np.float64)
    onsets = np.asarray(word_onsets, dtype=np.float64)
    # first t with tr_times[t] >= onset (up to the tolerance): the scan that ends at or after it
    index = np.searchsorted(tr_times, onsets - BOUNDARY_TOLERANCE_S, side="left")
    inside = index < len(tr_times)
    safe = np.minimum(index, len(tr_times) - 1)
    inside &= onsets > tr_times[safe] - tr + BOUNDARY_TOLERANCE_S
    return np.where(inside, index, -1).astype(np.int64)


def words_by_tr(
    tr_times: np.ndarray, tr: float, words: Sequence[str], word_onsets: np.ndarray
) -> list[tuple[str, ...]]:
    """Group words by TR: ``(n_TR,)`` list, entry ``t`` the words of TR ``t`` in onset order
    (an empty tuple for a TR without words). Words outside every TR are left out."""
    groups: list[list[str]] = [[] for _ in range(len(tr_times))]
    for word, t in zip(words, tr_of_words(tr_times, tr, word_onsets), strict=True):
        if t >= 0:
            groups[int(t)].append(str(word))
    return [tuple(group) for group in groups]


@dataclass
class WindowTable:
    """Every window of a subject, in run order then target-TR order.

    Window ``i`` pairs the words of TRs ``target_tr[i] - context_trs + 1 .. target_tr[i]`` of
    run ``run_index[i]`` with row ``response_row[i]`` of that run's responses.

    Attributes:
        run_index: ``(N,)`` int64 index of the window's run in ``Subject.runs``.
        target_tr: ``(N,)`` int64 index of the target TR into that run's ``tr_times``.
        response_row: ``(N,)`` int64 row of the target TR in that run's ``responses``.
        groups: ``N`` tuples of ``context_trs`` word tuples, oldest TR first, target TR last;
            TRs before the run start give empty tuples.
        context_trs: number of TR groups per window.
    """

    run_index: np.ndarray
    target_tr: np.ndarray
    response_row: np.ndarray
    groups: list[tuple[tuple[str, ...], ...]]
    context_trs: int

    def __len__(self) -> int:
        return len(self.groups)


def run_windows(
    run: Run, tr: float, context_trs: int
) -> tuple[np.ndarray, list[tuple[tuple[str, ...], ...]]]:
    """The windows of one run: one per kept TR.

    Returns:
        ``target_tr (n_kept,)`` int64 (the run's ``kept_trs``) and ``n_kept`` tuples of
        ``context_trs`` word groups, oldest first.
    """
    if context_trs < 1:
        raise ValueError(f"context_trs must be >= 1, got {context_trs}")
    by_tr = words_by_tr(run.tr_times, tr, run.words, run.word_onsets)
    padded = [()] * (context_trs - 1) + by_tr  # TRs before the run start are empty
    target_tr = np.asarray(run.kept_trs, dtype=np.int64)
    windows = [tuple(padded[int(t) : int(t) + context_trs]) for t in target_tr]
    return target_tr, windows


def build_window_table(runs: Sequence[Run], tr: float, context_trs: int) -> WindowTable:
    """The window table of a subject's runs (see ``WindowTable``)."""
    run_index, target_tr, response_row, groups = [], [], [], []
    for index, run in enumerate(runs):
        targets, windows = run_windows(run, tr, context_trs)
        run_index.append(np.full(len(targets), index, dtype=np.int64))
        target_tr.append(targets)
        response_row.append(np.arange(len(targets), dtype=np.int64))
        groups.extend(windows)
    return WindowTable(
        run_index=np.concatenate(run_index) if runs else np.zeros(0, np.int64),
        target_tr=np.concatenate(target_tr) if runs else np.zeros(0, np.int64),
        response_row=np.concatenate(response_row) if runs else np.zeros(0, np.int64),
        groups=groups,
        context_trs=context_trs,
    )


def zscore_columns(responses: np.ndarray) -> np.ndarray:
    """Z-score each column over time.

    Args:
        responses: ``(T, V)`` responses of one run.

    Returns:
        ``(T, V)`` float32, each column with mean 0 and (population) std 1; a column with
        zero variance becomes all zeros, never NaN.
    """
    values = np.asarray(responses, dtype=np.float64)
    centred = values - values.mean(axis=0, keepdims=True)
    std = centred.std(axis=0, keepdims=True)
    scale = np.divide(1.0, std, out=np.zeros_like(std), where=std > 0)
    return (centred * scale).astype(np.float32)


def zscored_targets(
    runs: Sequence[Run], table: WindowTable, voxels: np.ndarray | None = None
) -> np.ndarray:
    """The target of every window: its run's responses, z-scored per run.

    Args:
        runs: the subject's runs (the ones the table was built from).
        table: the window table.
        voxels: optional ``(V,)`` indices of the voxel columns to keep.

    Returns:
        ``(N, V)`` float32, row ``i`` the z-scored response of window ``i``'s target TR.
    """
    per_run = []
    for run in runs:
        responses = run.responses if voxels is None else run.responses[:, voxels]
        per_run.append(zscore_columns(responses))
    n_voxels = per_run[0].shape[1] if per_run else 0
    out = np.empty((len(table), n_voxels), dtype=np.float32)
    for index, zscored in enumerate(per_run):
        rows = np.flatnonzero(table.run_index == index)
        out[rows] = zscored[table.response_row[rows]]
    return out
