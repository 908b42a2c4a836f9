"""Noise ceilings: Schoppe cc_max, explainable variance, inter-subject, precomputed files."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from brainmis.data.noise_ceiling import (
    explainable_variance,
    inter_subject_ceiling,
    load_precomputed_ceiling,
    noise_ceiling_from_repeats,
)
from brainmis.data.readers import layouts
from brainmis.data.synthetic import generate_synthetic, make_spec, simulate
from brainmis.errors import BrainmisInputError


def simulated_repeats(rng, n_repeats, n_tr, signal_sd, noise_sd):
    """``(n_repeats, T, V)`` signal plus independent noise per repeat, and ``(V,)`` signal var."""
    signal = rng.standard_normal((n_tr, signal_sd.size)) * signal_sd
    repeats = signal + rng.standard_normal((n_repeats, n_tr, signal_sd.size)) * noise_sd
    return repeats, signal.var(axis=0)


def test_schoppe_matches_the_analytic_ceiling_on_long_data():
    rng = np.random.default_rng(0)
    signal_sd = rng.uniform(0.4, 2.0, 200)
    repeats, s = simulated_repeats(rng, 3, 20_000, signal_sd, 1.0)
    n = 1.0
    np.testing.assert_allclose(
        noise_ceiling_from_repeats(repeats), np.sqrt(s / (s + n / 3)), atol=0.02
    )
    np.testing.assert_allclose(
        noise_ceiling_from_repeats(repeats, n_averaged=1), np.sqrt(s / (s + n)), atol=0.02
    )
    np.testing.assert_allclose(explainable_variance(repeats), s / (s + n), atol=0.03)


def test_noise_ceiling_from_repeats_within_005_of_truth_on_1000_synthetic_voxels(tmp_path):
    """Two training stories + the repeated one: the narrative's last third, ~200 TRs, 2 repeats.

    The estimator's own error shrinks with the length of the repeated story: ~0.045 median
    absolute error with 134 TRs (the default 4-story split), ~0.03 with ~200 TRs.
    """
    root = generate_synthetic("moth", tmp_path / "moth", n_subjects=1, n_voxels=1000, n_runs=2)
    with h5py.File(layouts.moth_val(root, "01"), "r") as val:
        (story,) = list(val)
        repeats = val[story][()]
    assert repeats.shape[0] == 2 and repeats.shape[1] >= 180 and repeats.shape[2] == 1000
    truth = root / "ground_truth"
    mean_ceiling = np.load(truth / "true_ceiling_repeat_mean_subject_01.npy")
    single_ceiling = np.load(truth / "true_ceiling_single_scan_repeated_subject_01.npy")
    estimate = noise_ceiling_from_repeats(repeats)
    assert np.median(np.abs(estimate - mean_ceiling)) < 0.05
    single = noise_ceiling_from_repeats(repeats, n_averaged=1)
    assert np.median(np.abs(single - single_ceiling)) < 0.05
    # the per-voxel truth written for the whole dataset agrees with the repeated story's
    overall = np.load(layouts.synth_true_ceiling(root, "01"))
    assert np.median(np.abs(single - overall)) < 0.05


def test_edge_cases_give_zero_not_nan():
    rng = np.random.default_rng(1)
    t = 100
    constant = np.ones((2, t, 1))
    pure_noise = rng.standard_normal((2, t, 1))
    pure_noise[1] = -pure_noise[0]  # perfectly anti-repeatable -> SP < 0
    identical = np.repeat(rng.standard_normal((1, t, 1)), 3, axis=0)
    with_nan = rng.standard_normal((2, t, 1))
    with_nan[0, 5, 0] = np.nan
    ceiling = noise_ceiling_from_repeats(np.concatenate([constant, pure_noise, with_nan], axis=2))
    np.testing.assert_array_equal(ceiling, [0.0, 0.0, 0.0])
    assert np.isclose(noise_ceiling_from_repeats(identical)[0], 1.0)
    ev = explainable_variance(np.concatenate([constant, identical[:2]], axis=2))
    assert ev[0] == 0.0 and np.isclose(ev[1], 1.0)
    raw = explainable_variance(pure_noise, bias_corrected=False)
    assert np.isclose(raw[0], 0.0) and explainable_variance(pure_noise)[0] < 0


def test_explainable_variance_bias_correction_centres_noise_on_zero():
    rng = np.random.default_rng(2)
    noise = rng.standard_normal((2, 50, 4000))
    assert abs(explainable_variance(noise).mean()) < 0.01
    assert explainable_variance(noise, bias_corrected=False).mean() > 0.4


def test_repeats_shape_is_checked():
    with pytest.raises(ValueError, match="n_repeats >= 2"):
        noise_ceiling_from_repeats(np.zeros((1, 10, 3)))
    with pytest.raises(ValueError, match="n_averaged"):
        noise_ceiling_from_repeats(np.ones((2, 10, 3)), n_averaged=0)


def test_inter_subject_ceiling_tracks_truth_with_many_subjects():
    """Many subjects sharing one signal: the mean of the others ~ signal, r -> true ceiling."""
    rng = np.random.default_rng(3)
    n_tr, n_voxels, n_subjects = 400, 300, 12
    runs = np.repeat(np.arange(4), n_tr // 4)
    signal = rng.standard_normal((n_tr, n_voxels))
    noise_sd = rng.uniform(0.3, 3.0, n_voxels)
    responses = [
        signal + rng.standard_normal((n_tr, n_voxels)) * noise_sd + 5.0 for _ in range(n_subjects)
    ]
    estimate = inter_subject_ceiling(responses, runs)
    truth = np.sqrt(1 / (1 + noise_sd**2))
    # the others' mean still holds noise of variance noise_sd^2 / 11: r = c * c_mean
    expected = truth * np.sqrt(1 / (1 + noise_sd**2 / (n_subjects - 1)))
    assert estimate.shape == (n_subjects, n_voxels)
    assert np.median(np.abs(estimate - expected)) < 0.05


def test_inter_subject_ceiling_on_two_synthetic_subjects():
    brain = simulate("hp", make_spec(n_voxels=200), n_subjects=2, seed=0)
    runs = np.concatenate([np.full(run.kept_trs.size, k) for k, run in enumerate(brain.runs)])
    data = [np.concatenate([s.responses[run.name] for run in brain.runs]) for s in brain.subjects]
    estimate = inter_subject_ceiling(data, runs)
    product = brain.subjects[0].true_ceiling * brain.subjects[1].true_ceiling
    assert np.median(np.abs(estimate[0] - product)) < 0.06
    assert np.corrcoef(estimate[0], brain.subjects[0].true_ceiling)[0, 1] > 0.85
    noise_only = ~brain.signal_voxels
    assert abs(estimate[:, noise_only].mean()) < 0.03


def test_inter_subject_ceiling_input_checks():
    runs = np.repeat([0, 1], 5)
    with pytest.raises(ValueError, match="2 subjects"):
        inter_subject_ceiling([np.zeros((10, 3))], runs)
    with pytest.raises(ValueError, match="2 runs"):
        inter_subject_ceiling([np.zeros((10, 3))] * 2, np.zeros(10))
    with pytest.raises(ValueError, match="shapes"):
        inter_subject_ceiling([np.zeros((10, 3)), np.zeros((10, 4))], runs)
    constant = inter_subject_ceiling([np.ones((10, 3)), np.ones((10, 3))], runs)
    np.testing.assert_array_equal(constant, 0.0)


def test_load_precomputed_ceiling(tmp_path):
    good = tmp_path / "nc.npy"
    np.save(good, np.linspace(-0.1, 0.9, 5).astype(np.float32))
    np.testing.assert_allclose(
        load_precomputed_ceiling(good, 5), np.linspace(-0.1, 0.9, 5), rtol=1e-6
    )
    cases = {
        "missing.npy": (None, "not found"),
        "object.npy": (np.array([{"a": 1}], dtype=object), "pickled"),
        "long.npy": (np.zeros(6), r"shape \(6,\), expected \(5,\)"),
        "matrix.npy": (np.zeros((5, 1)), "shape"),
        "nan.npy": (np.array([0.1, np.nan, 0.2, np.inf, 0.0]), "2 NaN/Inf"),
        "big.npy": (np.array([0.1, 1.5, 0.2, 0.3, 0.0]), r"\[-1, 1\]"),
        "text.npy": (np.array(["a"] * 5), "numeric"),
    }
    for name, (array, message) in cases.items():
        path = tmp_path / name
        if array is not None:
            np.save(path, array)  # np.save stores object arrays as a pickle
        with pytest.raises(BrainmisInputError, match=message) as error:
            load_precomputed_ceiling(path, 5)
        assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)
    corrupt = tmp_path / "corrupt.npy"
    corrupt.write_bytes(b"not an npy file")
    with pytest.raises(BrainmisInputError, match="corrupt.npy"):
        load_precomputed_ceiling(corrupt, 5)
