"""Folds over runs, validation block, and the target shuffles of the preserving control."""

from __future__ import annotations

import numpy as np
import pytest

from brainmis.data.splits import fold_split
from brainmis.data.target_shuffle import shuffled_target_source
from brainmis.errors import BrainmisInputError

RUNS = np.repeat([0, 1, 2, 3], [10, 10, 10, 10])
NAMES = ["run1", "run2", "run3", "run4"]


def test_fold_holds_out_its_run_and_validates_on_the_last_fifth_of_training():
    split = fold_split(RUNS, NAMES, fold=1, val_fraction=0.2)
    assert split.test.tolist() == list(range(10, 20))
    assert split.val.tolist() == list(range(34, 40))  # last 6 of the 30 training windows
    assert split.train.tolist() == list(range(0, 10)) + list(range(20, 34))
    assert split.test_run == 1 and split.val_run is None
    last = fold_split(RUNS, NAMES, fold=3, val_fraction=0.2)
    assert last.val.tolist() == list(range(24, 30))  # tail of run3, before the test run
    union = np.concatenate([last.train, last.val, last.test])
    assert sorted(union.tolist()) == list(range(40))


def test_named_validation_run_and_no_validation():
    split = fold_split(RUNS, NAMES, fold=0, val_run="run3")
    assert split.val.tolist() == list(range(20, 30)) and split.val_run == 2
    assert split.train.tolist() == list(range(10, 20)) + list(range(30, 40))
    assert len(fold_split(RUNS, NAMES, fold=0, val_fraction=0.0).val) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fold": 4}, "fold 4 out of range"),
        ({"fold": -1}, "fold -1 out of range"),
        ({"fold": 0, "val_run": "run9"}, "val_run 'run9' is not a run"),
        ({"fold": 0, "val_run": "run1"}, "is the test run"),
        ({"fold": 0, "val_fraction": 1.0}, "val_fraction"),
    ],
)
def test_bad_split_arguments(kwargs, message):
    with pytest.raises(BrainmisInputError, match=message) as error:
        fold_split(RUNS, NAMES, source="bundle/x", **kwargs)
    assert str(error.value).startswith("bundle/x: ")


def test_one_run_cannot_be_split():
    with pytest.raises(BrainmisInputError, match="at least 2 runs"):
        fold_split(np.zeros(5, np.int64), ["only"], fold=0)


def test_permutation_is_seeded_and_stays_within_each_set():
    split = fold_split(RUNS, NAMES, fold=0)
    sets = (split.train, split.val)
    source = shuffled_target_source(RUNS, sets, "permutation", seed=3)
    assert np.array_equal(source, shuffled_target_source(RUNS, sets, "permutation", seed=3))
    assert not np.array_equal(source, shuffled_target_source(RUNS, sets, "permutation", seed=4))
    for members in sets:
        assert sorted(source[members].tolist()) == members.tolist()
        assert not np.array_equal(source[members], members)
    assert source[split.test].tolist() == split.test.tolist()  # test untouched


def test_circular_shift_rotates_within_each_run():
    split = fold_split(RUNS, NAMES, fold=0)
    source = shuffled_target_source(RUNS, (split.train, split.val), "circular_shift", seed=0)
    assert np.array_equal(RUNS[source], RUNS)  # targets never move to another run
    assert source[split.test].tolist() == split.test.tolist()
    for run in (1, 2):  # whole training runs of 10 windows: rotated by 2..8 windows
        part = np.flatnonzero(RUNS == run)
        shift = (part[0] - source[part[0]]) % 10
        assert 2 <= shift <= 8
        assert np.array_equal(source[part], np.roll(part, shift))
    val_part = split.val  # the tail of run 4 (6 windows) is rotated on its own
    assert sorted(source[val_part].tolist()) == val_part.tolist()
    assert not np.array_equal(source[val_part], val_part)


def test_unknown_shuffle_mode():
    with pytest.raises(ValueError, match="unknown shuffle mode"):
        shuffled_target_source(RUNS, (), "reverse", seed=0)
