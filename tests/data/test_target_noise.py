"""Noise targets of the ``noise_adversary`` condition: matched AR(1) noise per run and voxel,
only in the training and validation windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from window_fixtures import gpt2_like_tokenizer, tiny_dataset

from brainmis.data.datamodule import BrainDataModule
from brainmis.data.target_noise import ar1_series, lag1_autocorrelation, matched_noise_targets
from brainmis.errors import BrainmisInputError


def real_like_targets(n_per_run: int = 2000, n_runs: int = 2, seed: int = 0):
    """Two runs of 3 voxels with lag-1 autocorrelations 0.8, 0.3, -0.4, z-scored per run."""
    rng = np.random.default_rng(seed)
    phi = np.array([0.8, 0.3, -0.4])
    runs = []
    for _ in range(n_runs):
        series = ar1_series(phi, n_per_run, rng)
        runs.append((series - series.mean(0)) / series.std(0))
    return np.concatenate(runs).astype(np.float32), np.repeat(np.arange(n_runs), n_per_run), phi


def test_noise_matches_each_part_and_is_unrelated_to_the_real_targets():
    targets, runs, phi = real_like_targets()
    train = np.arange(0, 3000)  # all of run 0 and half of run 1
    val = np.arange(3000, 3600)
    noise = matched_noise_targets(targets, runs, (train, val), seed=3)
    assert noise.shape == targets.shape and noise.dtype == np.float32
    np.testing.assert_array_equal(noise[3600:], targets[3600:])  # in no set: untouched
    for part in (np.arange(0, 2000), np.arange(2000, 3000), val):
        np.testing.assert_allclose(noise[part].mean(0), targets[part].mean(0), atol=1e-5)
        np.testing.assert_allclose(noise[part].std(0), targets[part].std(0), rtol=1e-4)
    np.testing.assert_allclose(lag1_autocorrelation(noise[:2000]), phi, atol=0.06)
    for voxel in range(3):  # no relation to the real series
        assert abs(np.corrcoef(noise[train, voxel], targets[train, voxel])[0, 1]) < 0.08
    np.testing.assert_array_equal(noise, matched_noise_targets(targets, runs, (train, val), seed=3))
    assert not np.array_equal(noise, matched_noise_targets(targets, runs, (train, val), seed=4))


def test_lag1_autocorrelation_of_a_constant_or_short_column_is_zero():
    values = np.column_stack([np.ones(10), np.arange(10.0)])
    assert lag1_autocorrelation(values)[0] == 0.0
    assert lag1_autocorrelation(values[:2]).tolist() == [0.0, 0.0]


@pytest.fixture(scope="module")
def gpt2_path(tmp_path_factory):
    return str(gpt2_like_tokenizer(tmp_path_factory.mktemp("gpt2")))


def test_datamodule_trains_on_noise_and_tests_on_the_true_responses(gpt2_path):
    dm = BrainDataModule.from_dataset(
        tiny_dataset(), tokenizer_path=gpt2_path, batch_size=4, noise_targets=True, fold=1
    )
    dm.setup("fit")
    plain = BrainDataModule.from_dataset(tiny_dataset(), tokenizer_path=gpt2_path, fold=1)
    plain.setup("fit")
    np.testing.assert_array_equal(dm.true_targets, plain.true_targets)
    for split in (dm.split.train, dm.split.val):
        assert not np.allclose(dm.targets[split], dm.true_targets[split])
    val_targets = torch.cat([b["targets"] for b in dm.val_dataloader()])
    assert torch.equal(val_targets, torch.from_numpy(dm.targets[dm.split.val]))
    test_targets = torch.cat([b["targets"] for b in dm.test_dataloader()])
    assert torch.equal(test_targets, torch.from_numpy(dm.true_targets[dm.split.test]))


def test_shuffled_and_noise_targets_together_are_refused(gpt2_path):
    with pytest.raises(BrainmisInputError, match="shuffle_targets and noise_targets"):
        BrainDataModule.from_dataset(
            tiny_dataset(), tokenizer_path=gpt2_path, shuffle_targets=True, noise_targets=True
        )
