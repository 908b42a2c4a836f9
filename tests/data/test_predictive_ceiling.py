"""The predictive inter-subject ceiling (no common voxel space) and where it is used:
``brainmis prepare``, the synthetic default bundle, voxel selection in the datamodule."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io
from scipy.stats import spearmanr
from tiny_sources import HP_TRIM, write_hp, write_manifest, write_nifti

from brainmis.cli import main
from brainmis.data.bundle import load_bundle, write_bundle
from brainmis.data.datamodule import BrainDataModule
from brainmis.data.dataset_ceiling import (
    add_predictive_ceilings,
    subjects_without_ceiling,
    timeline_mismatch,
)
from brainmis.data.noise_ceiling import (
    predictive_ceiling_method,
    predictive_inter_subject_ceiling,
)
from brainmis.data.readers import layouts, read_layout
from brainmis.data.records import BrainDataset, Run, Subject
from brainmis.data.synthetic import generate_synthetic, make_spec, simulate, synthetic_bundle
from brainmis.errors import BrainmisInputError

SMALL = {"n_voxels": 60, "max_words": 900}
TRUE_SIGNAL = 0.1
"""A "true signal voxel" has a true ceiling above this. Every voxel the generator gives a
signal has a true ceiling of at least sqrt(0.02 / 1.02) = 0.14 (the weakest SNR), every
other voxel exactly 0, so this is the generator's set of signal voxels."""


def permuted_hp_subjects(n_subjects: int, n_voxels: int, seed: int = 0):
    """Synthetic HP subjects without a common space: each subject's voxel columns (and its
    true ceiling) permuted differently, and a different number of voxels kept per subject.

    Returns per subject ``(T, V_s)`` responses and ``(V_s,)`` true ceilings, and ``(T,)``
    run labels."""
    brain = simulate("hp", make_spec(n_voxels=n_voxels), n_subjects=n_subjects, seed=seed)
    runs = np.concatenate([np.full(run.kept_trs.size, k) for k, run in enumerate(brain.runs)])
    rng = np.random.default_rng(seed + 100)
    responses, truths = [], []
    for index, subject in enumerate(brain.subjects):
        columns = rng.permutation(n_voxels)[: n_voxels - 20 * index]
        data = np.concatenate([subject.responses[run.name] for run in brain.runs])
        responses.append(data[:, columns])
        truths.append(subject.true_ceiling[columns])
    return responses, truths, runs


def test_predictive_ceiling_ranks_and_selects_voxels_without_a_common_space():
    """4 subjects of 400 voxels (minus 20 per subject), permuted per subject, 684 TRs in 4
    runs. Observed (seed 0): Spearman 0.939-0.941, recall 0.995-1.0 of the true signal voxels
    at threshold 0.05; ~18% of the pure-noise voxels pass it too (the score of a noise voxel
    has a standard deviation of ~0.05 with 171-TR test runs)."""
    responses, truths, runs = permuted_hp_subjects(4, 400)
    estimates = predictive_inter_subject_ceiling(responses, runs)
    for estimate, truth in zip(estimates, truths, strict=True):
        assert estimate.shape == truth.shape
        assert spearmanr(estimate, truth)[0] >= 0.8
        signal = truth > TRUE_SIGNAL
        assert np.mean(estimate[signal] > 0.05) >= 0.9
        # a ceiling estimate, not an inflated score: close to the truth on signal voxels
        assert abs(np.median(estimate[signal] - truth[signal])) < 0.05
        assert abs(np.mean(estimate[~signal])) < 0.02


def test_predictive_ceiling_of_pure_noise_is_zero_on_average():
    """Nothing of the held-out run leaks into the fit: independent noise scores ~0."""
    rng = np.random.default_rng(0)
    runs = np.repeat(np.arange(4), 100)
    responses = [rng.standard_normal((400, v)).astype(np.float32) for v in (150, 120, 90)]
    estimates = predictive_inter_subject_ceiling(responses, runs, n_components=20)
    values = np.concatenate(estimates)
    assert abs(values.mean()) < 0.01 and values.std() < 0.08


