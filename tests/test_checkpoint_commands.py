"""Every checkpoint of ours loads in `probe`, `evaluate-brain` and `export`; a checkpoint that
does not fit, or is not ours, is refused in one line before anything is written.

The checkpoints come from real `brainmis fit` runs of the demo config (tiny model of each
family, synthetic default), so the files are exactly what users get.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from brainmis.cli import main as brainmis_main
from brainmis.models.tiny import make_tiny_model

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "configs" / "demo" / "tuned.yaml"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("synthetic-cache")


def fit_checkpoint(model: Path, cache: Path, root: Path, *extra: str) -> Path:
    """One step of the demo config; returns the checkpoint Lightning's default callback wrote."""
    code = brainmis_main(
        [
            "fit", "--config", str(DEMO), f"--model.pretrained_path={model}",
            f"--data.cache_dir={cache}", "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=1", "--trainer.limit_val_batches=1",
            "--trainer.num_sanity_val_steps=0", "--trainer.callbacks=[]",
            f"--trainer.default_root_dir={root}", *extra,
        ]
    )  # fmt: skip
    assert code == 0
    (checkpoint,) = sorted(root.glob("lightning_logs/*/version_0/checkpoints/*.ckpt"))
    return checkpoint


def run_all_commands(checkpoint: Path, out: Path, suite: Path) -> dict:
    """probe, evaluate-brain and export on one checkpoint; returns what each reported."""
    probe = ["probe", "--ckpt", str(checkpoint), "--builtin", "--tasks", "negation",
             "--max-items", "30", "--seeds", "0", "--cache-dir", str(suite), "--out", str(out / "pr")]  # fmt: skip
    assert brainmis_main(probe) == 0
    assert (
        brainmis_main(["evaluate-brain", "--ckpt", str(checkpoint), "--out", str(out / "ba")]) == 0
    )
    assert brainmis_main(["export", str(checkpoint), "--out", str(out / "ex")]) == 0
    return {
        "probe": json.loads((out / "pr" / "probing_summary.json").read_text())["epoch"],
        "brain": json.loads((out / "ba" / "brain_alignment.json").read_text())["epoch"],
        "export": json.loads((out / "ex" / "brainmis_export.json").read_text()),
    }


def test_context_trs_2_checkpoint_loads_everywhere(tiny_models, cache, tmp_path):
    """The checkpoint's own settings rebuild the head: a run with data.context_trs 2 loads
    (its config.yaml's model section does not hold context_trs, it is linked from data)."""
    checkpoint = fit_checkpoint(
        tiny_models["gpt2"], cache, tmp_path / "root", "--data.context_trs=2"
    )
    reported = run_all_commands(checkpoint, tmp_path / "out", tmp_path / "suite")
    assert reported["probe"] == reported["brain"] == 1  # one loader, one epoch convention
    assert reported["export"]["context_trs"] == 2
    assert reported["export"]["head_in_features"] == 2 * 32


@pytest.mark.slow
@pytest.mark.parametrize(
    "family, extra",
    [("bert", ()), ("gpt2", ()), ("llama", ()), ("llama", ("--data.rois=[IFG]",))],
    ids=["bert", "gpt2", "llama", "llama-fewer-voxels"],
)
def test_every_family_and_voxel_count_loads_everywhere(family, extra, tiny_models, cache, tmp_path):
    checkpoint = fit_checkpoint(tiny_models[family], cache, tmp_path / "root", *extra)
    reported = run_all_commands(checkpoint, tmp_path / "out", tmp_path / "suite")
    assert reported["probe"] == reported["brain"] == 1
    assert reported["export"]["family"] == family
    voxels = torch.load(checkpoint, weights_only=True)["state_dict"]["head.linear.weight"].shape[0]
    assert reported["export"]["n_voxels"] == voxels


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(argv: list[str], capsys) -> str:
    """Run, assert exit 2 with exactly one error line and no traceback; return that line."""
    capsys.readouterr()
    assert brainmis_main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_checkpoints_that_do_not_fit_are_one_line_and_write_nothing(
    tiny_models, tiny_model_text, cache, tmp_path, capsys
):
    model = tiny_models["gpt2"]
    wider = make_tiny_model("gpt2", tiny_model_text, tmp_path / "gpt2-wide", hidden=48, vocab=300)
    checkpoint = fit_checkpoint(model, cache, tmp_path / "root")
    run_dir = checkpoint.parent.parent
    before = snapshot(run_dir)
    out, suite = tmp_path / "out", tmp_path / "suite"

    # export onto a base model of another size
    line = refused(
        ["export", str(checkpoint), "--out", str(out), "--pretrained-path", str(wider)], capsys
    )
    assert str(checkpoint) in line and "shape" in line and "another base model size" in line

    # a checkpoint with a pickled payload: never unpickled, in every command
    evil = tmp_path / "evil.ckpt"
    marker = tmp_path / "pwned"
    torch.save({"state_dict": {}, "payload": _Payload(str(marker))}, evil)
    for argv in (
        ["export", str(evil), "--out", str(out)],
        ["probe", "--ckpt", str(evil), "--builtin", "--cache-dir", str(suite), "--out", str(out)],
        ["evaluate-brain", "--ckpt", str(evil), "--out", str(out)],
        ["fit", "--config", str(DEMO), f"--model.pretrained_path={model}",
         f"--data.cache_dir={cache}", f"--trainer.default_root_dir={tmp_path / 'resume'}",
         f"--ckpt_path={evil}"],
    ):  # fmt: skip
        line = refused(argv, capsys)
        assert "evil.ckpt" in line and "other than tensors" in line
    assert not marker.exists()

    # not a checkpoint at all: refused before the built-in suite's cache is generated
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint\n")
    line = refused(["probe", "--ckpt", str(text), "--builtin", "--cache-dir", str(suite), "--out", str(out)], capsys)  # fmt: skip
    assert "notes.ckpt" in line and "not a readable checkpoint" in line

    # a checkpoint of another model: weights that do not belong
    foreign = tmp_path / "foreign.ckpt"
    state = torch.load(checkpoint, weights_only=True)
    state["state_dict"] = {"encoder.layer.0.weight": torch.zeros(2, 2)}
    torch.save(state, foreign)
    line = refused(["export", str(foreign), "--out", str(out)], capsys)
    assert "foreign.ckpt" in line and "trainable weights" in line

    # a run folder whose config.yaml is broken: one line, the config named
    broken = tmp_path / "broken-run"
    (broken / "checkpoints").mkdir(parents=True)
    (broken / "config.yaml").write_text("model: {pretrained_path: [unclosed\n")
    copied = broken / "checkpoints" / "last.ckpt"
    copied.write_bytes(checkpoint.read_bytes())
    line = refused(["probe", "--ckpt", str(copied), "--builtin", "--cache-dir", str(suite)], capsys)
    assert "config.yaml" in line and "not valid YAML" in line

    assert not out.exists() and not suite.exists()
    assert snapshot(run_dir) == before


class _Payload:
    """Pickles as a call that would create a file if it were ever unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.makedirs, (self.path,))
