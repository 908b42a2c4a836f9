"""The MLP leakage check and NIfTI brain maps."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from brainmis.data.records import Run, Subject
from brainmis.evaluation.brain.encoding import evaluate_brain_alignment
from brainmis.evaluation.brain.leakage import MLPSettings, early_stopping_split, mlp_leakage
from brainmis.evaluation.brain.maps import can_map, save_brain_map, values_to_volume


def test_mlp_finds_what_a_linear_read_out_cannot():
    """Responses driven by |feature|: invisible to the ridge, visible to the MLP."""
    rng = np.random.default_rng(0)
    features = rng.standard_normal((360, 6)).astype(np.float32)
    hidden_signal = np.abs(features[:, :2]) @ rng.uniform(0.5, 1.0, (2, 8))
    responses = hidden_signal + 0.5 * rng.standard_normal((360, 8))
    runs = np.repeat(np.arange(4), 90)
    ridge = evaluate_brain_alignment(features, responses, runs, test_runs=3)
    leakage = mlp_leakage(
        features,
        responses,
        runs,
        test_runs=3,
        settings=MLPSettings(hidden=32, max_epochs=40, lr=1e-2),
    )
    assert abs(ridge.mean) < 0.15
    assert leakage.summary.mean > 0.5
    assert leakage.r.shape == (8,) and leakage.test_runs == [3]
    record = leakage.to_json()
    assert record["mean"] == pytest.approx(leakage.r.mean()) and record["epochs"][0] >= 0


def test_mlp_is_deterministic_and_leaves_global_rng_alone():
    rng = np.random.default_rng(1)
    features, responses = rng.standard_normal((90, 4)), rng.standard_normal((90, 3))
    runs = np.repeat(np.arange(3), 30)
    import torch

    torch.manual_seed(5)
    expected_next = torch.rand(1)
    torch.manual_seed(5)
    settings = MLPSettings(hidden=8, max_epochs=5)
    first = mlp_leakage(features, responses, runs, test_runs=0, settings=settings)
    assert torch.rand(1) == expected_next
    second = mlp_leakage(features, responses, runs, test_runs=0, settings=settings)
    np.testing.assert_array_equal(first.r, second.r)


def test_early_stopping_split():
    np.testing.assert_array_equal(early_stopping_split(np.array([0, 0, 2, 2])), [0, 0, 1, 1])
    np.testing.assert_array_equal(early_stopping_split(np.zeros(5)), [0, 0, 0, 0, 1])


def subject_with_coords(coords=None) -> Subject:
    run = Run(
        name="run1",
        tr_times=np.arange(3.0),
        responses=np.zeros((3, 3), dtype=np.float32),
        kept_trs=np.arange(3),
        words=np.array(["a"]),
        word_onsets=np.array([0.5]),
    )
    return Subject(
        name="S",
        runs=[run],
        voxel_coords=None if coords is None else np.asarray(coords),
        volume_shape=None if coords is None else (3, 4, 5),
        affine=None if coords is None else np.diag([2.0, 2.0, 2.0, 1.0]),
    )


def test_values_land_at_their_coordinates(tmp_path):
    subject = subject_with_coords([[0, 0, 0], [1, 2, 3], [2, 3, 4]])
    path = save_brain_map(np.array([0.5, 0.25]), subject, tmp_path / "r.nii.gz", [2, 0])
    image = nib.load(path)
    data = image.get_fdata()
    assert data.shape == (3, 4, 5)
    assert data[2, 3, 4] == 0.5 and data[0, 0, 0] == 0.25 and np.isnan(data[1, 2, 3])
    np.testing.assert_array_equal(image.affine, np.diag([2.0, 2.0, 2.0, 1.0]))


def test_no_coordinates_no_map(tmp_path):
    subject = subject_with_coords()
    assert not can_map(subject)
    assert save_brain_map(np.zeros(3), subject, tmp_path / "r.nii.gz") is None
    assert not (tmp_path / "r.nii.gz").exists()
    with pytest.raises(ValueError, match="values for"):
        values_to_volume(np.zeros(2), subject_with_coords([[0, 0, 0]] * 3))


def test_alignment_files_include_a_map_when_coordinates_are_known(tmp_path):
    import json

    from brainmis.evaluation.brain.alignment import ModelAlignment, write_alignment_files

    rng = np.random.default_rng(2)
    features, responses = rng.standard_normal((60, 4)), rng.standard_normal((60, 2))
    ridge = evaluate_brain_alignment(features, responses, np.repeat(np.arange(3), 20), 0)
    alignment = ModelAlignment(epoch=3, ridge=ridge, leakage=None, seconds=0.5)
    subject = subject_with_coords([[0, 0, 0], [1, 2, 3], [2, 3, 4]])
    written = write_alignment_files(tmp_path, alignment, subject, selected_voxels=[0, 2])
    assert sorted(path.name for path in written) == [
        "brain_alignment.json",
        "brain_r_epoch3.nii.gz",
        "brain_r_epoch3.npy",
    ]
    volume = nib.load(tmp_path / "brain_r_epoch3.nii.gz").get_fdata()
    assert volume[2, 3, 4] == pytest.approx(ridge.r[1], abs=1e-6)
    record = json.loads((tmp_path / "brain_alignment.json").read_text())
    assert record["epoch"] == 3 and record["leakage_mlp"] is None and record["seconds"] == 0.5


def test_alignment_with_leakage_reports_both_read_outs():
    from brainmis.evaluation.brain.alignment import AlignmentData, align_features

    rng = np.random.default_rng(3)
    features = rng.standard_normal((120, 5))
    targets = features[:, :2] @ rng.standard_normal((2, 4)) + rng.standard_normal((120, 4))
    data = AlignmentData(
        windows=[],  # the features are given: no windows to read
        n_windows=120,
        context_trs=1,
        true_targets=targets.astype(np.float32),
        window_runs=np.repeat(np.arange(3), 40),
        test_run=1,
        noise_ceiling=np.full(4, 0.8),
        roi_masks={"A": np.array([True, True, False, False])},
    )
    alignment = align_features(features, data, epoch=2, alphas=[1.0, 10.0], leakage=True)
    assert alignment.ridge.test_runs == [1] and alignment.leakage.test_runs == [1]
    scalars = alignment.scalars()
    assert scalars["brain_alignment/roi/A"] == pytest.approx(alignment.ridge.r[:2].mean())
    assert scalars["brain_alignment/nc_normalized"] == pytest.approx(alignment.ridge.mean / 0.8)
    assert "brain_alignment/leakage_mlp_mean" in scalars
    assert alignment.to_json()["leakage_mlp"]["n_voxels"] == 4
