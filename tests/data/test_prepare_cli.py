"""``brainmis prepare`` through the real CLI entry point."""

from __future__ import annotations

import numpy as np
from tiny_sources import HP_TRIM, write_hp, write_manifest, write_moth

from brainmis.cli import main
from brainmis.data.bundle import bundle_checksum, load_bundle


def hp_source(tmp_path, subjects=("F", "H")):
    tiny = write_hp(tmp_path / "hp", subjects=subjects)
    options = {"trim_start": HP_TRIM[0], "trim_end": HP_TRIM[1]}
    write_manifest(
        tmp_path / "hp" / "source.yaml", {"name": "tiny-hp", "layout": "hp", "options": options}
    )
    return tiny


def test_prepare_from_a_source_folder(tmp_path, capsys):
    tiny = hp_source(tmp_path)
    assert main(["prepare", str(tmp_path / "hp"), "--out", str(tmp_path / "bundle")]) == 0
    out = capsys.readouterr().out
    assert "dataset tiny-hp: TR 2 s, 2 subject(s)" in out
    assert "subject F: 2 runs, 16 TRs (10 kept), 6 voxels, 5 words" in out
    assert bundle_checksum(tmp_path / "bundle") in out
    dataset = load_bundle(tmp_path / "bundle")
    np.testing.assert_array_equal(dataset.subjects["H"].runs[1].responses, tiny.data["H"][5:])


def test_prepare_from_a_manifest_file_with_subjects(tmp_path, capsys):
    hp_source(tmp_path, subjects=("F", "H", "I"))
    manifest = tmp_path / "hp" / "source.yaml"
    code = main(["prepare", str(manifest), "--out", str(tmp_path / "b"), "--subjects", "I", "F"])
    assert code == 0
    assert list(load_bundle(tmp_path / "b").subjects) == ["I", "F"]


def test_prepare_a_preset_layout_folder(tmp_path, capsys):
    write_moth(tmp_path / "moth")  # no source.yaml: the preset with its default options
    code = main(
        ["prepare", str(tmp_path / "moth"), "--layout", "moth", "--out", str(tmp_path / "b")]
    )
    # the tiny story has 8 TRs: the Moth default trimming (10/5) cannot fit, named clearly
    assert code == 2
    assert "trim" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
    write_manifest(
        tmp_path / "moth" / "source.yaml",
        {"layout": "moth", "options": {"trim_start": 2, "trim_end": 1, "tr": 1.5}},
    )
    assert main(["prepare", str(tmp_path / "moth"), "--out", str(tmp_path / "b")]) == 0
    dataset = load_bundle(tmp_path / "b")
    assert dataset.subjects["01"].runs[2].repeats.shape == (2, 5, 5)


def test_verify_an_existing_bundle(tmp_path, capsys):
    hp_source(tmp_path)
    main(["prepare", str(tmp_path / "hp"), "--out", str(tmp_path / "b")])
    capsys.readouterr()
    assert main(["prepare", "--verify", str(tmp_path / "b")]) == 0
    assert "verified" in capsys.readouterr().out


def test_help_and_usage_errors(tmp_path, capsys):
    hp_source(tmp_path)
    assert main(["prepare", str(tmp_path / "hp")]) == 2  # no --out
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err and "Traceback" not in err
    assert main(["prepare", str(tmp_path / "hp"), "--out", "x", "--layout", "csv"]) == 2
    assert "invalid choice" in capsys.readouterr().err
