"""Synthetic ground-truth datasets: narrative, layouts on disk, ground truth, determinism."""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest
import yaml

from brainmis.data.readers import layouts
from brainmis.data.synthetic import (
    generate_synthetic,
    make_spec,
    simulate,
    synthetic_cache_key,
)
from brainmis.data.synthetic.hrf import canonical_hrf, convolve_hrf, double_gamma, hrf_response
from brainmis.data.synthetic.stimulus import default_text_path, load_paragraphs, split_into_runs
from brainmis.data.synthetic.textgrid_writer import story_intervals, textgrid_text
from brainmis.data.synthetic.word_categories import (
    CATEGORY_LEXICONS,
    CATEGORY_NAMES,
    normalize_word,
)
from brainmis.errors import BrainmisInputError

SMALL = {"n_voxels": 60, "max_words": 900}


def zscore(a: np.ndarray) -> np.ndarray:
    std = a.std(axis=0)
    return (a - a.mean(axis=0)) / np.where(std > 0, std, 1.0)


def column_r(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (zscore(a) * zscore(b)).mean(axis=0)


@pytest.fixture(scope="module")
def hp_full(tmp_path_factory) -> Path:
    """The default HP dataset (whole narrative, 4 runs), 300 voxels, 2 subjects."""
    return generate_synthetic("hp", tmp_path_factory.mktemp("hp") / "data", n_voxels=300)


@pytest.fixture(scope="module")
def small_sets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("small")
    return {
        layout: generate_synthetic(layout, root / layout, **SMALL)
        for layout in ("hp", "moth", "nifti")
    }


def hp_runs(
    root: Path, subject: str
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Per run: responses, true features, true signal of one subject of an HP dataset."""
    truth = json.loads((root / "ground_truth" / "truth.json").read_text())
    names = [run["name"] for run in truth["runs"]]
    features = [np.load(layouts.synth_true_features(root, name)) for name in names]
    data = np.load(layouts.hp_data(root, subject))
    responses = np.split(data, np.cumsum([f.shape[0] for f in features])[:-1])
    signal = [
        np.load(root / "ground_truth" / f"signal_{name}_subject_{subject}.npy") for name in names
    ]
    return responses, features, signal


# --- narrative and word categories ---------------------------------------------------------


def test_narrative_is_long_original_prose_with_dialogue():
    text = default_text_path().read_text(encoding="utf-8")
    words = text.split()
    assert len(words) >= 2000
    assert text.count('"') >= 40  # dialogue
    paragraphs = load_paragraphs()
    assert len(paragraphs) >= 30
    vocabulary = {normalize_word(w) for w in words}
    assert len(vocabulary) >= 500
    counts = {
        word: sum(normalize_word(w) == word for w in words) for word in ("bell", "harbor", "clock")
    }
    assert all(count >= 3 for count in counts.values())  # vocabulary recurs


def test_every_category_occurs_often_in_the_narrative():
    words = [normalize_word(w) for w in default_text_path().read_text().split()]
    for name, lexicon in CATEGORY_LEXICONS.items():
        assert sum(w in lexicon for w in words) >= 50, name


def test_normalize_word_strips_markers_and_punctuation():
    assert normalize_word("@Dudley,") == "dudley"
    assert normalize_word('"Then') == "then"
    assert normalize_word("o'clock.") == "o'clock"
    assert normalize_word("ninety-two") == "ninety-two"


# --- HRF -------------------------------------------------------------------------------------


def test_hrf_peaks_near_five_seconds_and_undershoots():
    t = np.arange(0, 32, 0.1)
    h = double_gamma(t)
    assert 4.5 <= t[np.argmax(h)] <= 5.5
    assert h[(t > 12) & (t < 20)].min() < 0
    assert double_gamma(np.array([-1.0, 0.0]))[0] == 0
    kernel = canonical_hrf(2.0)
    assert kernel.shape == (16,) and np.isclose(kernel.sum(), 1.0)


def test_event_response_matches_grid_convolution():
    """Impulses on a 0.5 s grid: exact event evaluation == discrete convolution."""
    dt = 0.5
    onsets = np.array([1.0, 4.5, 9.0])
    values = np.array([[1.0, 0.0], [2.0, 1.0], [-1.0, 3.0]])
    times = np.arange(0, 40, dt)
    impulses = np.zeros((times.size, 2))
    impulses[np.round(onsets / dt).astype(int)] = values
    kernel = double_gamma(np.arange(0, 32, dt))
    expected = np.stack([np.convolve(impulses[:, j], kernel)[: times.size] for j in range(2)], 1)
    np.testing.assert_allclose(hrf_response(times, onsets, values), expected, atol=1e-12)
    smooth = convolve_hrf(impulses, dt)
    assert smooth.shape == impulses.shape and np.all(smooth[: int(1.0 / dt)] == 0)  # causal


# --- splitting text into runs ---------------------------------------------------------------


def test_split_into_runs_keeps_every_word_in_order_and_balances():
    paragraphs = load_paragraphs()
    runs = split_into_runs(paragraphs, 4)
    flat = [w for run in runs for p in run for w in p]
    assert flat == [w for p in paragraphs for w in p]
    sizes = [sum(len(p) for p in run) for run in runs]
    assert max(sizes) < 1.5 * min(sizes)


def test_split_into_runs_cuts_inside_a_single_long_paragraph():
    runs = split_into_runs([[f"w{i}" for i in range(40)]], 3)
    assert [sum(len(p) for p in r) for r in runs] == [13, 14, 13]


# --- the HP layout ---------------------------------------------------------------------------


def test_hp_layout_matches_the_real_distribution(hp_full):
    tr_times = np.load(hp_full / layouts.HP_TIME_FMRI)
    run_numbers = np.load(hp_full / layouts.HP_RUNS_FMRI)
    word_times = np.load(hp_full / layouts.HP_TIME_WORDS)
    words = np.load(hp_full / layouts.HP_WORDS)  # allow_pickle=False by default
    data = np.load(layouts.hp_data(hp_full, "F"))
    np.testing.assert_array_equal(tr_times, 2.0 * np.arange(tr_times.size))  # one clock
    assert set(np.unique(run_numbers)) == {1, 2, 3, 4}
    assert np.all(np.diff(run_numbers) >= 0)
    per_run = np.bincount(run_numbers)[1:]
    assert data.shape == (int((per_run - layouts.HP_TRIM_START - layouts.HP_TRIM_END).sum()), 300)
    assert data.dtype == np.float32
    assert words.dtype.kind == "U" and words.shape == word_times.shape
    assert (words == "+").sum() >= 30 and np.char.startswith(words, "@").sum() >= 10
    assert word_times[0] == 20.0
    steps = np.diff(word_times)
    assert np.isclose(np.median(steps), 0.5) and np.all(steps > 0)
    # every word lies inside its run's TR span (t_first - TR, t_last]
    for run in range(1, 5):
        span = tr_times[run_numbers == run]
        inside = (word_times > span[0] - 2.0) & (word_times <= span[-1])
        assert inside.sum() > 100
    rois = np.load(layouts.hp_rois(hp_full, "F"))
    assert set(rois.files) == {"PostTemp", "AntTemp", "IFG"}
    assert all(rois[name].dtype == bool and rois[name].shape == (300,) for name in rois.files)
    # like the real distribution, no ceiling file (prepare computes the inter-subject one)
    assert not layouts.hp_noise_ceiling(hp_full, "F").exists()
    source = yaml.safe_load((hp_full / "source.yaml").read_text())
    assert source == {
        "name": "synthetic-hp",
        "layout": "hp",
        "root": ".",
        "subjects": ["F", "H"],
        "options": {"trim_start": 20, "trim_end": 15, "tr": 2.0},
    }


def test_true_ceiling_is_the_correlation_of_signal_and_scan(hp_full):
    responses, _, signal = hp_runs(hp_full, "F")
    empirical = column_r(np.concatenate(signal), np.concatenate(responses))
    true = np.load(layouts.synth_true_ceiling(hp_full, "F"))
    assert np.median(np.abs(empirical - true)) < 0.02
    signal_voxels = np.load(hp_full / "ground_truth" / "signal_voxels.npy")
    assert np.all(true[~signal_voxels] == 0) and np.all(true[signal_voxels] > 0)


def test_true_features_explain_the_voxels_up_to_the_ceiling(hp_full):
    """A ridge on the true features, fitted on 3 runs, reaches the true ceiling on the 4th."""
    from sklearn.linear_model import Ridge

    responses, features, _ = hp_runs(hp_full, "F")
    true = np.load(layouts.synth_true_ceiling(hp_full, "F"))
    scores = []
    for test in range(4):
        train = [k for k in range(4) if k != test]
        model = Ridge(alpha=1.0).fit(
            np.concatenate([zscore(features[k]) for k in train]),
            np.concatenate([zscore(responses[k]) for k in train]),
        )
        scores.append(column_r(model.predict(zscore(features[test])), responses[test]))
    r = np.mean(scores, axis=0)
    assert np.median(np.abs(r - true)) < 0.05
    signal_voxels = np.load(hp_full / "ground_truth" / "signal_voxels.npy")
    assert r[signal_voxels].mean() > 0.3 and abs(r[~signal_voxels].mean()) < 0.05


def test_features_are_low_dimensional_semantic_axes(hp_full):
    truth = json.loads((hp_full / "ground_truth" / "truth.json").read_text())
    assert truth["categories"] == list(CATEGORY_NAMES[:5])
    features = np.load(layouts.synth_true_features(hp_full, "run1"))
    assert features.shape[1] == 5 and features.dtype == np.float32
    table = (hp_full / "ground_truth" / "word_features.tsv").read_text().splitlines()
    rows = {line.split("\t")[0]: np.array(line.split("\t")[1:], float) for line in table[1:]}
    assert rows["harbor"][3] > 0.5 and abs(rows["harbor"][0]) < 0.7  # place, not emotion
    assert rows["seven"][4] > 0.5  # number


def test_semantic_categories_dominate_the_brain_driving_features():
    """The per-word random part is small: a model can drop the signal but keep word identity."""
    spec = make_spec(n_voxels=20)
    with_jitter = simulate("hp", spec, n_subjects=1, seed=0).features
    without = simulate("hp", make_spec(n_voxels=20, word_jitter=0.0), n_subjects=1, seed=0).features
    x = np.concatenate(list(with_jitter.values()))
    x0 = np.concatenate(list(without.values()))
    explained = [np.corrcoef(x[:, k], x0[:, k])[0, 1] ** 2 for k in range(x.shape[1])]
    assert min(explained) > 0.85


def test_subjects_share_the_signal_with_independent_noise(hp_full):
    resp_f, _, signal_f = hp_runs(hp_full, "F")
    resp_h, _, signal_h = hp_runs(hp_full, "H")
    signal_voxels = np.load(hp_full / "ground_truth" / "signal_voxels.npy")
    shared = column_r(np.concatenate(signal_f), np.concatenate(signal_h))[signal_voxels]
    assert np.median(shared) > 0.9 and np.all(shared < 1.0 - 1e-6)  # shared, not identical
    data_r = column_r(np.concatenate(resp_f), np.concatenate(resp_h))
    true_f = np.load(layouts.synth_true_ceiling(hp_full, "F"))
    true_h = np.load(layouts.synth_true_ceiling(hp_full, "H"))
    assert (
        np.median(
            np.abs(
                data_r
                - true_f * true_h * column_r(np.concatenate(signal_f), np.concatenate(signal_h))
            )
        )
        < 0.05
    )
    noise_r = data_r[~signal_voxels]
    assert abs(noise_r.mean()) < 0.02  # independent noise


def test_rois_hold_most_of_the_signal(hp_full):
    rois = np.load(layouts.hp_rois(hp_full, "F"))
    in_roi = np.any([rois[name] for name in rois.files], axis=0)
    true = np.load(layouts.synth_true_ceiling(hp_full, "F"))
    assert np.mean(true[in_roi] > 0) > 0.7 and np.mean(true[~in_roi] > 0) < 0.2
    assert true[in_roi].mean() > 3 * true[~in_roi].mean()


# --- determinism ----------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["hp", "moth", "nifti"])
def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path, layout):
    a = generate_synthetic(layout, tmp_path / "a", seed=3, **SMALL)
    b = generate_synthetic(layout, tmp_path / "b", seed=3, **SMALL)
    c = generate_synthetic(layout, tmp_path / "c", seed=4, **SMALL)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name  # HDF5, NIfTI too
    signal = (
        Path("ground_truth")
        / f"signal_{'story_01' if layout == 'moth' else 'run1'}_subject_{'F' if layout == 'hp' else '01'}.npy"
    )
    assert not np.array_equal(np.load(a / signal), np.load(c / signal))


def test_a_subject_does_not_depend_on_the_number_of_subjects():
    spec = make_spec(**SMALL)
    one = simulate("moth", spec, n_subjects=1, seed=0)
    three = simulate("moth", spec, n_subjects=3, seed=0)
    for name, responses in one.subjects[0].responses.items():
        np.testing.assert_array_equal(responses, three.subjects[0].responses[name])
    assert [s.name for s in three.subjects] == ["01", "02", "03"]


# --- Moth and NIfTI layouts -----------------------------------------------------------------


def test_moth_layout(small_sets):
    root = small_sets["moth"]
    truth = json.loads((root / "ground_truth" / "truth.json").read_text())
    stories = [run["name"] for run in truth["runs"]]
    assert (
        stories == [f"story_{k:02d}" for k in range(1, 6)] and truth["repeated_run"] == "story_05"
    )
    with h5py.File(layouts.moth_train(root, "01"), "r") as train:
        assert sorted(train) == stories[:4]
        shapes = {name: train[name].shape for name in train}
    for run in truth["runs"][:4]:
        assert shapes[run["name"]] == (run["n_tr"] - 10 - 5, 60)
    with h5py.File(layouts.moth_val(root, "01"), "r") as val:
        repeats = val["story_05"][()]
    assert repeats.shape == (2, truth["runs"][4]["n_kept"], 60)
    signal = np.load(root / "ground_truth" / "signal_story_05_subject_01.npy")
    residual = repeats - repeats.mean(axis=(1,), keepdims=True)
    signal_voxels = np.load(root / "ground_truth" / "signal_voxels.npy")
    assert column_r(repeats[0], signal)[signal_voxels].mean() > 0.2  # same signal ...
    noise = [repeats[k][:, ~signal_voxels] for k in range(2)]
    assert abs(column_r(noise[0], noise[1]).mean()) < 0.05  # ... independent noise
    assert residual.shape == repeats.shape
    with h5py.File(layouts.moth_mappers(root, "01"), "r") as mappers:
        assert sorted(mappers["roi_masks"]) == ["AntTemp", "IFG", "PostTemp"]
        assert mappers["roi_masks/IFG"].dtype == bool
    lines = layouts.moth_trfile(root, "story_01").read_text().splitlines()
    assert len(lines) == truth["runs"][0]["n_tr"]
    times = [float(line.split()[0]) for line in lines]
    assert np.allclose(np.diff(times), layouts.MOTH_TR)
    grid = layouts.moth_textgrid(root, "story_01").read_text()
    assert grid.startswith('File type = "ooTextFile"') and 'name = "word"' in grid
    assert 'text = "sp"' in grid


def test_moth_word_durations_are_natural(small_sets):
    brain = simulate("moth", make_spec(**SMALL), n_subjects=1, seed=0)
    durations = np.concatenate([run.durations for run in brain.runs])
    assert durations.min() >= 0.2 and durations.max() <= 0.6 and 0.25 < np.median(durations) < 0.45
    intervals = story_intervals(brain.runs[0])
    assert all(a[1] <= b[0] + 1e-9 for a, b in zip(intervals[:-1], intervals[1:], strict=True))
    labels = {text for _, _, text in intervals}
    assert {"sp", ""} <= labels


def test_nifti_layout(small_sets):
    root = small_sets["nifti"]
    image = nib.load(layouts.nifti_bold(root, "01", 1))
    assert image.ndim == 4 and np.isclose(image.header.get_zooms()[3], 2.0)
    data = np.asarray(image.dataobj)
    coords = np.load(root / "ground_truth" / "voxel_coords.npy")
    in_brain = np.any(data != 0, axis=3)
    assert in_brain.sum() == 60
    np.testing.assert_array_equal(np.argwhere(in_brain), coords)  # C order
    atlas = np.asarray(nib.load(layouts.nifti_roi(root, "01")).dataobj)
    labels = layouts.nifti_roi_labels(root, "01").read_text().splitlines()
    assert labels[0] == "index\tname" and len(labels) == 4
    assert set(np.unique(atlas)) == {0, 1, 2, 3} and np.all(in_brain[atlas > 0])
    events = layouts.nifti_events(root, "01", 1).read_text().splitlines()
    assert events[0].split("\t") == ["onset", "duration", "word"]
    assert '"' not in "".join(events)


def test_dead_voxels_and_autocorrelated_noise(tmp_path):
    root = generate_synthetic(
        "hp", tmp_path / "d", n_subjects=1, n_dead_voxels=3, noise_autocorr=0.6, **SMALL
    )
    data = np.load(layouts.hp_data(root, "F"))
    dead = np.load(root / "ground_truth" / "dead_voxels.npy")
    assert dead.sum() == 3 and np.all(np.ptp(data[:, dead], axis=0) == 0)
    noise = data[:, ~np.load(root / "ground_truth" / "signal_voxels.npy") & ~dead]
    noise = zscore(noise)
    lag1 = (noise[1:] * noise[:-1]).mean()
    assert 0.45 < lag1 < 0.75


# --- reading back through the readers -------------------------------------------------------


@pytest.mark.parametrize("layout", ["hp", "moth", "nifti"])
def test_readers_load_what_the_generator_wrote(small_sets, layout):
    readers = pytest.importorskip("brainmis.data.readers")
    root = small_sets[layout]
    dataset = readers.read_source(root)
    truth = json.loads((root / "ground_truth" / "truth.json").read_text())
    assert dataset.name == f"synthetic-{layout}" and list(dataset.subjects) == truth["subjects"]
    subject = dataset.subjects[truth["subjects"][1]]
    assert [run.name for run in subject.runs] == [run["name"] for run in truth["runs"]]
    assert set(subject.roi_masks) == set(truth["rois"])
    responses, signal = [], []
    for run, described in zip(subject.runs, truth["runs"], strict=True):
        assert run.responses.shape == (described["n_kept"], 60)
        assert len(run.words) == described["n_words"]
        features = np.load(layouts.synth_true_features(root, run.name))
        assert features.shape[0] == run.kept_trs.size
        responses.append(run.responses)
        signal.append(
            np.load(root / "ground_truth" / f"signal_{run.name}_subject_{subject.name}.npy")
        )
    # rows, voxels and runs line up with the ground truth: r(signal, data) ~ true ceiling
    r = column_r(np.concatenate(signal), np.concatenate(responses))
    true = np.load(layouts.synth_true_ceiling(root, subject.name))
    assert np.median(np.abs(r - true)) < 0.08
    if layout == "moth":
        assert subject.runs[-1].repeats is not None and subject.runs[-1].repeats.shape[0] == 2


@pytest.mark.parametrize("short_format", [False, True])
def test_textgrids_parse_with_the_reader_in_both_formats(tmp_path, short_format):
    textgrid = pytest.importorskip("brainmis.data.readers.textgrid")
    root = generate_synthetic(
        "moth", tmp_path / "m", n_subjects=1, textgrid_short_format=short_format, **SMALL
    )
    text = layouts.moth_textgrid(root, "story_02").read_text()
    assert ("item [1]:" in text) != short_format
    words, onsets = textgrid.read_textgrid_words(layouts.moth_textgrid(root, "story_02"))
    brain = simulate("moth", make_spec(**SMALL), n_subjects=1, seed=0)
    run = brain.runs[1]
    assert list(words) == run.words
    np.testing.assert_allclose(onsets, run.onsets, atol=1e-6)


def test_hp_inter_subject_ceiling_file(tmp_path):
    root = generate_synthetic("hp", tmp_path / "i", hp_noise_ceiling="inter_subject", **SMALL)
    estimate = np.load(layouts.hp_noise_ceiling(root, "F"))
    true = np.load(layouts.synth_true_ceiling(root, "F"))
    assert estimate.shape == (60,) and not np.array_equal(estimate, true)
    assert np.corrcoef(estimate, true)[0, 1] > 0.7
    none = generate_synthetic("hp", tmp_path / "n", hp_noise_ceiling="none", **SMALL)
    assert not layouts.hp_noise_ceiling(none, "F").exists()
    given = generate_synthetic("hp", tmp_path / "t", hp_noise_ceiling="true", **SMALL)
    np.testing.assert_array_equal(
        np.load(layouts.hp_noise_ceiling(given, "F")),
        np.load(layouts.synth_true_ceiling(given, "F")),
    )


def test_synthetic_bundle_is_built_once_and_reused(tmp_path):
    pytest.importorskip("brainmis.data.bundle")
    from brainmis.data.bundle import load_bundle
    from brainmis.data.synthetic import synthetic_bundle

    bundle = synthetic_bundle(tmp_path, layout="hp", n_subjects=1, seed=1, **SMALL)
    assert bundle.parent.name == synthetic_cache_key("hp", 1, 1, **SMALL)
    assert (bundle.parent / "source" / "source.yaml").is_file()
    stamp = (bundle / "manifest.json").stat().st_mtime_ns
    again = synthetic_bundle(tmp_path, layout="hp", n_subjects=1, seed=1, **SMALL)
    assert again == bundle and (bundle / "manifest.json").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == [bundle.parent.name]  # no temp left
    dataset = load_bundle(bundle)
    assert list(dataset.subjects) == ["F"] and dataset.subjects["F"].n_voxels == 60
    assert synthetic_cache_key("hp", 1, 2, **SMALL) != synthetic_cache_key("hp", 1, 1, **SMALL)


def test_incomplete_cache_folder_is_reported(tmp_path):
    from brainmis.data.synthetic import synthetic_bundle

    (tmp_path / synthetic_cache_key("hp", 1, 0, **SMALL)).mkdir()
    with pytest.raises(BrainmisInputError, match="incomplete"):
        synthetic_bundle(tmp_path, layout="hp", n_subjects=1, seed=0, **SMALL)


# --- bad input ------------------------------------------------------------------------------


def test_refuses_a_non_empty_output_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(BrainmisInputError, match="not empty"):
        generate_synthetic("hp", tmp_path, **SMALL)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_too_short_text_fails_before_writing(tmp_path):
    text = tmp_path / "short.txt"
    text.write_text("One two three four five six seven eight nine ten eleven twelve.\n")
    with pytest.raises(BrainmisInputError, match=r"short.txt: 12 words are too few for 4 runs"):
        generate_synthetic("hp", tmp_path / "out", text_path=str(text))
    text.write_text(" ".join(["word"] * 100) + "\n")
    with pytest.raises(BrainmisInputError, match="too few for trimming"):
        generate_synthetic("hp", tmp_path / "out", text_path=str(text))
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["short.txt"]


def test_bad_parameters_are_named(tmp_path):
    with pytest.raises(ValueError, match="unknown synthetic parameter"):
        generate_synthetic("hp", tmp_path / "x", n_voxel=10)
    with pytest.raises(ValueError, match="n_features"):
        generate_synthetic("hp", tmp_path / "x", n_features=7)
    with pytest.raises(ValueError, match="unknown synthetic layout"):
        generate_synthetic("bids", tmp_path / "x")
    assert not (tmp_path / "x").exists()


# --- TextGrid writer ------------------------------------------------------------------------


def test_textgrid_short_and_long_formats():
    tiers = {"word": [(0.5, 1.0, 'say "hi"'), (1.0, 1.4, "sp")]}
    long = textgrid_text(tiers, xmax=2.0)
    assert "intervals: size = 4" in long and 'text = "say ""hi"""' in long
    short = textgrid_text(tiers, xmax=2.0, short_format=True).splitlines()
    assert short[3:7] == ["0.0", "2.0", "<exists>", "1"]
    assert short[7:12] == ['"IntervalTier"', '"word"', "0.0", "2.0", "4"]
    assert short[12:15] == ["0.0", "0.5", '""']
    assert re.search(r'"say ""hi"""', "\n".join(short))
    with pytest.raises(ValueError, match="overlaps"):
        textgrid_text({"word": [(0.0, 1.0, "a"), (0.5, 1.5, "b")]}, xmax=2.0)
