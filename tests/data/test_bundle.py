"""The canonical bundle: round trip, memory mapping, atomic writing, checksums, verification."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from brainmis.data import bundle as bundle_module
from brainmis.data.bundle import bundle_checksum, load_bundle, write_bundle
from brainmis.data.records import BrainDataset, Run, Subject
from brainmis.errors import BrainmisInputError


def make_dataset(seed: int = 0) -> BrainDataset:
    """Two subjects exercising every optional field (repeats, ceiling, coordinates, affine)."""
    rng = np.random.default_rng(seed)
    odd_words = np.array(["tab\there", 'quote"d', "naïve", "new\nline", "plain"])

    def run(name: str, n_trs: int, kept: np.ndarray, words: np.ndarray, repeats: bool) -> Run:
        rep = rng.standard_normal((2, len(kept), 4)).astype(np.float32) if repeats else None
        return Run(
            name=name,
            tr_times=1.5 * np.arange(n_trs) + 0.1,
            responses=rep.mean(axis=0)
            if repeats
            else rng.standard_normal((len(kept), 4)).astype(np.float32),
            kept_trs=kept,
            words=words,
            word_onsets=np.sort(rng.uniform(0, 1.5 * n_trs - 1, len(words))),
            repeats=rep,
        )

    first = Subject(
        name="01",
        runs=[
            run("story/a", 6, np.arange(1, 5), odd_words, False),
            run("story b", 5, np.arange(0, 5), np.array([], dtype=str), True),
        ],
        roi_masks={"IFG": np.array([1, 0, 1, 0], bool), "Post Temp": np.array([0, 1, 1, 0], bool)},
        noise_ceiling=np.array([0.1, 0.2, 0.3, 0.4], np.float32),
        voxel_coords=np.array([[0, 0, 0], [1, 2, 3], [2, 2, 2], [0, 1, 0]]),
        volume_shape=(3, 4, 5),
        affine=np.diag([2.0, 2.0, 2.0, 1.0]),
    )
    second = Subject(name="02", runs=[run("story/a", 6, np.arange(1, 5), odd_words[:2], False)])
    return BrainDataset(name="tiny", tr=1.5, subjects={"01": first, "02": second})


def assert_same(loaded: BrainDataset, original: BrainDataset) -> None:
    assert (loaded.name, loaded.tr, list(loaded.subjects)) == (
        original.name,
        original.tr,
        list(original.subjects),
    )
    for name, subject in original.subjects.items():
        other = loaded.subjects[name]
        assert [r.name for r in other.runs] == [r.name for r in subject.runs]
        assert list(other.roi_masks) == list(subject.roi_masks)
        for roi, mask in subject.roi_masks.items():
            np.testing.assert_array_equal(other.roi_masks[roi], mask)
        for field in ("noise_ceiling", "voxel_coords", "affine"):
            expected, found = getattr(subject, field), getattr(other, field)
            assert (expected is None) == (found is None)
            if expected is not None:
                np.testing.assert_array_equal(found, expected)
        assert other.volume_shape == subject.volume_shape
        for run, other_run in zip(subject.runs, other.runs, strict=True):
            for field in ("tr_times", "responses", "kept_trs", "words", "word_onsets"):
                np.testing.assert_array_equal(getattr(other_run, field), getattr(run, field))
            assert other_run.responses.dtype == np.float32
            assert other_run.words.dtype.kind == "U"
            assert (run.repeats is None) == (other_run.repeats is None)
            if run.repeats is not None:
                np.testing.assert_array_equal(other_run.repeats, run.repeats)


def test_round_trip_every_field(tmp_path):
    dataset = make_dataset()
    path = write_bundle(dataset, tmp_path / "bundle")
    assert path == (tmp_path / "bundle").absolute()
    loaded = load_bundle(path)
    assert_same(loaded, dataset)
    assert isinstance(loaded.subjects["01"].runs[0].responses, np.memmap)
    assert isinstance(loaded.subjects["01"].runs[1].repeats, np.memmap)
    in_memory = load_bundle(path, mmap=False)
    assert not isinstance(in_memory.subjects["01"].runs[0].responses, np.memmap)
    assert_same(in_memory, dataset)


def test_writes_into_an_existing_empty_folder_but_refuses_a_non_empty_one(tmp_path):
    (tmp_path / "empty").mkdir()
    write_bundle(make_dataset(), tmp_path / "empty")
    assert (tmp_path / "empty" / "manifest.json").is_file()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(BrainmisInputError, match="not empty"):
        write_bundle(make_dataset(), tmp_path / "full")
    assert os.listdir(tmp_path / "full") == ["keep.txt"]


def test_a_failure_while_writing_leaves_nothing(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(bundle_module.BundleWriter, "words", fail)
    with pytest.raises(OSError, match="disk full"):
        write_bundle(make_dataset(), tmp_path / "bundle")
    assert os.listdir(tmp_path) == []


def test_inconsistent_dataset_is_refused_before_writing(tmp_path):
    dataset = make_dataset()
    dataset.subjects["01"].runs[0].kept_trs = np.arange(3)  # 4 response rows
    with pytest.raises(BrainmisInputError, match="different lengths"):
        write_bundle(dataset, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()


def test_checksum_is_the_manifest_sha256_and_tracks_content(tmp_path):
    first = write_bundle(make_dataset(seed=0), tmp_path / "a")
    same = write_bundle(make_dataset(seed=0), tmp_path / "b")
    other = write_bundle(make_dataset(seed=1), tmp_path / "c")
    expected = hashlib.sha256((first / "manifest.json").read_bytes()).hexdigest()
    assert bundle_checksum(first) == expected == bundle_checksum(first / "manifest.json")
    assert bundle_checksum(same) == expected  # same content, same identity
    assert bundle_checksum(other) != expected


def responses_file(path):
    return path / "subjects" / "00-01" / "runs" / "00-story_a" / "responses.npy"


def flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_modified_file_is_caught_and_named(tmp_path):
    path = write_bundle(make_dataset(), tmp_path / "bundle")
    target = responses_file(path)
    assert target.is_file()
    flip_last_byte(target)
    for verify in (True, "full"):
        with pytest.raises(BrainmisInputError, match=r"responses\.npy: checksum mismatch"):
            load_bundle(path, verify=verify)
    load_bundle(path, verify=False)  # structure only: still loads


def test_large_file_modified_in_place_is_caught_by_its_stamp(tmp_path, monkeypatch):
    """Large files are re-hashed when their size/mtime stamp changed; ``full`` always."""
    monkeypatch.setattr(bundle_module, "ALWAYS_HASH_BELOW_BYTES", 0)
    path = write_bundle(make_dataset(), tmp_path / "bundle")
    target = responses_file(path)
    before = target.stat()
    load_bundle(path)  # untouched: stamps match, nothing hashed, loads
    flip_last_byte(target)
    # a later edit: a new mtime (set explicitly, the clock may not tick within this test)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
    with pytest.raises(BrainmisInputError, match="checksum mismatch"):
        load_bundle(path)
    # a change that keeps size and mtime is only seen by the full check (documented limit)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    load_bundle(path)
    with pytest.raises(BrainmisInputError, match=r"responses\.npy: checksum mismatch"):
        load_bundle(path, verify="full")


def test_truncated_and_missing_files(tmp_path):
    path = write_bundle(make_dataset(), tmp_path / "bundle")
    target = responses_file(path)
    target.write_bytes(target.read_bytes()[:-8])
    with pytest.raises(BrainmisInputError, match=r"responses\.npy: size .* differs"):
        load_bundle(path)
    target.unlink()
    with pytest.raises(BrainmisInputError, match=r"responses\.npy: missing file"):
        load_bundle(path)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BrainmisInputError, match="not a brainmis bundle"):
        load_bundle(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "other"}')
    with pytest.raises(BrainmisInputError, match="manifest.json: not a brainmis-bundle"):
        load_bundle(tmp_path)


def test_synthetic_bundle_round_trip(tmp_path):
    synthetic = pytest.importorskip("brainmis.data.synthetic")
    from brainmis.data.readers import read_source

    source = synthetic.generate_synthetic("moth", tmp_path / "src", n_subjects=1, n_voxels=20)
    dataset = read_source(source)
    loaded = load_bundle(write_bundle(dataset, tmp_path / "bundle"), verify="full")
    assert_same(loaded, dataset)
