"""Bad input: each case stops ``brainmis prepare`` with exit 2 and one stderr line naming the
file and the problem, without a traceback and without writing anything."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from tiny_sources import (
    HP_ITEM_ONSETS,
    HP_TRIM,
    textgrid_long,
    write_hp,
    write_manifest,
    write_moth,
    write_nifti,
)

from brainmis.cli import main
from brainmis.data.bundle import load_bundle
from brainmis.data.readers import layouts

HP_OPTIONS = {"trim_start": HP_TRIM[0], "trim_end": HP_TRIM[1]}
MOTH_OPTIONS = {"trim_start": 2, "trim_end": 1, "tr": 1.5}


def hp(root: Path, **manifest) -> Path:
    write_hp(root / "src", subjects=("F",))
    write_manifest(
        root / "src" / "source.yaml", {"layout": "hp", "options": HP_OPTIONS, **manifest}
    )
    return root / "src"


def moth(root: Path) -> Path:
    write_moth(root / "src")
    write_manifest(root / "src" / "source.yaml", {"layout": "moth", "options": MOTH_OPTIONS})
    return root / "src"


def nifti(root: Path) -> Path:
    write_nifti(root / "src")
    write_manifest(root / "src" / "source.yaml", {"layout": "nifti"})
    return root / "src"


# each case: builds a bad source under tmp_path and returns (source, file named, problem words)
def missing_file(tmp):
    source = hp(tmp)
    (source / layouts.HP_TIME_FMRI).unlink()
    return source, "time_fmri.npy", "missing file"


def responses_vs_tr_times(tmp):
    source = hp(tmp)
    data = np.load(layouts.hp_data(source, "F"))
    np.save(layouts.hp_data(source, "F"), data[:-1])
    return source, "data_subject_F.npy", "rows but the TR times give 10 kept TRs"


def non_monotonic_word_times(tmp):
    source = hp(tmp)
    onsets = HP_ITEM_ONSETS.copy()
    onsets[2], onsets[3] = onsets[3], onsets[2]
    np.save(source / layouts.HP_TIME_WORDS, onsets)
    return source, "time_words_fmri.npy", "word onsets are not non-decreasing"


def words_outside_every_run(tmp):
    source = hp(tmp)
    np.save(source / layouts.HP_TIME_WORDS, HP_ITEM_ONSETS + 20.0)  # last words after 30 s
    return source, "time_words_fmri.npy", "word(s) lie outside every run"


def nan_responses(tmp):
    source = hp(tmp)
    data = np.load(layouts.hp_data(source, "F"))
    data[0, 0], data[3, 2] = np.nan, np.inf
    np.save(layouts.hp_data(source, "F"), data)
    return source, "data_subject_F.npy", "contain 2 NaN/Inf value(s)"


def object_array(tmp):
    source = hp(tmp)
    words = np.array(["The", "cat", "+", "x", "y", "z", "w"], dtype=object)
    np.save(source / layouts.HP_WORDS, words, allow_pickle=True)
    return source, "words_fmri.npy", "pickled/object array"


def pickled_rois_without_opt_in(tmp):
    source = hp(tmp)
    layouts.hp_rois(source, "F").unlink()
    np.save(layouts.hp_rois_pickled(source, "F"), {"IFG": np.array([0, 1])}, allow_pickle=True)
    return source, "rois_subject_F.npy", "allow_pickled_rois: true"


def truncated_hdf5(tmp):
    source = moth(tmp)
    path = layouts.moth_train(source, "01")
    path.write_bytes(path.read_bytes()[:1500])
    return source, path.name, "not a readable HDF5 file"


def corrupt_hdf5(tmp):
    source = moth(tmp)
    path = layouts.moth_val(source, "01")
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4)
    return source, path.name, "not a readable HDF5 file"


def unknown_subject(tmp):
    source = hp(tmp, subjects=["F", "Z"])
    return source, "data_subject_Z.npy", "unknown subject 'Z'"


def textgrid_without_word_tier(tmp):
    source = moth(tmp)
    path = layouts.moth_textgrid(source, "story_02")
    path.write_text(textgrid_long([("IntervalTier", "phone", [(0.0, 12.0, "")])], 12.0))
    return source, "story_02.TextGrid", "no word tier"


def moth_rows_vs_trfile(tmp):
    source = moth(tmp)
    trfile = layouts.moth_trfile(source, "story_01")
    trfile.write_text(trfile.read_text() + "11.5 trigger\n")
    return source, "subject01_reading_fmri_data_trn.hdf", "responses and TR times must match"


def unknown_layout(tmp):
    source = hp(tmp, layout="csv")
    return source, "source.yaml", "unknown or missing layout 'csv'"


def unknown_manifest_key(tmp):
    source = hp(tmp, subject=["F"])
    return source, "source.yaml", "unknown key 'subject'"


def unknown_option(tmp):
    source = hp(tmp)
    write_manifest(source / "source.yaml", {"layout": "hp", "options": {"trim": 3}})
    return source, "source.yaml", "unknown option 'trim' for layout hp"


def wrong_option_type(tmp):
    source = hp(tmp)
    write_manifest(source / "source.yaml", {"layout": "hp", "options": {"trim_start": "two"}})
    return source, "source.yaml", "option trim_start must be int"


def nifti_events_missing_column(tmp):
    source = nifti(tmp)
    layouts.nifti_events(source, "01", 2).write_text("trial\tonset\nend\t1.0\n")
    return source, "run-2_events.tsv", "missing column(s) ['word', 'duration']"


def nifti_words_after_the_run(tmp):
    source = nifti(tmp)
    layouts.nifti_events(source, "01", 2).write_text("word\tonset\tduration\nend\t9.0\t0.3\n")
    return source, "run-2_events.tsv", "lie outside its TRs"


def truncated_nifti(tmp):
    source = nifti(tmp)
    path = layouts.nifti_bold(source, "01", 1)
    path.write_bytes(path.read_bytes()[:200])
    return source, "run-1_bold.nii.gz", "not a readable NIfTI image"


def corrupt_mat(tmp):
    (tmp / "src").mkdir()
    layouts.hp_mat(tmp / "src", "1").write_bytes(b"MATLAB 5.0 MAT-file" + b"\0" * 50)
    write_manifest(tmp / "src" / "source.yaml", {"layout": "hp_mat"})
    return tmp / "src", "subject_1.mat", "not a readable MATLAB file"


def unknown_file_key(tmp):
    source = hp(tmp, files={"responses": "x_{subject}.npy"})
    return source, "source.yaml", "unknown file key 'responses' under 'files'"


def matlab_v73_file(tmp):
    (tmp / "src").mkdir()
    with h5py.File(layouts.hp_mat(tmp / "src", "1"), "w") as handle:
        handle.create_dataset("data", data=np.zeros((3, 2)))
    path = layouts.hp_mat(tmp / "src", "1")
    path.write_bytes(
        b"MATLAB 7.3 MAT-file".ljust(128, b" ")[:124] + b"\x00\x02IM" + path.read_bytes()[128:]
    )
    write_manifest(tmp / "src" / "source.yaml", {"layout": "hp_mat"})
    return tmp / "src", "subject_1.mat", "MATLAB v7.3 (HDF5) files are not supported"


def hp_words_without_words(tmp):
    source = hp(tmp)
    np.save(source / layouts.HP_WORDS, np.array([], dtype="<U8"))
    np.save(source / layouts.HP_TIME_WORDS, np.array([], dtype=np.float64))
    return source, "words_fmri.npy", "holds no words (0 item(s)"


def hp_words_only_paragraph_marks(tmp):
    source = hp(tmp)
    np.save(source / layouts.HP_WORDS, np.array(["+"] * len(HP_ITEM_ONSETS)))
    return source, "words_fmri.npy", "holds no words (7 item(s), none a word"


def hp_without_tr_times(tmp):
    source = hp(tmp)
    np.save(source / layouts.HP_TIME_FMRI, np.array([], dtype=np.float64))
    np.save(source / layouts.HP_RUNS_FMRI, np.array([], dtype=np.int64))
    return source, "time_fmri.npy", "holds no TR times"


def moth_single_repeat(tmp):
    source = moth(tmp)
    path = layouts.moth_val(source, "01")
    with h5py.File(path, "a") as handle:
        once = handle["story_03"][:1]
        del handle["story_03"]
        handle.create_dataset("story_03", data=once)
    return source, path.name, "holds 1 repeat(s) (1, 5, 5): a repeated story needs at least 2"


def nifti_negative_duration(tmp):
    source = nifti(tmp)
    layouts.nifti_events(source, "01", 2).write_text("word\tonset\tduration\nend\t1.0\t-0.3\n")
    return source, "run-2_events.tsv", "line 2: duration '-0.3' must be a number of seconds >= 0"


def nifti_duration_not_a_number(tmp):
    source = nifti(tmp)
    layouts.nifti_events(source, "01", 2).write_text("word\tonset\tduration\nend\t1.0\tlong\n")
    return source, "run-2_events.tsv", "line 2: duration 'long' is not a number"


def nifti_events_without_any_word(tmp):
    source = nifti(tmp)
    for run in (1, 2):
        layouts.nifti_events(source, "01", run).write_text("word\tonset\tduration\n")
    return source, "source.yaml", "subject '01' has no words in any run"


def atlas_labels_the_atlas_lacks(tmp):
    source = nifti(tmp)
    labels = layouts.nifti_roi_labels(source, "01")
    labels.write_text("index\tname\n0\tbackground\n1\tIFG\n3\tPostTemp\n7\tMFG\n")
    return source, "roi_labels.tsv", "names label(s) [7] that the atlas sub-01_roi.nii.gz"


def moth_story_without_rows(tmp):
    source = moth(tmp)
    options = {**MOTH_OPTIONS, "tr_offset": 0.0}  # TR times from the rows: none
    write_manifest(source / "source.yaml", {"layout": "moth", "options": options})
    with h5py.File(layouts.moth_train(source, "01"), "a") as handle:
        del handle["story_01"]
        handle.create_dataset("story_01", data=np.zeros((0, 5), np.float32))
    silence = [("IntervalTier", "word", [(0.0, 12.0, "")])]
    layouts.moth_textgrid(source, "story_01").write_text(textgrid_long(silence, 12.0))
    return source, "source.yaml", "run 'story_01': no kept TRs (its responses have 0 rows)"


def moth_without_voxels(tmp):
    source = moth(tmp)
    layouts.moth_mappers(source, "01").unlink()
    for path, shape in ((layouts.moth_train, (5, 0)), (layouts.moth_val, (2, 5, 0))):
        with h5py.File(path(source, "01"), "a") as handle:
            for story in list(handle):
                del handle[story]
                handle.create_dataset(story, data=np.zeros(shape, np.float32))
    return source, "source.yaml", "subject '01' has no voxels"


def hp_without_subjects(tmp):
    source = hp(tmp)
    for name in ("data", "rois", "noise_ceiling"):
        getattr(layouts, f"hp_{name}")(source, "F").unlink()
    return source, "src", "no subject data found"


def moth_story_in_both_files(tmp):
    source = moth(tmp)
    with h5py.File(layouts.moth_val(source, "01"), "a") as handle:
        handle["story_01"] = handle["story_03"][()]
        del handle["story_03"]
    return source, "_val.hdf", "story names repeat across files"


CASES = [
    missing_file,
    responses_vs_tr_times,
    non_monotonic_word_times,
    words_outside_every_run,
    nan_responses,
    object_array,
    pickled_rois_without_opt_in,
    truncated_hdf5,
    corrupt_hdf5,
    unknown_subject,
    textgrid_without_word_tier,
    moth_rows_vs_trfile,
    unknown_layout,
    unknown_manifest_key,
    unknown_option,
    wrong_option_type,
    nifti_events_missing_column,
    nifti_words_after_the_run,
    truncated_nifti,
    corrupt_mat,
    matlab_v73_file,
    unknown_file_key,
    hp_words_without_words,
    hp_words_only_paragraph_marks,
    hp_without_tr_times,
    moth_single_repeat,
    nifti_negative_duration,
    nifti_duration_not_a_number,
    nifti_events_without_any_word,
    atlas_labels_the_atlas_lacks,
    moth_story_without_rows,
    moth_without_voxels,
    hp_without_subjects,
    moth_story_in_both_files,
]


def assert_one_line_error(capsys, code: int, file_name: str, problem: str) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    line = err.strip()
    assert line.startswith("brainmis prepare: error: "), line
    assert file_name in line and problem in line, line
    return line


@pytest.mark.parametrize("case", CASES, ids=[case.__name__ for case in CASES])
def test_bad_source_stops_prepare_before_writing(tmp_path, capsys, case):
    source, file_name, problem = case(tmp_path)
    out = tmp_path / "out" / "bundle"
    code = main(["prepare", str(source), "--out", str(out)])
    assert_one_line_error(capsys, code, file_name, problem)
    assert not (tmp_path / "out").exists()  # nothing written, not even the parent folder


def test_non_empty_output_is_refused_and_kept(tmp_path, capsys):
    source = hp(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text("{}")
    code = main(["prepare", str(source), "--out", str(out)])
    assert_one_line_error(capsys, code, "out", "not empty")
    assert [p.name for p in out.iterdir()] == ["results.json"]


def test_bundle_checksum_mismatch(tmp_path, capsys):
    source = hp(tmp_path)
    assert main(["prepare", str(source), "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    words = next((tmp_path / "b").rglob("words.tsv"))
    words.write_text(words.read_text().replace("cat", "dog"))
    code = main(["prepare", "--verify", str(tmp_path / "b")])
    assert_one_line_error(capsys, code, "words.tsv", "checksum mismatch")


def test_hdf5_dataset_with_wrong_rank(tmp_path):
    from brainmis.data.readers import read_source
    from brainmis.errors import BrainmisInputError

    source = moth(tmp_path)
    with h5py.File(layouts.moth_train(source, "01"), "a") as handle:
        handle.create_dataset("story_09", data=np.zeros(4, np.float32))
    with pytest.raises(BrainmisInputError, match=r"_trn\.hdf: dataset 'story_09' must be \(T, V\)"):
        read_source(source)


def test_repeated_subjects_are_refused(tmp_path, capsys):
    source = hp(tmp_path)
    code = main(["prepare", str(source), "--out", str(tmp_path / "out"), "--subjects", "F", "F"])
    assert_one_line_error(capsys, code, "source.yaml", "subjects repeat: ['F', 'F']")
    assert not (tmp_path / "out").exists()


def test_atlas_labels_without_a_name_are_noted_in_the_summary(tmp_path, capsys):
    source = nifti(tmp_path)
    layouts.nifti_roi_labels(source, "01").write_text("index\tname\n1\tIFG\n")
    assert main(["prepare", str(source), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "note: subject 01: atlas label(s) [3] of sub-01_roi.nii.gz have no name" in out
    assert "label_3" in load_bundle(tmp_path / "out").subjects["01"].roi_masks


def test_files_outside_the_source_root_are_noted_in_the_summary(tmp_path, capsys):
    source = hp(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (source / layouts.HP_TIME_FMRI).rename(elsewhere / "times.npy")
    files = {"time_fmri": "../elsewhere/times.npy"}
    write_manifest(source / "source.yaml", {"layout": "hp", "options": HP_OPTIONS, "files": files})
    assert main(["prepare", str(source), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "note: files.time_fmri (../elsewhere/times.npy) points outside the source root" in out
    inside = {"time_fmri": "./time_fmri.npy"}
    (elsewhere / "times.npy").rename(source / layouts.HP_TIME_FMRI)
    write_manifest(source / "source.yaml", {"layout": "hp", "options": HP_OPTIONS, "files": inside})
    assert main(["prepare", str(source), "--out", str(tmp_path / "out2")]) == 0
    assert "note:" not in capsys.readouterr().out


def test_an_existing_bundle_without_words_is_refused_by_fit(tmp_path, capsys, monkeypatch):
    """A bundle prepared before prepare refused word-less stimuli: fit stops on loading it."""
    from brainmis.data import bundle as bundle_module
    from brainmis.data.readers import read_source

    dataset = read_source(hp(tmp_path))
    for run in dataset.subjects["F"].runs:
        run.words, run.word_onsets = run.words[:0], run.word_onsets[:0]
    with monkeypatch.context() as patch:  # write it as an older prepare would have
        patch.setattr(bundle_module, "check_dataset", lambda dataset, path: None)
        bundle_module.write_bundle(dataset, tmp_path / "old")
    args = [f"--data.bundle={tmp_path / 'old'}", f"--model.pretrained_path={tmp_path / 'model'}"]
    code = main(["fit", *args, f"--trainer.default_root_dir={tmp_path / 'runs'}"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("brainmis fit: error: ") and "old: subject 'F' has no words" in line
    assert not (tmp_path / "runs").exists()


def test_an_empty_roi_mask_is_noted_in_the_summary(tmp_path, capsys):
    source = hp(tmp_path)
    masks = {"IFG": np.array([1, 1, 0, 0, 0, 0], bool), "MFG": np.zeros(6, bool)}
    np.savez(layouts.hp_rois(source, "F"), **masks)
    assert main(["prepare", str(source), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "note: subject F: ROI 'MFG' holds no voxel; train with data.rois naming" in out


def test_a_noise_ceiling_above_one_is_noted_in_the_summary(tmp_path, capsys):
    source = hp(tmp_path)
    np.save(layouts.hp_noise_ceiling(source, "F"), np.linspace(0.0, 80.0, 6))  # percent
    assert main(["prepare", str(source), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "note: subject F: noise ceiling values go up to 80; ceilings are correlations" in out
    assert main(["prepare", str(hp(tmp_path / "fine")), "--out", str(tmp_path / "out2")]) == 0
    assert "note:" not in capsys.readouterr().out
