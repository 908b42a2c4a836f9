"""Every reader on tiny hand-made files, manifests, presets, and on the synthetic layouts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_sources import (
    HP_RUN_ONSETS,
    HP_RUN_WORDS,
    HP_TR,
    HP_TRIM,
    MOTH_TR,
    MOTH_TRIM,
    MOTH_TRS,
    NIFTI_TR,
    STORY_ONSETS,
    STORY_WORDS,
    write_hp,
    write_hp_mat,
    write_manifest,
    write_moth,
    write_nifti,
)

from brainmis.data.readers import layouts, read_layout, read_source
from brainmis.errors import BrainmisInputError

HP_OPTIONS = {"trim_start": HP_TRIM[0], "trim_end": HP_TRIM[1]}
MOTH_OPTIONS = {"trim_start": MOTH_TRIM[0], "trim_end": MOTH_TRIM[1], "tr": MOTH_TR}


# --- Harry Potter arrays ---------------------------------------------------------------------
def test_hp_rows_map_to_trs_and_words_to_runs(tmp_path):
    tiny = write_hp(tmp_path / "hp")
    dataset = read_layout(tmp_path / "hp", "hp", **HP_OPTIONS)
    assert dataset.name == "harry_potter" and dataset.tr == HP_TR
    assert list(dataset.subjects) == ["F", "H"]
    subject = dataset.subjects["F"]
    assert [run.name for run in subject.runs] == ["run1", "run2"]
    run1, run2 = subject.runs
    # 8 TRs per run, 2 trimmed at the start and 1 at the end: rows 0-4 are TRs 2..6 of run 1
    np.testing.assert_array_equal(run1.kept_trs, [2, 3, 4, 5, 6])
    np.testing.assert_array_equal(run1.tr_times, 2.0 * np.arange(8))
    np.testing.assert_array_equal(run2.tr_times, 16.0 + 2.0 * np.arange(8))  # one clock
    np.testing.assert_array_equal(run1.responses, tiny.data["F"][:5])
    np.testing.assert_array_equal(run2.responses, tiny.data["F"][5:])
    assert run1.responses.dtype == np.float32
    # '+' dropped, '@' stripped, each run holds its own words
    assert [run.words.tolist() for run in subject.runs] == list(HP_RUN_WORDS)
    assert [run.word_onsets.tolist() for run in subject.runs] == list(HP_RUN_ONSETS)
    assert sorted(subject.roi_masks) == ["AntTemp", "IFG"]
    np.testing.assert_array_equal(subject.roi_masks["IFG"], tiny.rois["IFG"])
    np.testing.assert_allclose(subject.noise_ceiling, np.linspace(0, 0.5, 6))


def test_hp_word_on_a_run_boundary_belongs_to_the_earlier_run(tmp_path):
    """Run 1's last TR is at 14 s: a word at 14.0 s is in it (t - TR < onset <= t), one at
    14.5 s in run 2's first TR (16 s); -2.0 s would be outside every run."""
    write_hp(tmp_path / "hp", subjects=("F",))
    np.save(tmp_path / "hp" / layouts.HP_WORDS, np.array(["a", "b", "c"]))
    np.save(tmp_path / "hp" / layouts.HP_TIME_WORDS, np.array([-1.5, 14.0, 14.5]))
    run1, run2 = read_layout(tmp_path / "hp", "hp", **HP_OPTIONS).subjects["F"].runs
    assert run1.words.tolist() == ["a", "b"] and run2.words.tolist() == ["c"]
    np.save(tmp_path / "hp" / layouts.HP_TIME_WORDS, np.array([-2.0, 14.0, 14.5]))
    with pytest.raises(BrainmisInputError, match="1 word\\(s\\) lie outside every run, first 'a'"):
        read_layout(tmp_path / "hp", "hp", **HP_OPTIONS)


