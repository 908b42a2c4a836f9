"""Per-voxel significance of the held-out r: block permutations, Benjamini-Hochberg, files."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from scipy.stats import false_discovery_control

from brainmis.data.records import Subject
from brainmis.errors import BrainmisInputError
from brainmis.evaluation.brain.encoding import evaluate_brain_alignment
from brainmis.evaluation.brain.significance import (
    PermutationTestOptions,
    _BlockLayout,
    _zscore_over_time,
    benjamini_hochberg,
    block_orders,
    permutation_p_values,
    permutation_test_options,
    permuted_indices,
)


def test_benjamini_hochberg_equals_scipy():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(size=300), rng.uniform(0, 1e-3, 50), [0.5, 0.5, 1.0, 0.0]])
    np.testing.assert_allclose(benjamini_hochberg(p), false_discovery_control(p), rtol=1e-12)
    assert benjamini_hochberg(np.array([])).shape == (0,)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        benjamini_hochberg(np.array([0.2, 1.5]))


@pytest.mark.parametrize(("n_trs", "block"), [(37, 5), (40, 10), (43, 10), (12, 1), (11, 10)])
def test_block_table_gives_the_r_of_the_shuffled_series(n_trs, block):
    """The gather-sum over block-slot products equals r of the series with its blocks moved."""
    generator = np.random.default_rng(n_trs)
    predictions = torch.randn(n_trs, 5, generator=torch.Generator().manual_seed(n_trs))
    responses = predictions + torch.randn(n_trs, 5)
    P, Y = _zscore_over_time(predictions), _zscore_over_time(responses)
    layout = _BlockLayout(n_trs, block)
    orders = block_orders(n_trs, block, 25, generator)
    fast = torch.nn.functional.embedding_bag(layout.bags(orders), layout.table(P, Y), mode="sum")
    for order, r in zip(orders, fast / n_trs, strict=True):
        index = permuted_indices(order, n_trs, block)
        assert sorted(index) == list(range(n_trs))
        expected = np.corrcoef(predictions.numpy()[index].T, responses.numpy().T)
        np.testing.assert_allclose(r.numpy(), np.diag(expected[:5, 5:]), atol=1e-5)


def noise_and_signal_problem(seed: int = 0):
    """4 runs of 60 TRs, 8 features; voxels 0-299 pure noise, 300-339 a strong linear signal."""
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((240, 8)).astype(np.float32)
    responses = rng.standard_normal((240, 340)).astype(np.float32)
    responses[:, 300:] += features @ rng.standard_normal((8, 40)).astype(np.float32)
    return features, responses, np.repeat(np.arange(4), 60)


def test_p_is_uniform_under_the_null_and_tiny_for_signal():
    features, responses, runs = noise_and_signal_problem()
    options = PermutationTestOptions(permutations=400, block_trs=5, fdr_q=0.05, seed=3)
    result = evaluate_brain_alignment(
        features, responses, runs, test_runs=2, alphas=[1.0, 100.0], significance=options
    )
    p = result.significance.p
    null, signal = p[:300], p[300:]
    assert 0.45 < null.mean() < 0.55
    assert 0.03 < (null <= 0.05).mean() < 0.08
    assert 0.45 < (null <= 0.5).mean() < 0.55
    assert np.all(signal == 1 / 401)  # no permutation reaches an r near 1
    significant = result.significance.significant
    assert significant[300:].all() and significant[:300].mean() <= 0.04
    # the same generator gives the same p; another seed other (but similar) ones
    again = evaluate_brain_alignment(
        features, responses, runs, test_runs=2, alphas=[1.0, 100.0], significance=options
    )
    np.testing.assert_array_equal(again.significance.p, p)
    other = evaluate_brain_alignment(
        features,
        responses,
        runs,
        test_runs=2,
        alphas=[1.0, 100.0],
        significance=PermutationTestOptions(400, 5, 0.05, seed=4),
    )
    assert not np.array_equal(other.significance.p, p)
    assert np.abs(other.significance.p - p).max() < 0.15


def test_leave_one_run_out_p_stay_valid_under_the_null():
    """The folds' r are positively correlated under the null (shared training data): merging
    their p by Simes keeps the false-positive share at the level, where testing the average
    r against independently shuffled folds gave 0.10-0.12 here."""
    features, responses, runs = noise_and_signal_problem()
    options = PermutationTestOptions(permutations=400, block_trs=5, seed=3)
    result = evaluate_brain_alignment(
        features, responses, runs, alphas=[1.0, 100.0], significance=options
    )
    null = result.significance.p[:300]
    assert (null <= 0.05).mean() <= 0.075 and (null <= 0.1).mean() <= 0.13
    assert np.all(result.significance.p[300:] <= 4 / 401)


def test_folds_are_tested_separately_and_merged_by_simes():
    torch.manual_seed(5)
    folds = [(torch.randn(n, 3), torch.randn(n, 3)) for n in (30, 34)]
    folds[0][1][:, 0] += 3 * folds[0][0][:, 0]  # voxel 0 carries signal in fold 0 only
    p = permutation_p_values(folds, PermutationTestOptions(permutations=50, block_trs=4, seed=9))
    generator = np.random.default_rng(9)
    per_fold = []
    for P, Y in folds:
        P, Y = P.numpy(), Y.numpy()
        orders = block_orders(len(P), 4, 50, generator)
        observed = np.array([np.corrcoef(P[:, v], Y[:, v])[0, 1] for v in range(3)])
        permuted = np.array(
            [
                [np.corrcoef(P[permuted_indices(o, len(P), 4), v], Y[:, v])[0, 1] for v in range(3)]
                for o in orders
            ]
        )
        per_fold.append((1 + (permuted >= observed - 1e-5).sum(0)) / 51)
    low, high = np.sort(per_fold, axis=0)
    np.testing.assert_allclose(p, np.minimum(np.minimum(2 * low, high), 1.0))
    assert p[0] == pytest.approx(2 / 51)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((-1, 10, 0.05), "--permutations -1: must be 0 (off) or a positive count"),
        ((100, 0, 0.05), "--permutation-block 0: must be a positive number of TRs"),
        ((100, 10, 2.0), "--fdr-q 2.0: must be a false discovery rate between 0 and 1"),
    ],
)
def test_bad_options_are_one_line_errors(arguments, message):
    with pytest.raises(BrainmisInputError) as error:
        permutation_test_options(*arguments)
    assert str(error.value) == message
    assert permutation_test_options(0, 10, 0.05) is None


def test_a_block_longer_than_half_the_test_run_is_refused():
    features, responses, runs = noise_and_signal_problem()
    with pytest.raises(BrainmisInputError, match="only 60 TRs, fewer than 2 blocks"):
        evaluate_brain_alignment(
            features,
            responses,
            runs,
            test_runs=0,
            significance=PermutationTestOptions(10, block_trs=60),
        )


def test_alignment_files_hold_p_q_and_a_thresholded_map(tmp_path):
    from brainmis.evaluation.brain.alignment import (
        ModelAlignment,
        history_entry,
        write_alignment_files,
    )

    features, responses, runs = noise_and_signal_problem()
    keep = [0, 1, 300]  # two noise voxels, one signal voxel
    ridge = evaluate_brain_alignment(
        features,
        responses[:, keep],
        runs,
        test_runs=2,
        roi_masks={"A": np.array([True, False, True]), "none": np.zeros(3, bool)},
        significance=PermutationTestOptions(permutations=200),
    )
    alignment = ModelAlignment(epoch=4, ridge=ridge, leakage=None, seconds=0.1)
    subject = Subject(
        name="S",
        runs=[],
        voxel_coords=np.array([[0, 0, 0], [1, 2, 3], [2, 3, 4], [1, 1, 1]]),
        volume_shape=(3, 4, 5),
    )
    written = write_alignment_files(
        tmp_path, alignment, subject, selected_voxels=[0, 1, 2], history=[history_entry(alignment)]
    )
    assert sorted(path.name for path in written) == [
        "brain_alignment.json",
        "brain_p_epoch4.npy",
        "brain_q_epoch4.npy",
        "brain_r_epoch4.nii.gz",
        "brain_r_epoch4.npy",
        "brain_r_fdr_epoch4.nii.gz",
    ]
    p, q = np.load(tmp_path / "brain_p_epoch4.npy"), np.load(tmp_path / "brain_q_epoch4.npy")
    np.testing.assert_array_equal(p, ridge.significance.p)
    np.testing.assert_allclose(q, false_discovery_control(p))
    significant = q <= 0.05
    assert significant[2] and p[2] == 1 / 201
    volume = nib.load(tmp_path / "brain_r_fdr_epoch4.nii.gz").get_fdata()
    for voxel, (i, j, k) in enumerate([[0, 0, 0], [1, 2, 3], [2, 3, 4]]):
        expected = ridge.r[voxel] if significant[voxel] else 0.0
        assert volume[i, j, k] == pytest.approx(expected, abs=1e-6)
    assert np.isnan(volume[1, 1, 1])  # not evaluated
    record = json.loads((tmp_path / "brain_alignment.json").read_text())
    test = record["significance"]
    assert test["permutations"] == 200 and test["block_trs"] == 10 and test["fdr_q"] == 0.05
    assert test["n_significant"] == int(significant.sum()) and test["n_voxels"] == 3
    assert test["share_significant"] == pytest.approx(significant.mean())
    assert test["per_roi"]["A"] == {
        "n_voxels": 2,
        "n_significant": int(significant[[0, 2]].sum()),
        "share_significant": significant[[0, 2]].mean(),
    }
    assert test["per_roi"]["none"]["share_significant"] is None
    assert record["history"][0]["share_significant"] == pytest.approx(significant.mean())
    assert alignment.scalars()["brain_alignment/share_significant"] == significant.mean()


def test_without_the_test_nothing_extra_is_written(tmp_path):
    from brainmis.evaluation.brain.alignment import ModelAlignment, write_alignment_files

    features, responses, runs = noise_and_signal_problem()
    ridge = evaluate_brain_alignment(features, responses[:, :3], runs, test_runs=1)
    written = write_alignment_files(tmp_path, ModelAlignment(1, ridge, None, 0.1))
    assert sorted(path.name for path in written) == ["brain_alignment.json", "brain_r_epoch1.npy"]
    assert json.loads((tmp_path / "brain_alignment.json").read_text())["significance"] is None
