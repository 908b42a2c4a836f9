"""Brain alignment on synthetic data with a known ground truth, and the result record."""

from __future__ import annotations

import json

import numpy as np
import pytest

from brainmis.data.readers import layouts, read_source
from brainmis.data.synthetic import generate_synthetic
from brainmis.errors import BrainmisInputError
from brainmis.evaluation.brain.encoding import (
    evaluate_brain_alignment,
    inner_groups,
    summarize_voxels,
)


@pytest.fixture(scope="module")
def synthetic_truth(tmp_path_factory):
    """Responses (per-run z-scored), true features, runs and true ceiling of one subject."""
    root = generate_synthetic(
        "hp", tmp_path_factory.mktemp("synthetic") / "hp", n_subjects=1, seed=3, n_voxels=300
    )
    subject = next(iter(read_source(root).subjects.values()))
    responses, features, runs = [], [], []
    for index, run in enumerate(subject.runs):
        run_responses = np.asarray(run.responses, dtype=np.float64)
        std = run_responses.std(0)
        responses.append((run_responses - run_responses.mean(0)) / np.where(std > 0, std, 1))
        features.append(np.load(layouts.synth_true_features(root, run.name)))
        runs.append(np.full(len(run_responses), index))
    ceiling = np.load(layouts.synth_true_ceiling(root, subject.name))
    return (
        np.concatenate(features),
        np.concatenate(responses),
        np.concatenate(runs),
        ceiling,
        subject.roi_masks,
    )


def test_true_features_reach_the_true_ceiling(synthetic_truth):
    features, responses, runs, ceiling, roi_masks = synthetic_truth
    result = evaluate_brain_alignment(
        features, responses, runs, noise_ceiling=ceiling, roi_masks=roi_masks
    )
    assert result.r.shape == ceiling.shape and len(result.test_runs) == 4
    assert np.median(np.abs(result.r - ceiling)) <= 0.05
    assert result.mean > 0.2  # the data carry signal: the check above is not trivial
    signal = ceiling > 0
    assert result.nc_normalized == pytest.approx(np.mean(result.r[signal] / ceiling[signal]))
    assert set(result.per_roi) == set(roi_masks)


def test_random_features_score_zero(synthetic_truth):
    _, responses, runs, ceiling, _ = synthetic_truth
    random_features = np.random.default_rng(0).standard_normal((len(runs), 40))
    result = evaluate_brain_alignment(random_features, responses, runs)
    assert abs(result.mean) <= 0.02


def test_one_held_out_run_and_json(synthetic_truth):
    features, responses, runs, ceiling, roi_masks = synthetic_truth
    result = evaluate_brain_alignment(
        features, responses, runs, test_runs=2, alphas=[1.0, 100.0], roi_masks=roi_masks
    )
    assert result.test_runs == [2] and result.best_alphas.shape == (1, responses.shape[1])
    assert set(np.unique(result.best_alphas)) <= {1.0, 100.0}
    record = json.loads(json.dumps(result.to_json()))
    assert record["n_voxels"] == responses.shape[1] and record["nc_normalized"] is None
    name = next(iter(roi_masks))
    assert record["per_roi"][name]["n_voxels"] == int(np.sum(roi_masks[name]))
    assert record["per_roi"][name]["mean"] == pytest.approx(result.r[roi_masks[name]].mean())


def test_summary_ignores_voxels_without_ceiling():
    score = summarize_voxels(np.array([0.2, 0.4, 0.1]), np.array([0.4, 0.8, 0.0]))
    assert score.mean == pytest.approx(0.7 / 3) and score.median == pytest.approx(0.2)
    assert score.nc_normalized == pytest.approx(0.5)
    assert summarize_voxels(np.array([0.3]), np.array([0.0])).nc_normalized is None


def test_single_training_run_uses_blocks():
    np.testing.assert_array_equal(inner_groups(np.array([1, 1, 1, 1, 1, 1])), [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(inner_groups(np.array([0, 0, 2, 2])), [0, 0, 2, 2])


def test_bad_input_is_refused():
    features, responses = np.zeros((10, 3)), np.zeros((10, 2))
    with pytest.raises(BrainmisInputError, match="at least 2 runs"):
        evaluate_brain_alignment(features, responses, np.zeros(10))
    runs = np.repeat([0, 1], 5)
    with pytest.raises(BrainmisInputError, match="test runs"):
        evaluate_brain_alignment(features, responses, runs, test_runs=5)
    with pytest.raises(BrainmisInputError, match="number of TRs"):
        evaluate_brain_alignment(features, responses[:9], runs)
    features[0, 0] = np.nan
    with pytest.raises(BrainmisInputError, match="NaN"):
        evaluate_brain_alignment(features, responses, runs)