def test_predictive_ceiling_targets_constant_voxels_and_input_checks():
    rng = np.random.default_rng(1)
    runs = np.repeat([0, 1, 2], 30)
    shared = rng.standard_normal((90, 3))
    a = shared @ rng.standard_normal((3, 8)) + 0.5 * rng.standard_normal((90, 8))
    b = shared @ rng.standard_normal((3, 5)) + 0.5 * rng.standard_normal((90, 5))
    a[:, 0] = 4.0  # constant: scored 0
    seen = []
    estimates = predictive_inter_subject_ceiling(
        [a, b], runs, n_components=5, targets=[0], on_subject=lambda i, s: seen.append(i)
    )
    assert estimates[1] is None and seen == [0]
    assert estimates[0][0] == 0.0 and np.all(estimates[0][1:] > 0.5)
    with pytest.raises(ValueError, match="2 subjects"):
        predictive_inter_subject_ceiling([a], runs)
    with pytest.raises(ValueError, match="2 runs"):
        predictive_inter_subject_ceiling([a, b], np.zeros(90))
    with pytest.raises(ValueError, match=r"subject 1: responses must be \(T=90"):
        predictive_inter_subject_ceiling([a, b[:80]], runs)
    assert predictive_ceiling_method(50) == (
        "predictive inter-subject (PCA k=50, ridge, leave-one-run-out)"
    )


def tiny_subject(name: str, n_kept: tuple[int, ...] = (12, 12, 12), n_voxels: int = 4) -> Subject:
    rng = np.random.default_rng(len(name))
    runs = [
        Run(
            name=f"run{index + 1}",
            tr_times=2.0 * np.arange(count + 2),
            responses=rng.standard_normal((count, n_voxels)).astype(np.float32),
            kept_trs=np.arange(1, count + 1),
            words=np.array(["a", "b"]),
            word_onsets=np.array([1.0, 3.0]),
        )
        for index, count in enumerate(n_kept)
    ]
    return Subject(name=name, runs=runs, roi_masks={"lang": np.ones(n_voxels, bool)})


def test_timeline_mismatch_names_the_difference():
    same = BrainDataset("d", 2.0, {"A": tiny_subject("A"), "B": tiny_subject("B", n_voxels=7)})
    assert timeline_mismatch(same) is None  # voxel counts may differ
    fewer = BrainDataset("d", 2.0, {"A": tiny_subject("A"), "B": tiny_subject("B", (12, 11, 12))})
    assert timeline_mismatch(fewer) == "subjects A and B: run run2 has 12 vs 11 kept TRs"
    other = tiny_subject("B")
    other.runs[0].name = "story"
    assert "different runs" in timeline_mismatch(
        BrainDataset("d", 2.0, {"A": same.subjects["A"], "B": other})
    )
    shifted = tiny_subject("B")
    shifted.runs[2].kept_trs = shifted.runs[2].kept_trs - 1
    assert timeline_mismatch(BrainDataset("d", 2.0, {"A": same.subjects["A"], "B": shifted})) == (
        "subjects A and B: run run3 keeps different TRs"
    )
    with pytest.raises(ValueError, match="kept TRs"):
        add_predictive_ceilings(fewer)


def test_add_predictive_ceilings_keeps_given_ceilings_and_skips_repeats():
    given = tiny_subject("A")
    given.noise_ceiling = np.full(4, 0.3, np.float32)
    given.noise_ceiling_method = "precomputed (file.npy)"
    dataset = BrainDataset("d", 2.0, {"A": given, "B": tiny_subject("B", n_voxels=6)})
    assert subjects_without_ceiling(dataset) == ["B"]
    lines: list[str] = []
    assert add_predictive_ceilings(dataset, n_components=5, progress=lines.append) == ["B"]
    assert dataset.subjects["A"].noise_ceiling_method == "precomputed (file.npy)"
    assert dataset.subjects["B"].noise_ceiling.shape == (6,)
    assert dataset.subjects["B"].noise_ceiling_method == predictive_ceiling_method(5)
    assert len(lines) == 1 and lines[0].startswith("noise ceiling: subject B (1/1), 6 voxels, ")
    alone = BrainDataset("d", 2.0, {"A": tiny_subject("A")})
    assert add_predictive_ceilings(alone) == [] and alone.subjects["A"].noise_ceiling is None
    repeated = tiny_subject("B")
    repeated.runs[1].repeats = np.stack([repeated.runs[1].responses] * 2)
    assert subjects_without_ceiling(BrainDataset("d", 2.0, {"B": repeated})) == []


