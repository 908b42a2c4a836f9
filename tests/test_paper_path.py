"""The paper's own path, as a user runs it: `brainmis fit --config configs/<paper config>`,
then `evaluate-brain`, `probe`, `export` on its checkpoints and `compare` on the run folders.

Every check reads what the real callbacks and commands wrote. A tiny model of the config's
family and a synthetic bundle of its dataset's layout are substituted on the command line;
everything else is the shipped config (callbacks, checkpointing, epochs).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from brainmis.cli import main as brainmis_main
from brainmis.evaluation.probing.results_file import read_probing_csv

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"
PAPER_CONFIGS = sorted(
    f"{model}_{dataset}_{condition}"
    for model in ("bert", "gpt2", "llama")
    for dataset in ("hp", "moth")
    for condition in ("misaligned", "preserving", "tuned")
)
PROBE_TASK = "negation"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("synthetic-cache")


def fit_paper_config(
    name: str, model: Path, cache: Path, root: Path, *extra: str, callbacks: bool = True
) -> Path:
    """One short epoch of a shipped paper config on CPU; returns the run folder. Without
    ``callbacks`` the config's callbacks (checkpoints, brain alignment, probing) are dropped:
    Lightning's default checkpoint remains."""
    dataset = name.split("_")[1]
    narrow = [f"--probing.tasks=[{PROBE_TASK}]", "--probing.max_items=30"]
    code = brainmis_main(
        [
            "fit",
            "--config",
            str(CONFIGS / f"{name}.yaml"),
            f"--model.pretrained_path={model}",
            "--data.bundle=null",
            f"--data.synthetic_layout={dataset}",
            f"--data.cache_dir={cache}",
            "--data.num_workers=0",
            "--trainer.accelerator=cpu",
            "--trainer.devices=1",
            "--trainer.precision=32-true",
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=2",
            "--trainer.limit_val_batches=1",
            "--trainer.num_sanity_val_steps=0",
            "--trainer.enable_progress_bar=false",
            *(narrow if callbacks else ["--trainer.callbacks=[]"]),
            f"--trainer.default_root_dir={root}",
            *extra,
        ]
    )
    assert code == 0
    runs = sorted((root / "lightning_logs" / name).glob("version_*"))
    assert runs, f"no run folder for {name}"
    return runs[-1]


def scalar_steps(run: Path, tag: str) -> list[int]:
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    return [event.step for event in events.Scalars(tag)]


