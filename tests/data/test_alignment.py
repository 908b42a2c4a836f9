"""Words -> TRs -> windows, with expectations worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from brainmis.data.alignment import (
    build_window_table,
    run_windows,
    tr_of_words,
    words_by_tr,
    zscore_columns,
    zscored_targets,
)
from brainmis.data.records import Run


def make_run(name, tr_times, words, onsets, kept, n_voxels=2, responses=None):
    kept = np.asarray(kept, dtype=np.int64)
    if responses is None:
        responses = np.arange(len(kept) * n_voxels, dtype=np.float32).reshape(len(kept), -1)
    return Run(
        name=name,
        tr_times=np.asarray(tr_times, dtype=np.float64),
        responses=np.asarray(responses, dtype=np.float32),
        kept_trs=kept,
        words=np.asarray(words),
        word_onsets=np.asarray(onsets, dtype=np.float64),
    )


def test_word_exactly_on_a_tr_time_belongs_to_that_tr():
    # TRs stamped at 2, 4, 6 s with TR = 2 s: TR 0 covers (0, 2], TR 1 (2, 4], TR 2 (4, 6].
    tr_times = np.array([2.0, 4.0, 6.0])
    onsets = np.array([0.0, 0.5, 2.0, 2.01, 4.0, 6.0, 6.5])
    assert tr_of_words(tr_times, 2.0, onsets).tolist() == [-1, 0, 0, 1, 1, 2, -1]


def test_boundary_survives_rounding_of_times():
    tr_times = np.array([0.1, 0.2, 0.3, 0.4])
    onsets = np.array([0.1 + 0.2, 0.3 + 1e-4])  # 0.30000000000000004 > 0.3; just after 0.3
    assert onsets[0] > tr_times[2]
    assert tr_of_words(tr_times, 0.1, onsets).tolist() == [2, 3]


def test_words_by_tr_leaves_silent_trs_empty():
    tr_times = np.array([2.0, 4.0, 6.0, 8.0])
    groups = words_by_tr(tr_times, 2.0, ["a", "b", "c", "d"], np.array([0.5, 1.0, 6.0, 9.0]))
    assert groups == [("a", "b"), (), ("c",), ()]  # "d" after the last TR is dropped


def test_windows_use_trimmed_trs_as_context_and_pad_before_the_run_start():
    # 6 TRs at 2..12 s; TR 0 and TR 5 are trimmed (no response row), TR 2 is silent.
    tr_times = 2.0 * np.arange(1, 7)
    words = ["w0", "w1a", "w1b", "w3", "w4", "w5"]
    onsets = [1.0, 3.0, 3.5, 7.0, 9.0, 11.0]
    run = make_run("r", tr_times, words, onsets, kept=[1, 2, 3, 4])
    target_tr, windows = run_windows(run, 2.0, context_trs=3)
    assert target_tr.tolist() == [1, 2, 3, 4]
    assert windows == [
        ((), ("w0",), ("w1a", "w1b")),  # TR -1 does not exist: empty; TR 0 trimmed: context
        (("w0",), ("w1a", "w1b"), ()),  # target TR 2 is silent
        (("w1a", "w1b"), (), ("w3",)),
        ((), ("w3",), ("w4",)),
    ]  # TR 5 is trimmed: not a target, and its word "w5" appears in no window


def test_window_table_never_crosses_runs():
    tr_times = 2.0 * np.arange(1, 4)
    run_a = make_run("a", tr_times, ["a0", "a1", "a2"], [1.0, 3.0, 5.0], kept=[0, 1, 2])
    run_b = make_run("b", tr_times, ["b0", "b1", "b2"], [1.0, 3.0, 5.0], kept=[1, 2])
    table = build_window_table([run_a, run_b], 2.0, context_trs=2)
    assert table.run_index.tolist() == [0, 0, 0, 1, 1]
    assert table.target_tr.tolist() == [0, 1, 2, 1, 2]
    assert table.response_row.tolist() == [0, 1, 2, 0, 1]
    assert table.groups[0] == ((), ("a0",))  # nothing before run a
    assert table.groups[3] == (("b0",), ("b1",))  # run b starts fresh, no "a2"
    assert len(table) == 5 and table.context_trs == 2


def test_context_of_one_tr_is_the_target_tr_alone():
    tr_times = 2.0 * np.arange(1, 3)
    run = make_run("a", tr_times, ["x", "y"], [1.0, 3.0], kept=[0, 1])
    assert run_windows(run, 2.0, context_trs=1)[1] == [(("x",),), (("y",),)]


def test_zscore_keeps_zero_variance_columns_at_zero():
    responses = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]], dtype=np.float32)
    z = zscore_columns(responses)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z[:, 0], [-np.sqrt(1.5), 0.0, np.sqrt(1.5)], rtol=1e-6)
    assert np.all(z[:, 1] == 0) and np.isfinite(z).all()


def test_targets_are_zscored_per_run_and_follow_the_table():
    tr_times = 2.0 * np.arange(1, 5)
    resp_a = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]], dtype=np.float32)
    resp_b = np.array([[10.0, 7.0], [30.0, 9.0]], dtype=np.float32)
    run_a = make_run("a", tr_times, [], [], kept=[1, 2, 3], responses=resp_a)
    run_b = make_run("b", tr_times, [], [], kept=[0, 3], responses=resp_b)
    table = build_window_table([run_a, run_b], 2.0, context_trs=2)
    targets = zscored_targets([run_a, run_b], table)
    s = np.sqrt(1.5)
    np.testing.assert_allclose(
        targets, [[-s, 0.0], [0.0, 0.0], [s, 0.0], [-1.0, -1.0], [1.0, 1.0]], rtol=1e-6
    )
    only_second = zscored_targets([run_a, run_b], table, voxels=np.array([1]))
    np.testing.assert_allclose(only_second[:, 0], targets[:, 1])


def test_context_trs_must_be_positive():
    run = make_run("a", [2.0], [], [], kept=[0])
    with pytest.raises(ValueError, match="context_trs"):
        run_windows(run, 2.0, context_trs=0)
