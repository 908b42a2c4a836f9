"""The Narratives and LeBel layouts: synthetic datasets in the real file layout, read back
against the simulation, prepared with ``brainmis prepare --layout``, trained on for a couple
of steps, and bad files in these layouts (one line naming the file, nothing written)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest
import yaml
from tiny_sources import story_textgrid

from brainmis.cli import main
from brainmis.data.bundle import load_bundle
from brainmis.data.readers import layouts, read_layout, read_source
from brainmis.data.synthetic import generate_synthetic, make_spec, simulate
from brainmis.data.synthetic.story_layout_writers import UNTIMED_EVERY
from brainmis.errors import BrainmisInputError

SMALL = {"n_voxels": 60, "max_words": 900}
REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs" / "demo" / "misaligned.yaml"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> dict[str, Path]:
    """A small synthetic dataset per layout (2 subjects, 4 stories), written once."""
    root = tmp_path_factory.mktemp("story-layouts")
    return {
        layout: generate_synthetic(layout, root / layout, n_subjects=2, seed=0, **SMALL)
        for layout in ("narratives", "lebel")
    }


def copy_of(synthetic: dict[str, Path], layout: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(synthetic[layout], tmp_path / layout))


# --- Narratives ------------------------------------------------------------------------------
def test_narratives_reads_back_the_simulation(synthetic):
    brain = simulate("narratives", make_spec(**SMALL), 2, 0)
    dataset = read_layout(synthetic["narratives"], "narratives")
    assert dataset.tr == layouts.NARRATIVES_TR == 1.5
    assert list(dataset.subjects) == ["001", "002"]
    subject = dataset.subjects["002"]
    assert [run.name for run in subject.runs] == ["story01", "story02", "story03", "story04"]
    np.testing.assert_array_equal(subject.voxel_coords, brain.voxel_coords)  # C order
    assert sorted(subject.roi_masks) == sorted(brain.roi_masks)
    for name, mask in brain.roi_masks.items():
        np.testing.assert_array_equal(subject.roi_masks[name], mask)
    for run, truth in zip(subject.runs, brain.runs, strict=True):
        np.testing.assert_allclose(run.responses, brain.subjects[1].responses[truth.name])
        np.testing.assert_array_equal(run.kept_trs, np.arange(truth.tr_times.size))
        timed = np.arange(len(truth.tokens)) % UNTIMED_EVERY != UNTIMED_EVERY // 2
        assert run.words.tolist() == [w for w, t in zip(truth.tokens, timed, strict=True) if t]
        # onset = the first event's onset (audio start) + the align.json start
        np.testing.assert_allclose(run.word_onsets, truth.onsets[timed], atol=1e-3)
    assert any("words have no time in align.json" in note for note in dataset.notes)


def test_untimed_words_can_be_placed_between_their_neighbours(synthetic):
    dataset = read_layout(synthetic["narratives"], "narratives", untimed_words="interpolate")
    brain = simulate("narratives", make_spec(**SMALL), 2, 0)
    run, truth = dataset.subjects["001"].runs[0], brain.runs[0]
    assert run.words.tolist() == truth.tokens
    missing = UNTIMED_EVERY // 2
    assert truth.onsets[missing - 1] < run.word_onsets[missing] <= truth.onsets[missing + 1]


def test_narratives_exclusions_in_the_published_form(synthetic, tmp_path, capsys):
    root = copy_of(synthetic, "narratives", tmp_path)
    excluded = {"story02": {"sub-002": ["sub-002_task-story02"]}, "story03": {}}
    (root / layouts.NARRATIVES_EXCLUDE).write_text(json.dumps(excluded))
    dataset = read_layout(root, "narratives")  # shared: story02 leaves every subject
    assert [run.name for run in dataset.subjects["001"].runs] == ["story01", "story03", "story04"]
    assert "subject 002: story story02 excluded by scan_exclude.json" in dataset.notes
    assert any("subject 001: 1 story(ies) not shared" in note for note in dataset.notes)
    each = read_layout(root, "narratives", story_set="each")
    assert len(each.subjects["001"].runs) == 4 and len(each.subjects["002"].runs) == 3
    kept = read_layout(root, "narratives", apply_exclusions=False)
    assert len(kept.subjects["002"].runs) == 4
    # a pattern that does not occur in the BOLD file name excludes nothing (as Narratives' code)
    other_run = {"story02": {"sub-002": ["sub-002_task-story02_run-2"]}}
    (root / layouts.NARRATIVES_EXCLUDE).write_text(json.dumps(other_run))
    assert len(read_layout(root, "narratives").subjects["002"].runs) == 4


def test_prepare_with_an_exclusion_list_and_stories(synthetic, tmp_path, capsys):
    root = synthetic["narratives"]
    exclusions = tmp_path / "exclude.json"
    exclusions.write_text(json.dumps({"story04": ["sub-001"]}))  # the list form
    out = tmp_path / "bundle"
    code = main(
        ["prepare", str(root), "--layout", "narratives", "--out", str(out),
         "--exclude-scans", str(exclusions)]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "note: subject 001: story story04 excluded by exclude.json" in printed
    assert "noise ceiling for 2 subject(s)" in printed  # one timeline: the predictive ceiling
    bundle = load_bundle(out)
    assert [run.name for run in bundle.subjects["002"].runs] == ["story01", "story02", "story03"]
    assert bundle.subjects["001"].noise_ceiling is not None
    subset = read_layout(root, "narratives", stories="story03, story01")
    assert [run.name for run in subset.subjects["001"].runs] == ["story01", "story03"]


def test_narratives_group_mask_from_the_manifest(synthetic, tmp_path):
    root = copy_of(synthetic, "narratives", tmp_path)
    atlas_path = layouts.narratives_roi(root, "001")
    mask = nib.load(atlas_path)
    group = root / "derivatives" / "group_language_mask.nii.gz"
    group.parent.mkdir(parents=True)
    binary = (np.asarray(mask.dataobj) == 1).astype(np.uint8)
    nib.save(nib.Nifti1Image(binary, mask.affine), group)
    for subject in ("001", "002"):
        layouts.narratives_roi(root, subject).unlink()
        layouts.narratives_roi_labels(root, subject).unlink()
    manifest = {
        "layout": "narratives",
        "options": {"roi_name": "language"},
        "files": {"roi": "derivatives/group_language_mask.nii.gz"},
    }
    (root / "source.yaml").write_text(yaml.safe_dump(manifest))
    dataset = read_source(root)
    for subject in dataset.subjects.values():
        assert list(subject.roi_masks) == ["language"]
        assert subject.roi_masks["language"].sum() == binary.sum()


def test_narratives_surface_derivatives(synthetic, tmp_path):
    """The fsaverage6 form: one GIfTI per hemisphere and story, one data array per TR."""
    root = copy_of(synthetic, "narratives", tmp_path)
    volumes = read_layout(root, "narratives")
    template = (
        "derivatives/afni-nosmooth/sub-{subject}/func/sub-{subject}_task-{story}"
        "_space-fsaverage6_hemi-{hemi}_desc-clean.func.gii"
    )
    for subject in ("001", "002"):
        for run in volumes.subjects[subject].runs:
            halves = {"L": run.responses[:, :25], "R": run.responses[:, 25:]}
            for hemi, data in halves.items():
                arrays = [nib.gifti.GiftiDataArray(row) for row in data]
                path = root / template.format(subject=subject, story=run.name, hemi=hemi)
                path.parent.mkdir(parents=True, exist_ok=True)
                nib.save(nib.gifti.GiftiImage(darrays=arrays), path)
            layouts.narratives_bold(root, subject, run.name).unlink()
    files = {"bold": template.replace("{hemi}", "L")}
    surface = read_layout(root, "narratives", files=files)
    assert surface.tr == 1.5
    for a, b in zip(surface.subjects["002"].runs, volumes.subjects["002"].runs, strict=True):
        np.testing.assert_array_equal(a.responses, b.responses)
        np.testing.assert_array_equal(a.word_onsets, b.word_onsets)
    assert surface.subjects["002"].voxel_coords is None
    right = root / template.format(subject="001", story="story02", hemi="R")
    right.unlink()
    with pytest.raises(BrainmisInputError, match="hemi-R_desc-clean.func.gii: missing file"):
        read_layout(root, "narratives", files=files)


# --- LeBel -----------------------------------------------------------------------------------
def test_lebel_reads_back_the_simulation(synthetic):
    brain = simulate("lebel", make_spec(**SMALL), 2, 0)
    dataset = read_layout(synthetic["lebel"], "lebel")
    assert dataset.tr == 2.0 and list(dataset.subjects) == ["UTS01", "UTS02"]
    for run, truth in zip(dataset.subjects["UTS01"].runs, brain.runs, strict=True):
        assert run.name == truth.name
        np.testing.assert_allclose(run.tr_times, truth.tr_times)
        assert run.tr_times[0] == -layouts.LEBEL_SOUND_START
        np.testing.assert_array_equal(run.kept_trs, truth.kept_trs)
        assert run.kept_trs[0] == layouts.LEBEL_TRIM_START
        np.testing.assert_allclose(run.responses, brain.subjects[0].responses[truth.name])
        assert run.words.tolist() == truth.tokens
        np.testing.assert_allclose(run.word_onsets, truth.onsets, atol=1e-5)
    respdict = json.loads((synthetic["lebel"] / layouts.LEBEL_RESPDICT).read_text())
    run = dataset.subjects["UTS02"].runs[0]
    assert respdict[run.name] - 20 == run.responses.shape[0]  # n - pad - trim_start - trim_end


def test_lebel_trigger_files_instead_of_respdict(synthetic, tmp_path):
    root = copy_of(synthetic, "lebel", tmp_path)
    respdict = json.loads((root / layouts.LEBEL_RESPDICT).read_text())
    (root / layouts.LEBEL_RESPDICT).unlink()
    for story, count in respdict.items():
        trfile = layouts.lebel_trfile(root, story)
        trfile.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{layouts.LEBEL_SOUND_START:.2f} sound-start"]
        lines += [f"{2.0 * i:.2f} trigger" for i in range(count - layouts.LEBEL_PAD)]
        trfile.write_text("\n".join(lines) + "\n")
    from_triggers = read_layout(root, "lebel")
    from_respdict = read_layout(synthetic["lebel"], "lebel")
    pairs = zip(
        from_triggers.subjects["UTS01"].runs, from_respdict.subjects["UTS01"].runs, strict=True
    )
    for a, b in pairs:
        np.testing.assert_allclose(a.tr_times, b.tr_times)


def test_lebel_subjects_with_different_stories(synthetic, tmp_path):
    root = copy_of(synthetic, "lebel", tmp_path)
    layouts.lebel_responses(root, "UTS02", "story03").unlink()
    shared = read_layout(root, "lebel")
    assert [run.name for run in shared.subjects["UTS01"].runs] == ["story01", "story02", "story04"]
    each = read_layout(root, "lebel", story_set="each")
    assert len(each.subjects["UTS01"].runs) == 4 and len(each.subjects["UTS02"].runs) == 3


# --- prepare, then fit a couple of steps -------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory) -> Path:
    from brainmis.models.tiny import make_tiny_model

    text = tmp_path_factory.mktemp("text") / "text.txt"
    text.write_text(" ".join(["the story began and the people walked home slowly"] * 30))
    out = tmp_path_factory.mktemp("gpt2") / "model"
    return make_tiny_model("gpt2", text, out, hidden=16, layers=1, heads=2, vocab=200)


@pytest.mark.parametrize("layout", ["narratives", "lebel"])
def test_prepare_then_fit_a_couple_of_steps(synthetic, tiny_gpt2, tmp_path, capsys, layout):
    bundle = tmp_path / "bundle"
    assert main(["prepare", str(synthetic[layout]), "--layout", layout, "--out", str(bundle)]) == 0
    assert "noise ceiling for 2 subject(s)" in capsys.readouterr().out
    runs = tmp_path / "runs"
    code = main(
        [
            "fit", "--config", str(DEMO), f"--model.pretrained_path={tiny_gpt2}",
            f"--data.bundle={bundle}", "--data.batch_size=4", "--trainer.max_steps=2",
            "--trainer.max_epochs=1", "--trainer.limit_val_batches=1",
            "--trainer.num_sanity_val_steps=0", "--trainer.callbacks=[]",
            f"--trainer.default_root_dir={runs}",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert list(runs.rglob("*.ckpt"))


# --- bad files: one line naming the file, nothing written --------------------------------------
def narratives_without_align(root: Path):
    layouts.narratives_align(root, "story02").unlink()
    return "story02/align.json", "missing file (Gentle forced alignment"


def narratives_bold_shorter_than_the_words(root: Path):
    path = layouts.narratives_bold(root, "001", "story03")
    image = nib.load(path)
    data = np.asarray(image.dataobj)[..., :30]
    nib.save(nib.Nifti1Image(data, image.affine, image.header), path)
    return "sub-001_task-story03_bold.nii.gz", "the scan does not cover the story"


def narratives_align_not_json(root: Path):
    layouts.narratives_align(root, "story01").write_text('{"words": [{"word": "so",')
    return "story01/align.json", "not valid JSON"


def narratives_align_success_without_times(root: Path):
    path = layouts.narratives_align(root, "story01")
    content = json.loads(path.read_text())
    del content["words"][3]["start"]
    path.write_text(json.dumps(content))
    return "story01/align.json", "word 4 ("


def narratives_align_without_words(root: Path):
    layouts.narratives_align(root, "story04").write_text(json.dumps({"transcript": "so I"}))
    return "story04/align.json", 'with a "words" list'


def narratives_exclusions_name_unknown_subjects(root: Path):
    exclusions = {"story01": {"sub-001": ["sub-001_task-story01"], "sub-999": ["x"]}}
    (root / layouts.NARRATIVES_EXCLUDE).write_text(json.dumps(exclusions))
    return "scan_exclude.json", "names subject(s) ['sub-999'] that this source does not hold"


def narratives_exclusions_not_json(root: Path):
    (root / layouts.NARRATIVES_EXCLUDE).write_text("story01: [sub-001]")
    return "scan_exclude.json", "not valid JSON"


def narratives_without_events(root: Path):
    layouts.narratives_events(root, "002", "story01").unlink()
    return "sub-002_task-story01_events.tsv", "missing file (events TSV"


def narratives_run_split_scan(root: Path):
    bold = layouts.narratives_bold(root, "002", "story02")
    bold.rename(bold.with_name("sub-002_task-story02_run-1_bold.nii.gz"))
    return "sub-002_task-story02_run-1_bold.nii.gz", "is followed by other BIDS entities"


def narratives_nothing_shared(root: Path):
    for story in ("story01", "story02", "story03"):
        layouts.narratives_bold(root, "002", story).unlink()
    layouts.narratives_bold(root, "001", "story04").unlink()
    return "narratives", "no story is shared by every chosen subject"


def lebel_hdf5_without_data(root: Path):
    path = layouts.lebel_responses(root, "UTS01", "story02")
    with h5py.File(path, "a") as handle:
        handle["resp"] = handle["data"][()]
        del handle["data"]
    return "UTS01/story02.hf5", "has no dataset 'data' (found: ['resp'])"


def lebel_textgrid_without_word_tier(root: Path):
    path = layouts.lebel_textgrid(root, "story03")
    path.write_text(story_textgrid(word_tier="transcript"))
    return "story03.TextGrid", "no word tier"


def lebel_rows_vs_respdict(root: Path):
    path = root / layouts.LEBEL_RESPDICT
    respdict = json.loads(path.read_text())
    respdict["story01"] += 3
    path.write_text(json.dumps(respdict))
    return "UTS01/story01.hf5", "respdict.json gives"


def lebel_respdict_without_the_story(root: Path):
    path = root / layouts.LEBEL_RESPDICT
    respdict = json.loads(path.read_text())
    del respdict["story04"]
    path.write_text(json.dumps(respdict))
    return "respdict.json", "has no entry for story 'story04'"


BAD_NARRATIVES = [
    narratives_run_split_scan,
    narratives_without_align,
    narratives_bold_shorter_than_the_words,
    narratives_align_not_json,
    narratives_align_success_without_times,
    narratives_align_without_words,
    narratives_exclusions_name_unknown_subjects,
    narratives_exclusions_not_json,
    narratives_without_events,
    narratives_nothing_shared,
]
BAD_LEBEL = [
    lebel_hdf5_without_data,
    lebel_textgrid_without_word_tier,
    lebel_rows_vs_respdict,
    lebel_respdict_without_the_story,
]
CASES = [("narratives", case) for case in BAD_NARRATIVES] + [("lebel", c) for c in BAD_LEBEL]


@pytest.mark.parametrize(("layout", "case"), CASES, ids=[case.__name__ for _, case in CASES])
def test_bad_files_stop_prepare_in_one_line(synthetic, tmp_path, capsys, layout, case):
    root = copy_of(synthetic, layout, tmp_path)
    file_name, problem = case(root)
    out = tmp_path / "out" / "bundle"
    code = main(["prepare", str(root), "--layout", layout, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    line = err.strip()
    assert line.startswith("brainmis prepare: error: "), line
    assert file_name in line and problem in line, line
    assert not (tmp_path / "out").exists()


def test_exclude_scans_is_for_narratives_only(synthetic, tmp_path, capsys):
    code = main(
        ["prepare", str(synthetic["lebel"]), "--layout", "lebel", "--out", str(tmp_path / "b"),
         "--exclude-scans", str(tmp_path / "x.json")]
    )  # fmt: skip
    assert code == 2 and "applies to the narratives layout only" in capsys.readouterr().err
    with pytest.raises(BrainmisInputError, match="missing file \\(scan exclusions"):
        read_layout(synthetic["narratives"], "narratives", exclude_scans="nowhere.json")