# --- brainmis prepare ------------------------------------------------------------------------


def manifest_subjects(bundle) -> dict[str, dict]:
    manifest = json.loads((bundle / "manifest.json").read_text())
    return {entry["name"]: entry for entry in manifest["subjects"]}


def test_prepare_stores_the_predictive_ceiling_and_its_method(tmp_path, capsys):
    source = generate_synthetic("hp", tmp_path / "hp", n_subjects=2, **SMALL)
    assert main(["prepare", str(source), "--out", str(tmp_path / "bundle")]) == 0
    out = capsys.readouterr().out
    assert "noise ceiling: subject F (1/2), 60 voxels, " in out
    assert "noise ceiling: subject H (2/2), 60 voxels, " in out
    method = "predictive inter-subject (PCA k=50, ridge, leave-one-run-out)"
    entries = manifest_subjects(tmp_path / "bundle")
    assert all(
        e["has_noise_ceiling"] and e["noise_ceiling_method"] == method for e in entries.values()
    )
    dataset = load_bundle(tmp_path / "bundle")
    truth = np.load(layouts.synth_true_ceiling(source, "F"))
    ceiling = dataset.subjects["F"].noise_ceiling
    assert dataset.subjects["F"].noise_ceiling_method == method
    assert ceiling.shape == (60,) and spearmanr(ceiling, truth)[0] > 0.7
    module = BrainDataModule(bundle=str(tmp_path / "bundle"))
    assert module.ceiling_source == f"subject noise ceiling ({method})"
    assert module.ceiling_threshold == 0.05
    assert module.voxel_counts["selected"] == module.n_voxels


def test_prepare_without_noise_ceiling_and_roi_only_must_be_asked_for(tmp_path, capsys):
    source = generate_synthetic("hp", tmp_path / "hp", n_subjects=2, **SMALL)
    bundle = tmp_path / "bundle"
    assert main(["prepare", str(source), "--out", str(bundle), "--no-noise-ceiling"]) == 0
    assert "noise ceiling" not in capsys.readouterr().out
    entries = manifest_subjects(bundle)
    assert not any(e["has_noise_ceiling"] for e in entries.values())
    assert all(e["noise_ceiling_method"] is None for e in entries.values())
    with pytest.raises(BrainmisInputError, match="no noise ceiling is available") as refused:
        BrainDataModule(bundle=str(bundle), subject="H")
    message = str(refused.value)
    assert message.startswith(str(bundle)) and "\n" not in message
    assert "subject H" in message and "data.allow_roi_only: true" in message
    roi_only = BrainDataModule(bundle=str(bundle), subject="H", allow_roi_only=True)
    assert roi_only.ceiling_source == "none (ROI mask only)" and roi_only.ceiling_threshold is None
    assert roi_only.voxel_counts["selected"] == roi_only.voxel_counts["in_roi"]