def test_absolute_file_override_and_discovery(tmp_path):
    tiny = write_hp(tmp_path / "hp", subjects=("F", "H"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for subject in ("F", "H"):
        layouts.hp_data(tmp_path / "hp", subject).rename(elsewhere / f"resp-{subject}.npy")
    files = {"data": str(elsewhere / "resp-{subject}.npy")}
    dataset = read_layout(tmp_path / "hp", "hp", files=files, **HP_OPTIONS)
    assert list(dataset.subjects) == ["F", "H"]
    np.testing.assert_array_equal(dataset.subjects["H"].runs[0].responses, tiny.data["H"][:5])


def test_hp_default_trimming_is_20_15(tmp_path):
    write_hp(tmp_path / "hp")
    with pytest.raises(
        BrainmisInputError, match=r"runs_fmri\.npy: run 1 has 8 TRs.*trim_start \(20\)"
    ):
        read_layout(tmp_path / "hp", "hp", subjects=["F"])


def test_hp_alternative_words_file_and_no_rois(tmp_path):
    write_hp(tmp_path / "hp", rois=None, ceiling=False, words_file=layouts.HP_WORDS_ALT)
    subject = read_layout(tmp_path / "hp", "hp", subjects=["H"], **HP_OPTIONS).subjects["H"]
    assert subject.runs[0].words.tolist() == HP_RUN_WORDS[0]
    assert subject.roi_masks == {} and subject.noise_ceiling is None


def test_hp_pickled_rois_only_on_opt_in(tmp_path):
    tiny = write_hp(tmp_path / "hp", rois="pickled")
    with pytest.raises(BrainmisInputError, match="allow_pickled_rois: true"):
        read_layout(tmp_path / "hp", "hp", **HP_OPTIONS)
    dataset = read_layout(tmp_path / "hp", "hp", allow_pickled_rois=True, **HP_OPTIONS)
    for name, mask in tiny.rois.items():
        np.testing.assert_array_equal(dataset.subjects["F"].roi_masks[name], mask)


class _Payload:
    """Pickles as a call that would create a folder if it were ever unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        import os

        return (os.makedirs, (self.path,))


def test_opted_in_pickled_rois_still_run_no_code(tmp_path):
    write_hp(tmp_path / "hp", rois="pickled")
    roi_file = next((tmp_path / "hp").glob("rois_subject_F*.npy"))
    marker = tmp_path / "pwned"
    payload = np.empty((), dtype=object)
    payload[()] = {"A": _Payload(str(marker))}
    np.save(roi_file, payload, allow_pickle=True)
    with pytest.raises(BrainmisInputError, match="not only numpy arrays"):
        read_layout(tmp_path / "hp", "hp", allow_pickled_rois=True, **HP_OPTIONS)
    assert not marker.exists()


def test_hp_zero_variance_voxel_is_not_an_error(tmp_path):
    tiny = write_hp(tmp_path / "hp", subjects=("F",))
    data = tiny.data["F"].copy()
    data[:, 2] = 3.0
    np.save(layouts.hp_data(tmp_path / "hp", "F"), data)
    run = read_layout(tmp_path / "hp", "hp", **HP_OPTIONS).subjects["F"].runs[0]
    assert np.all(run.responses[:, 2] == 3.0)


def test_manifest_with_file_overrides_and_json(tmp_path):
    tiny = write_hp(tmp_path / "data", subjects=("F",))
    bold = tmp_path / "data" / "bold"
    bold.mkdir()
    layouts.hp_data(tmp_path / "data", "F").rename(bold / "F_responses.npy")
    manifest = tmp_path / "sources" / "hp.json"
    manifest.parent.mkdir()
    manifest.write_text(
        json.dumps(
            {
                "name": "my_hp",
                "layout": "hp",
                "root": "../data",
                "options": HP_OPTIONS,
                "files": {"data": "bold/{subject}_responses.npy"},
            }
        )
    )
    dataset = read_source(manifest)
    assert dataset.name == "my_hp" and list(dataset.subjects) == ["F"]
    np.testing.assert_array_equal(dataset.subjects["F"].runs[1].responses, tiny.data["F"][5:])


def test_source_folder_and_subject_selection(tmp_path):
    write_hp(tmp_path / "hp", subjects=("F", "H", "I"))
    write_manifest(
        tmp_path / "hp" / "source.yaml",
        {"layout": "hp", "subjects": ["H", "I"], "options": HP_OPTIONS},
    )
    assert list(read_source(tmp_path / "hp").subjects) == ["H", "I"]
    assert read_source(tmp_path / "hp").name == "hp"  # default: the root folder's name
    assert list(read_source(tmp_path / "hp", subjects=["F"]).subjects) == ["F"]


# --- Harry Potter .mat -----------------------------------------------------------------------
def test_hp_mat_coordinates_affine_rois_and_words(tmp_path):
    truth = write_hp_mat(tmp_path / "mat", subject="1")
    dataset = read_layout(tmp_path / "mat", "hp_mat", trim_start=1, trim_end=1)
    subject = dataset.subjects["1"]
    assert dataset.tr == 2.0 and [run.name for run in subject.runs] == ["run1", "run2"]
    run1, run2 = subject.runs
    np.testing.assert_array_equal(run1.kept_trs, [1, 2, 3, 4])
    np.testing.assert_allclose(run1.responses, truth["data"][1:5], rtol=1e-6)
    np.testing.assert_allclose(run2.responses, truth["data"][7:11], rtol=1e-6)
    np.testing.assert_array_equal(run2.tr_times, 12.0 + 2.0 * np.arange(6))
    assert run1.words.tolist() == ["Harry", "sighed."] and run2.words.tolist() == ["He", "left"]
    # coordinates become 0-based, and the affine still maps them to the same world points
    np.testing.assert_array_equal(subject.voxel_coords, truth["coords_1based"] - 1)
    assert subject.volume_shape == (3, 4, 5)
    homogeneous = np.column_stack([subject.voxel_coords, np.ones(4)])
    one_based = np.column_stack([truth["coords_1based"], np.ones(4)])
    np.testing.assert_allclose(homogeneous @ subject.affine.T, one_based @ truth["matrix"].T)
    np.testing.assert_array_equal(subject.roi_masks["IFG"], [True, False, False, True])
    np.testing.assert_array_equal(subject.roi_masks["AngularG"], [False, True, False, False])


# --- Moth ------------------------------------------------------------------------------------
def test_moth_stories_repeats_textgrids_and_trfiles(tmp_path):
    tiny = write_moth(tmp_path / "moth")
    dataset = read_layout(tmp_path / "moth", "moth", **MOTH_OPTIONS)
    assert dataset.tr == MOTH_TR and list(dataset.subjects) == ["01"]
    subject = dataset.subjects["01"]
    assert [run.name for run in subject.runs] == ["story_01", "story_02", "story_03"]
    for run in subject.runs:
        # trigger times are taken relative to the sound-start line
        np.testing.assert_allclose(run.tr_times, MOTH_TR * np.arange(MOTH_TRS))
        np.testing.assert_array_equal(run.kept_trs, np.arange(2, 7))
        assert run.words.tolist() == STORY_WORDS  # long (story_01/03) and short (story_02)
        np.testing.assert_array_equal(run.word_onsets, STORY_ONSETS)
    np.testing.assert_array_equal(subject.runs[0].responses, tiny.train["story_01"])
    assert subject.runs[0].repeats is None
    test_run = subject.runs[2]
    np.testing.assert_array_equal(test_run.repeats, tiny.val["story_03"])
    np.testing.assert_allclose(test_run.responses, tiny.val["story_03"].mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(subject.roi_masks["Broca"], [0, 0, 0, 1, 1])


def test_moth_tr_from_offset_without_trfiles(tmp_path):
    write_moth(tmp_path / "moth", trfiles=False)
    with pytest.raises(BrainmisInputError, match=r"story_01\.txt: missing file .*tr_offset"):
        read_layout(tmp_path / "moth", "moth", **MOTH_OPTIONS)
    dataset = read_layout(tmp_path / "moth", "moth", tr_offset=1.0, **MOTH_OPTIONS)
    run = dataset.subjects["01"].runs[0]
    np.testing.assert_allclose(run.tr_times, 1.0 + MOTH_TR * np.arange(MOTH_TRS))


# --- NIfTI -----------------------------------------------------------------------------------
def test_nifti_voxels_coordinates_atlas_and_events(tmp_path):
    truth = write_nifti(tmp_path / "bids")
    dataset = read_layout(tmp_path / "bids", "nifti")
    assert dataset.tr == NIFTI_TR and list(dataset.subjects) == ["01"]
    subject = dataset.subjects["01"]
    # in-brain voxels (non-zero signal) plus the ROI voxel outside the brain, in C order
    expected_voxels = truth["brain"] | (truth["labels"] > 0)
    np.testing.assert_array_equal(subject.voxel_coords, np.argwhere(expected_voxels))
    assert subject.volume_shape == (3, 3, 2)
    np.testing.assert_array_equal(subject.affine, truth["affine"])
    i, j, k = subject.voxel_coords.T
    for run, data in zip(subject.runs, truth["runs"], strict=True):
        np.testing.assert_array_equal(run.responses, data[i, j, k, :].T)
        np.testing.assert_array_equal(run.tr_times, NIFTI_TR * np.arange(data.shape[3]))
    assert subject.runs[0].words.tolist() == ["Once", "upon", "a", "time"]
    np.testing.assert_array_equal(subject.runs[1].word_onsets, [1.0])
    assert sorted(subject.roi_masks) == ["IFG", "PostTemp"]
    np.testing.assert_array_equal(subject.roi_masks["IFG"], truth["labels"][i, j, k] == 1)
    np.testing.assert_array_equal(subject.roi_masks["PostTemp"], truth["labels"][i, j, k] == 3)


def test_nifti_binary_mask_and_trimming(tmp_path):
    write_nifti(tmp_path / "bids", atlas=False)
    dataset = read_layout(tmp_path / "bids", "nifti", trim_start=1, trim_end=2, roi_name="lang")
    subject = dataset.subjects["01"]
    assert list(subject.roi_masks) == ["lang"] and subject.roi_masks["lang"].sum() == 2
    np.testing.assert_array_equal(subject.runs[0].kept_trs, [1, 2, 3])
    assert subject.runs[0].responses.shape == (3, 5)


# --- synthetic layouts (the generator writes, the readers read) ------------------------------
@pytest.mark.parametrize("layout", ["hp", "moth", "nifti"])
def test_synthetic_layouts_read_back_with_their_ground_truth(tmp_path, layout):
    synthetic = pytest.importorskip("brainmis.data.synthetic")
    root = synthetic.generate_synthetic(
        layout, tmp_path / layout, n_subjects=2, seed=1, n_voxels=30
    )
    dataset = read_source(root)
    assert len(dataset.subjects) == 2
    for name, subject in dataset.subjects.items():
        assert subject.n_voxels == 30 and subject.roi_masks
        assert all(mask.shape == (30,) for mask in subject.roi_masks.values())
        for run in subject.runs:
            features = np.load(layouts.synth_true_features(root, run.name))
            assert features.shape[0] == run.responses.shape[0]  # one feature row per kept TR
            assert len(run.words) > 0
        if layout == "hp":
            true_ceiling = np.load(layouts.synth_true_ceiling(root, name))
            if subject.noise_ceiling is not None:
                np.testing.assert_allclose(subject.noise_ceiling, true_ceiling, rtol=1e-6)
        if layout == "moth":
            assert sum(run.repeats is not None for run in subject.runs) == 1
        if layout == "nifti":
            assert subject.voxel_coords.shape == (30, 3) and subject.affine.shape == (4, 4)
