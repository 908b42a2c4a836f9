"""``brainmis evaluate-brain``: same numbers as the callback, refusals before writing."""

from __future__ import annotations

import json

import numpy as np

from brainmis.cli import main as brainmis_main


def checkpoint_of(log_dir):
    checkpoints = sorted((log_dir / "checkpoints").glob("*.ckpt"))
    assert checkpoints, "the fit saved no checkpoint"
    return checkpoints[-1]


def write_run_config(log_dir, tiny_gpt2_path, datamodule):
    """The run's config.yaml as LightningCLI would write it (model and data sections) for the
    ``preserving`` fit of ``fitted_run``."""
    import yaml

    config = {
        "model": {"pretrained_path": str(tiny_gpt2_path), "condition": "preserving", "lr": 1e-2},
        "data": {
            "bundle": str(datamodule.bundle_path),
            "fold": int(datamodule.test_run),
            "context_trs": int(datamodule.context_trs),
            "batch_size": 16,
            "shuffle_targets": True,
        },
    }
    (log_dir / "config.yaml").write_text(yaml.safe_dump(config))


def test_checkpoint_gives_the_callbacks_numbers(fitted_run, tiny_gpt2_path, tmp_path):
    log_dir, _, datamodule = fitted_run
    write_run_config(log_dir, tiny_gpt2_path, datamodule)
    out = tmp_path / "ckpt_eval"
    code = brainmis_main(
        [
            "evaluate-brain",
            "--ckpt",
            str(checkpoint_of(log_dir)),
            "--alphas",
            "1",
            "100",
            "10000",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    np.testing.assert_allclose(
        np.load(out / "brain_r_epoch1.npy"),
        np.load(log_dir / "evaluation" / "brain_r_epoch1.npy"),
        atol=1e-5,
    )
    record = json.loads((out / "brain_alignment.json").read_text())
    callback_record = json.loads((log_dir / "evaluation" / "brain_alignment.json").read_text())
    assert abs(record["mean"] - callback_record["mean"]) < 1e-5
    inputs = json.loads((out / "inputs.json").read_text())
    assert inputs["fold"] == datamodule.test_run and inputs["subject"] == datamodule.subject.name


def test_pretrained_model_gives_the_callbacks_baseline(fitted_run, tiny_gpt2_path, tmp_path):
    log_dir, _, datamodule = fitted_run
    out = tmp_path / "pretrained_eval"
    code = brainmis_main(
        [
            "evaluate-brain",
            "--model",
            str(tiny_gpt2_path),
            "--data-bundle",
            str(datamodule.bundle_path),
            "--fold",
            str(datamodule.test_run),
            "--context-trs",
            str(datamodule.context_trs),
            "--alphas",
            "1",
            "100",
            "10000",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    from brainmis.analysis.results import read_brain_alignment  # the comparison's reader

    summary = read_brain_alignment(out / "brain_alignment.json")
    assert summary.epoch == 0 and summary.per_voxel_file == out / "brain_r_epoch0.npy"
    np.testing.assert_allclose(
        np.load(out / "brain_r_epoch0.npy"),
        np.load(log_dir / "evaluation" / "brain_r_epoch0.npy"),
        atol=1e-5,
    )


def test_refusals_write_nothing(fitted_run, tiny_gpt2_path, tmp_path, capsys):
    log_dir, _, datamodule = fitted_run
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("user data")
    code = brainmis_main(
        [
            "evaluate-brain",
            "--model",
            str(tiny_gpt2_path),
            "--data-bundle",
            str(datamodule.bundle_path),
            "--out",
            str(taken),
        ]
    )
    assert code == 2 and sorted(p.name for p in taken.iterdir()) == ["keep.txt"]
    assert "not empty" in capsys.readouterr().err

    out = tmp_path / "new"
    code = brainmis_main(["evaluate-brain", "--ckpt", str(tmp_path / "no.ckpt"), "--out", str(out)])
    error = capsys.readouterr().err.strip()
    assert code == 2 and "no.ckpt: checkpoint file not found" in error
    assert len(error.splitlines()) == 1 and not out.exists()

    code = brainmis_main(["evaluate-brain", "--model", str(tiny_gpt2_path), "--out", str(out)])
    assert code == 2 and "--data-bundle" in capsys.readouterr().err and not out.exists()