def test_prepare_keeps_a_ceiling_file_and_its_method(tmp_path, capsys):
    write_hp(tmp_path / "hp", subjects=("F", "H"), ceiling=True)
    options = {"trim_start": HP_TRIM[0], "trim_end": HP_TRIM[1]}
    write_manifest(tmp_path / "hp" / "source.yaml", {"layout": "hp", "options": options})
    assert main(["prepare", str(tmp_path / "hp"), "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "noise ceiling: precomputed (noise_ceiling_subject_F.npy)" in out
    entries = manifest_subjects(tmp_path / "b")
    assert entries["H"]["noise_ceiling_method"] == "precomputed (noise_ceiling_subject_H.npy)"


def test_prepare_refuses_subjects_on_different_timelines(tmp_path, capsys):
    import nibabel as nib

    root = tmp_path / "nifti"
    write_nifti(root, subject="01")
    write_nifti(root, subject="02", seed=1)
    bold = layouts.nifti_bold(root, "02", 2)
    image = nib.load(bold)
    shorter = nib.Nifti1Image(np.asarray(image.dataobj)[..., :4], image.affine, image.header)
    nib.save(shorter, bold)  # subject 02's run 2: 4 volumes instead of 5
    write_manifest(root / "source.yaml", {"layout": "nifti"})
    assert main(["prepare", str(root), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "subjects 01 and 02" in err and "kept TRs" in err and "--no-noise-ceiling" in err
    assert not (tmp_path / "b").exists()
    assert main(["prepare", str(root), "--out", str(tmp_path / "b"), "--no-noise-ceiling"]) == 0


def test_old_bundles_without_a_method_still_load(tmp_path):
    write_hp(tmp_path / "hp", subjects=("F",), ceiling=True)
    dataset = read_layout(tmp_path / "hp", "hp", trim_start=HP_TRIM[0], trim_end=HP_TRIM[1])
    bundle = write_bundle(dataset, tmp_path / "b")
    manifest = json.loads((bundle / "manifest.json").read_text())
    for entry in manifest["subjects"]:
        del entry["noise_ceiling_method"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    subject = load_bundle(bundle).subjects["F"]
    assert subject.noise_ceiling is not None and subject.noise_ceiling_method is None


# --- the synthetic default -------------------------------------------------------------------


def test_synthetic_bundle_gets_the_same_ceiling_as_prepare(tmp_path, capsys):
    bundle = synthetic_bundle(tmp_path / "cache", layout="hp", n_subjects=2, **SMALL)
    source = bundle.parent / "source"
    assert not layouts.hp_noise_ceiling(source, "F").exists()  # no file: computed
    assert main(["prepare", str(source), "--out", str(tmp_path / "prepared")]) == 0
    cached, prepared = load_bundle(bundle), load_bundle(tmp_path / "prepared")
    for name in ("F", "H"):
        assert cached.subjects[name].noise_ceiling_method == predictive_ceiling_method(50)
        np.testing.assert_array_equal(
            cached.subjects[name].noise_ceiling, prepared.subjects[name].noise_ceiling
        )
    moth = load_bundle(synthetic_bundle(tmp_path / "cache", layout="moth", n_subjects=2, **SMALL))
    subject = moth.subjects["01"]
    assert subject.noise_ceiling is None and subject.runs[-1].repeats is not None  # Schoppe


# --- the Wehbe .mat reader -------------------------------------------------------------------


def test_hp_mat_default_trimming_matches_the_array_layout(tmp_path):
    """20 first and 15 last TRs of every run removed by default, as in data_subject_X.npy."""
    n_per_run = 40
    data = np.random.default_rng(0).standard_normal((2 * n_per_run, 3))
    time = np.column_stack([2.0 * np.arange(2 * n_per_run), np.repeat([1, 2], n_per_run)])
    words = np.zeros((1, 2), dtype=[("text", "O"), ("start", "O"), ("length", "O")])
    words[0, 0] = ("Harry", np.array([[41.0]]), np.array([[0.5]]))
    words[0, 1] = ("left", np.array([[121.0]]), np.array([[0.5]]))
    meta = {
        "dimx": 2,
        "dimy": 2,
        "dimz": 1,
        "colToCoord": np.array([[1, 1, 1], [2, 1, 1], [1, 2, 1]], float),
    }
    root = tmp_path / "mat"
    root.mkdir()
    scipy.io.savemat(
        layouts.hp_mat(root, "1"), {"data": data, "time": time, "words": words, "meta": meta}
    )
    subject = read_layout(root, "hp_mat").subjects["1"]
    for index, run in enumerate(subject.runs):
        np.testing.assert_array_equal(run.kept_trs, np.arange(20, 25))
        rows = index * n_per_run + np.arange(20, 25)
        np.testing.assert_allclose(run.responses, data[rows], rtol=1e-6)
    every = read_layout(root, "hp_mat", trim_start=0, trim_end=0).subjects["1"]
    assert [len(run.kept_trs) for run in every.runs] == [40, 40]
    layouts.hp_mat(root, "1").unlink()
    scipy.io.savemat(
        layouts.hp_mat(root, "1"),
        {"data": data[:60], "time": time[:60], "words": words[:, :1], "meta": meta},
    )  # run 2 has 20 TRs: too few for 20 + 15
    with pytest.raises(
        BrainmisInputError, match="too few for the trimming .trim_start=20, trim_end=15"
    ):
        read_layout(root, "hp_mat")
