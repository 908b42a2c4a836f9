"""Must-show of the per-voxel permutation test on synthetic data with known true ceilings.

The ridge of the real evaluation path (``evaluate_brain_alignment``) on the ground-truth
features of a synthetic HP dataset (684 TRs in 4 runs, 1,200 voxels, AR(1) noise with
coefficient 0.5): voxels with true ceiling 0 must come out significant at FDR 0.05 in at
most ~5% of cases, voxels with true ceiling > 0.3 in more than 90%. Shuffling single TRs
instead of 10-TR blocks ignores the noise's autocorrelation and gives about twice the
false positives, which the test shows too.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from brainmis.data.readers import layouts
from brainmis.data.synthetic import generate_synthetic
from brainmis.evaluation.brain.encoding import evaluate_brain_alignment
from brainmis.evaluation.brain.significance import PermutationTestOptions

pytestmark = pytest.mark.slow  # 3 ridge fits + 3,000 permutations: 25-65 s on the shared 2 cores


@pytest.fixture(scope="module")
def autocorrelated_hp(tmp_path_factory):
    """``(features (N, 5), responses (N, V), runs (N,), true ceiling (V,))`` of one subject."""
    root = generate_synthetic(
        "hp",
        tmp_path_factory.mktemp("significance") / "hp",
        n_subjects=1,
        seed=0,
        n_voxels=1200,
        noise_autocorr=0.5,
    )
    truth = json.loads((root / "ground_truth" / "truth.json").read_text())
    subject = truth["subjects"][0]
    subject = subject if isinstance(subject, str) else subject["name"]
    features = [np.load(layouts.synth_true_features(root, run["name"])) for run in truth["runs"]]
    runs = np.concatenate([np.full(len(block), k) for k, block in enumerate(features)])
    responses = np.load(layouts.hp_data(root, subject))
    ceiling = np.load(layouts.synth_true_ceiling(root, subject))
    return np.concatenate(features), responses, runs, ceiling


def shares(data, test_runs, block_trs: int) -> tuple[float, float]:
    """(share of true-ceiling-0 voxels significant, share of ceiling > 0.3 voxels significant)."""
    features, responses, runs, ceiling = data
    result = evaluate_brain_alignment(
        features,
        responses,
        runs,
        test_runs=test_runs,
        significance=PermutationTestOptions(permutations=1000, block_trs=block_trs, fdr_q=0.05),
    )
    significant = result.significance.significant
    return float(significant[ceiling == 0].mean()), float(significant[ceiling > 0.3].mean())


@pytest.mark.parametrize("test_runs", [1, None], ids=["held-out run 1", "leave-one-run-out"])
def test_noise_voxels_rarely_and_signal_voxels_nearly_always_significant(
    autocorrelated_hp, test_runs
):
    _, _, _, ceiling = autocorrelated_hp
    assert (ceiling == 0).sum() > 400 and (ceiling > 0.3).sum() > 400
    false_positive, detected = shares(autocorrelated_hp, test_runs, block_trs=10)
    print(
        f"blocks of 10 TRs, test runs {test_runs}: significant among true-ceiling-0 voxels "
        f"{false_positive:.3f}, among ceiling > 0.3 voxels {detected:.3f}"
    )
    assert false_positive <= 0.06
    assert detected > 0.9


def test_single_tr_shuffles_overstate_significance_under_autocorrelated_noise(
    autocorrelated_hp,
):
    false_positive, _ = shares(autocorrelated_hp, 1, block_trs=1)
    print(f"single TRs shuffled: significant among true-ceiling-0 voxels {false_positive:.3f}")
    assert false_positive > 0.06
