"""``brainmis synth`` through the real command entry point."""

from __future__ import annotations

import numpy as np
import yaml

from brainmis.cli import main
from brainmis.data.readers import layouts


def test_synth_writes_a_dataset_and_says_what(tmp_path, capsys):
    out = tmp_path / "hp"
    assert (
        main(
            [
                "synth",
                "--layout",
                "hp",
                "--out",
                str(out),
                "--subjects",
                "3",
                "--seed",
                "5",
                "--voxels",
                "50",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert f"wrote synthetic hp dataset to {out}" in printed
    assert "subjects: F, H, I" in printed and "voxels: 50 per subject" in printed
    assert yaml.safe_load((out / "source.yaml").read_text())["subjects"] == ["F", "H", "I"]
    assert np.load(layouts.hp_data(out, "I")).shape[1] == 50
    assert layouts.synth_true_ceiling(out, "I").is_file()


def test_synth_moth_with_fewer_runs(tmp_path, capsys):
    out = tmp_path / "moth"
    assert (
        main(
            [
                "synth",
                "--layout",
                "moth",
                "--out",
                str(out),
                "--voxels",
                "30",
                "--runs",
                "2",
                "--subjects",
                "1",
            ]
        )
        == 0
    )
    assert "repeated: story_03" in capsys.readouterr().out
    assert (
        layouts.moth_val(out, "01").is_file() and layouts.moth_textgrid(out, "story_03").is_file()
    )


def test_synth_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "old.txt").write_text("keep")
    assert main(["synth", "--layout", "nifti", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "not empty" in error and str(tmp_path) in error
    assert [p.name for p in tmp_path.iterdir()] == ["old.txt"]


def test_synth_bad_value_is_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "x"
    assert main(["synth", "--layout", "hp", "--out", str(out), "--features", "9"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == "brainmis synth: error: synthetic spec: n_features must be 1..6"
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert main(["synth", "--layout", "hp", "--out", str(out), "--subjects", "0"]) == 2
    assert "--subjects must be at least 1" in capsys.readouterr().err


def test_synth_unknown_layout_is_a_one_line_usage_error(tmp_path, capsys):
    assert main(["synth", "--layout", "bids", "--out", str(tmp_path / "y")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("brainmis synth: error: argument --layout")
    assert "invalid choice: 'bids'" in error and "(see brainmis synth --help)" in error
    assert not (tmp_path / "y").exists()
