"""Voxel selection: usable voxels AND ROI AND ceiling > threshold, with counts."""

from __future__ import annotations

import numpy as np
import pytest

from brainmis.data.voxel_selection import select_voxels, usable_voxels
from brainmis.errors import BrainmisInputError


@pytest.fixture()
def runs() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    data = [rng.standard_normal((20, 10)).astype(np.float32) for _ in range(3)]
    data[1][:, 2] = 4.0  # constant in one run only -> zero variance there
    for run in data:
        run[:, 7] = -1.0  # constant everywhere
    data[2][3, 5] = np.nan  # not finite
    return data


@pytest.fixture()
def masks() -> dict[str, np.ndarray]:
    ifg = np.zeros(10, dtype=bool)
    ifg[[0, 1, 2, 3]] = True
    temporal = np.zeros(10, dtype=bool)
    temporal[[3, 4, 5, 6, 7]] = True
    return {"IFG": ifg, "PostTemp": temporal}


CEILING = np.array([0.5, 0.04, 0.3, 0.05, 0.2, 0.9, np.nan, 0.8, 0.1, 0.6])


def test_usable_voxels(runs):
    finite, varying = usable_voxels(runs)
    assert np.flatnonzero(~finite).tolist() == [5]
    assert np.flatnonzero(finite & ~varying).tolist() == [2, 7]


def test_selection_is_usable_and_roi_and_ceiling(runs, masks):
    selection = select_voxels(runs, masks, rois=None, ceiling=CEILING, threshold=0.05)
    # union of ROIs = 0..7; usable = not 2, 5, 7; ceiling > 0.05 (strict): 0, 2, 4, 5, 7, 8, 9
    assert selection.indices.tolist() == [0, 4]
    assert selection.indices.dtype == np.int64
    assert selection.counts == {
        "total": 10,
        "non_finite_dropped": 1,
        "zero_variance_dropped": 2,
        "in_roi": 5,  # 0, 1, 3, 4, 6
        "above_ceiling": 4,  # 0, 4, 8, 9 (NaN ceiling never passes)
        "selected": 2,
    }
    assert selection.rois == ["IFG", "PostTemp"] and selection.threshold == 0.05
    np.testing.assert_array_equal(selection.mask, np.isin(np.arange(10), [0, 4]))
    restricted = selection.restrict_masks(masks)
    assert restricted["IFG"].tolist() == [True, False] and restricted["PostTemp"].tolist() == [
        False,
        True,
    ]
    assert "selected 2" in selection.summary() and "\n" not in selection.summary()


def test_one_roi_and_no_ceiling(runs, masks):
    selection = select_voxels(runs, masks, rois=["PostTemp"], ceiling=None)
    assert selection.indices.tolist() == [3, 4, 6]
    assert selection.threshold is None and selection.counts["above_ceiling"] == 7


def test_without_masks_every_usable_voxel_counts(runs):
    selection = select_voxels(runs, {}, rois=None, ceiling=CEILING, threshold=0.45)
    assert selection.indices.tolist() == [0, 9]
    assert selection.rois == [] and selection.counts["in_roi"] == 7


def test_unknown_roi_is_named(runs, masks):
    with pytest.raises(
        BrainmisInputError, match=r"data.npy: unknown ROI 'AngularG'; available ROIs: IFG, PostTemp"
    ):
        select_voxels(runs, masks, rois=["AngularG"], source="data.npy")


def test_empty_roi_is_named(runs, masks):
    masks["dmpfc"] = np.zeros(10, dtype=bool)
    with pytest.raises(BrainmisInputError, match="ROI 'dmpfc' has no usable voxel"):
        select_voxels(runs, masks, rois=["IFG", "dmpfc"])
    masks["dead"] = np.isin(np.arange(10), [2, 7])  # only zero-variance voxels
    with pytest.raises(BrainmisInputError, match="ROI 'dead' has no usable voxel"):
        select_voxels(runs, masks, rois=["dead"])


def test_nothing_above_threshold_names_the_threshold(runs, masks):
    with pytest.raises(BrainmisInputError, match=r"none with noise ceiling > 0.95") as error:
        select_voxels(runs, masks, rois=["IFG"], ceiling=CEILING, threshold=0.95, source="sub-01")
    assert str(error.value).startswith("sub-01: no voxel left: 3 usable voxels in ROI(s) IFG")


def test_shape_mismatches_are_errors(runs, masks):
    with pytest.raises(BrainmisInputError, match=r"noise ceiling has shape \(9,\)"):
        select_voxels(runs, masks, ceiling=CEILING[:9])
    masks["IFG"] = masks["IFG"][:8]
    with pytest.raises(BrainmisInputError, match=r"ROI 'IFG' mask has shape \(8,\)"):
        select_voxels(runs, masks)
    with pytest.raises(BrainmisInputError, match="voxel count"):
        select_voxels([runs[0], runs[1][:, :9]], {})
    with pytest.raises(BrainmisInputError, match="no runs"):
        select_voxels([], {})


def test_selection_on_synthetic_data_keeps_signal_voxels():
    from brainmis.data.synthetic import make_spec, simulate

    brain = simulate("hp", make_spec(n_voxels=200, n_dead_voxels=4), n_subjects=1, seed=0)
    subject = brain.subjects[0]
    runs = [subject.responses[run.name] for run in brain.runs]
    selection = select_voxels(runs, brain.roi_masks, None, subject.true_ceiling, 0.05)
    in_roi = np.any(list(brain.roi_masks.values()), axis=0)
    assert selection.counts["zero_variance_dropped"] == 4
    np.testing.assert_array_equal(selection.mask, in_roi & brain.signal_voxels)