def test_one_epoch_convention_across_callbacks_and_commands(tiny_models, cache, tmp_path, capsys):
    """Brain, probing and LM results of the same weights carry the same epoch, whether the
    callbacks or the commands wrote them; the pretrained model is epoch 0 everywhere."""
    run = fit_paper_config("gpt2_hp_tuned", tiny_models["gpt2"], cache, tmp_path / "root")
    evaluation = run / "evaluation"
    brain = json.loads((evaluation / "brain_alignment.json").read_text())
    assert brain["epoch"] == 1
    assert [entry["epoch"] for entry in brain["history"]] == [0, 1]
    assert (evaluation / "brain_r_epoch0.npy").is_file()
    assert (evaluation / "brain_r_epoch1.npy").is_file()
    assert {row["epoch"] for row in read_probing_csv(evaluation / "probing.csv")} == {"0", "1"}
    assert json.loads((evaluation / "lm.json").read_text())["epoch"] == 1
    selection = brain["voxel_selection"]
    assert selection["threshold"] == 0.05 and selection["counts"]["selected"] == brain["n_voxels"]
    # TensorBoard: both evaluations of the same weights at the same global steps
    assert scalar_steps(run, "brain_alignment/mean") == scalar_steps(run, "probing/mean")

    last = run / "checkpoints" / "last.ckpt"
    assert (run / "checkpoints" / "best.ckpt").is_file()
    out = tmp_path / "commands"
    assert brainmis_main(["evaluate-brain", "--ckpt", str(last), "--out", str(out / "ba")]) == 0
    assert json.loads((out / "ba" / "brain_alignment.json").read_text())["epoch"] == 1
    probe = ["--builtin", "--tasks", PROBE_TASK, "--max-items", "30", "--seeds", "0",
             "--cache-dir", str(tmp_path / "suite")]  # fmt: skip
    assert brainmis_main(["probe", "--ckpt", str(last), *probe, "--out", str(out / "pr")]) == 0
    assert {row["epoch"] for row in read_probing_csv(out / "pr" / "probing.csv")} == {"1"}
    capsys.readouterr()

    # the pretrained model: epoch 0 in both commands
    bundle = sorted(cache.glob("hp-*/bundle"))[0]
    model = str(tiny_models["gpt2"])
    assert brainmis_main(["evaluate-brain", "--model", model, "--data-bundle", str(bundle),
                          "--out", str(out / "ba0")]) == 0  # fmt: skip
    assert json.loads((out / "ba0" / "brain_alignment.json").read_text())["epoch"] == 0
    assert brainmis_main(["probe", "--model", model, *probe, "--out", str(out / "pr0")]) == 0
    assert {row["epoch"] for row in read_probing_csv(out / "pr0" / "probing.csv")} == {"0"}

    # into the run folder: the epoch is there already, so it is refused without a change
    before = {path: path.read_bytes() for path in evaluation.iterdir()}
    assert brainmis_main(["evaluate-brain", "--ckpt", str(last)]) == 2
    assert brainmis_main(["probe", "--ckpt", str(last), *probe]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 2 and all("epoch 1" in line for line in errors)
    assert errors[0].startswith("brainmis evaluate-brain: error:")
    assert {path: path.read_bytes() for path in evaluation.iterdir()} == before


def test_commands_evaluate_a_run_without_callbacks_into_its_folder(
    tiny_models, cache, tmp_path, capsys
):
    """A run trained without the evaluation callbacks: `evaluate-brain` and `probe` on its
    checkpoint write into its evaluation/ and `compare` reads them there."""
    run = fit_paper_config(
        "gpt2_hp_misaligned", tiny_models["gpt2"], cache, tmp_path / "root", callbacks=False
    )
    evaluation = run / "evaluation"
    assert not (evaluation / "brain_alignment.json").exists()
    checkpoint = sorted((run / "checkpoints").glob("*.ckpt"))[-1]
    assert brainmis_main(["evaluate-brain", "--ckpt", str(checkpoint)]) == 0
    probe = ["--builtin", "--tasks", PROBE_TASK, "--max-items", "30", "--seeds", "0", "1",
             "--cache-dir", str(tmp_path / "suite")]  # fmt: skip
    assert brainmis_main(["probe", "--ckpt", str(checkpoint), *probe]) == 0
    assert json.loads((evaluation / "brain_alignment.json").read_text())["epoch"] == 1
    assert {row["epoch"] for row in read_probing_csv(evaluation / "probing.csv")} == {"1"}
    assert (evaluation / "probing_summary_epoch1.json").is_file()
    # a data override is not the run's own evaluation: it needs --out
    assert brainmis_main(["evaluate-brain", "--ckpt", str(checkpoint), "--layer", "1"]) == 2
    assert "--out" in capsys.readouterr().err
    assert brainmis_main(["compare", str(tmp_path / "root"), "--out", str(tmp_path / "cmp")]) == 0
    with (tmp_path / "cmp" / "runs.csv").open(newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert math.isfinite(float(row["brain_alignment"]))
    assert math.isfinite(float(row["probing_score"]))


def test_evaluate_brain_refuses_a_training_fold(tiny_models, cache, tmp_path, capsys):
    run = fit_paper_config(
        "gpt2_hp_preserving", tiny_models["gpt2"], cache, tmp_path / "root", callbacks=False
    )
    checkpoint = sorted((run / "checkpoints").glob("*.ckpt"))[-1]
    out = tmp_path / "out"
    capsys.readouterr()
    code = brainmis_main(["evaluate-brain", "--ckpt", str(checkpoint), "--fold", "1",
                          "--out", str(out)])  # fmt: skip
    stderr = capsys.readouterr().err
    (error,) = [line for line in stderr.splitlines() if "error:" in line]
    assert code == 2 and "Traceback" not in stderr
    assert "held out fold 0" in error and "--allow-training-fold" in error
    assert not out.exists()
    code = brainmis_main(["evaluate-brain", "--ckpt", str(checkpoint), "--fold", "1",
                          "--allow-training-fold", "--out", str(out)])  # fmt: skip
    assert code == 0 and (out / "brain_alignment.json").is_file()


def test_backbone_gradients_are_clipped_and_the_head_is_not(tiny_models, tmp_path):
    from brainmis.models.module import BrainMisalignmentModule

    module = BrainMisalignmentModule(pretrained_path=str(tiny_models["gpt2"]), n_voxels=4)
    for parameter in module.parameters():
        if parameter.requires_grad:
            parameter.grad = torch.full_like(parameter, 10.0)
    module.configure_gradient_clipping(None, gradient_clip_val=1.0, gradient_clip_algorithm="norm")
    backbone = [p.grad for p in module.backbone.parameters() if p.requires_grad]
    norm = torch.linalg.vector_norm(torch.cat([g.flatten() for g in backbone]))
    assert norm == pytest.approx(1.0, rel=1e-4)
    assert all(torch.all(p.grad == 10.0) for p in module.head.parameters())


@pytest.mark.slow
def test_all_18_paper_configs_fit_evaluate_and_compare(tiny_models, cache, tmp_path):
    """Every paper config trains one short epoch and evaluates itself; `compare` on the run
    folders has LM, brain-alignment and probing values for every setting and condition."""
    root = tmp_path / "root"
    for name in PAPER_CONFIGS:
        run = fit_paper_config(name, tiny_models[name.split("_")[0]], cache, root)
        assert (run / "checkpoints" / "last.ckpt").is_file(), name
        assert (run / "checkpoints" / "best.ckpt").is_file(), name
    out = tmp_path / "comparison"
    assert brainmis_main(["compare", str(root / "lightning_logs"), "--out", str(out)]) == 0
    with (out / "runs.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 18
    seen = set()
    for row in rows:
        for column in ("lm_loss", "brain_alignment", "probing_score"):
            assert math.isfinite(float(row[column])), (row["path"], column)
        assert row["lm_epoch"] == row["brain_epoch"] == row["probing_epoch"] == "1"
        seen.add((row["model"], row["dataset"], row["condition"]))
    assert len(seen) == 18
    with (out / "paired_tests.csv").open(newline="") as handle:
        tested = {(row["model"], row["dataset"], row["metric"]) for row in csv.DictReader(handle)}
    settings = {(row["model"], row["dataset"]) for row in rows}
    assert len(settings) == 6  # 3 model families x 2 dataset layouts
    for model, dataset in settings:
        for metric in ("lm_loss", "brain_alignment", "probing_score"):
            assert (model, dataset, metric) in tested, (model, dataset, metric)
