"""ProbingCallback inside a real (tiny) Lightning fit, and the ``brainmis probe`` command."""

from __future__ import annotations

import json

import lightning
import pytest
import torch
import yaml
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from brainmis.cli import main as brainmis_main
from brainmis.evaluation.probing.callback import ProbingCallback
from brainmis.evaluation.probing.results_file import read_probing_csv
from brainmis.models.backbone import load_backbone
from brainmis.models.checkpoint import load_checkpoint_module
from brainmis.run_folder.layout import PROBING_COLUMNS

TASKS = ["negation", "animacy"]


class TinyLMModule(lightning.LightningModule):
    """Exposes what the callback reads: ``backbone``, ``tokenizer``, ``feature_layer``."""

    def __init__(self, model_dir):
        super().__init__()
        loaded = load_backbone(model_dir)
        self.backbone, self.tokenizer, self.feature_layer = loaded.model, loaded.tokenizer, -1

    def training_step(self, batch, batch_idx):
        ids = batch[0]
        return self.backbone(input_ids=ids, labels=ids).loss

    def train_dataloader(self):
        ids = torch.tensor([self.tokenizer("The cat sat on the mat.")["input_ids"]] * 4)
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(ids), batch_size=2)

    def configure_optimizers(self):
        return torch.optim.SGD(self.backbone.parameters(), lr=0.1)


def test_callback_logs_scalars_and_appends_csv_each_epoch(tiny_gpt2_dir, tmp_path):
    callback = ProbingCallback(
        every_n_epochs=1, tasks=TASKS, max_items=60, seeds=[0, 1], cache_dir=str(tmp_path / "cache")
    )
    logger = TensorBoardLogger(tmp_path / "logs", name="run")
    trainer = lightning.Trainer(
        max_epochs=2, logger=logger, callbacks=[callback], enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(TinyLMModule(tiny_gpt2_dir))
    rows = read_probing_csv(tmp_path / "logs" / "run" / "version_0" / "evaluation" / "probing.csv")
    assert tuple(rows[0]) == PROBING_COLUMNS
    # epochs finished: 1 after the first epoch, 2 after the second; fit end does not probe
    # epoch 2 twice
    assert {r["epoch"] for r in rows} == {"1", "2"}
    assert {r["run"] for r in rows} == {"run/version_0"}
    assert {r["task"] for r in rows} == set(TASKS)
    assert {r["seed"] for r in rows} == {"0", "1"}
    assert {"accuracy", "macro_f1", "accuracy_unseen"} <= {r["metric"] for r in rows}
    assert {r["subfield"] for r in rows} == {"semantics"}
    events = EventAccumulator(str(logger.log_dir))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"probing/negation", "probing/animacy", "probing/subfield/semantics"} <= tags
    assert len(events.Scalars("probing/negation")) == 2


def test_probe_command_on_a_model_folder(tiny_gpt2_dir, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["probe", "--model", str(tiny_gpt2_dir), "--builtin", "--tasks", *TASKS, "--max-items", "60",
            "--seeds", "0", "1", "--cache-dir", str(tmp_path / "cache"), "--controls", "permuted_labels", "permuted_words", "random_weights",
            "--out", str(out)]  # fmt: skip
    assert brainmis_main(argv) == 0
    rows = read_probing_csv(out / "probing.csv")
    assert {r["epoch"] for r in rows} == {"0"}  # the pretrained model: no epoch finished
    metrics = {r["metric"] for r in rows}
    assert {
        "accuracy",
        "permuted_labels/accuracy",
        "selectivity/accuracy",
        "permuted_words/accuracy",
        "random_weights/accuracy",
    } <= metrics
    by_key = {(r["task"], r["seed"], r["metric"]): float(r["score"]) for r in rows}
    for (task, seed, metric), value in by_key.items():
        if metric == "selectivity/accuracy":
            expected = (
                by_key[(task, seed, "accuracy")] - by_key[(task, seed, "permuted_labels/accuracy")]
            )
            assert value == pytest.approx(expected, abs=1e-5)
    summary = json.loads((out / "probing_summary.json").read_text())
    assert set(summary["tasks"]) == set(TASKS) and set(summary["subfields"]) == {"semantics"}
    assert 0.0 <= summary["tasks"]["negation"]["score"] <= 1.0
    # a second run into the same folder is refused, nothing is overwritten
    before = (out / "probing.csv").read_bytes()
    assert brainmis_main(argv) == 2
    assert "not empty" in capsys.readouterr().err
    assert (out / "probing.csv").read_bytes() == before


def test_probe_command_refuses_bad_holmes_folder_before_writing(tiny_gpt2_dir, tmp_path, capsys):
    bad = tmp_path / "holmes" / "broken"
    bad.mkdir(parents=True)
    (bad / "config-none.yaml").write_text("probe_task_type: SENTENCE\nnum_labels: 2\n")
    (bad / "samples.csv").write_text("id,inputs,context,label,set-0\n0,['a',,0,train\n")
    out = tmp_path / "out"
    code = brainmis_main(
        [
            "probe",
            "--model",
            str(tiny_gpt2_dir),
            "--holmes",
            str(tmp_path / "holmes"),
            "--out",
            str(out),
        ]
    )
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert "samples.csv: row 2 (id 0): inputs is not a valid Python literal" in error
    assert len(error.splitlines()) == 1
    assert not out.exists()


def test_checkpoint_is_rebuilt_from_the_run_config(tiny_gpt2_dir, tmp_path):
    from brainmis.models.module import BrainMisalignmentModule

    module = BrainMisalignmentModule(
        pretrained_path=str(tiny_gpt2_dir), n_voxels=3, condition="tuned"
    )
    trainable = {
        k: v for k, v in module.state_dict().items() if k in set(module.trainable_state_keys())
    }
    lora_key = next(k for k in trainable if "lora_B" in k)
    trainable[lora_key] = torch.full_like(trainable[lora_key], 0.25)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    config = {"model": {"pretrained_path": str(tiny_gpt2_dir), "condition": "tuned"}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    ckpt = run / "checkpoints" / "epoch=2.ckpt"
    torch.save({"state_dict": trainable, "epoch": 2}, ckpt)  # 0-based index: 3 epochs finished
    loaded = load_checkpoint_module(ckpt)
    assert loaded.epoch == 3
    assert torch.equal(loaded.module.state_dict()[lora_key], trainable[lora_key])
    assert loaded.module.head.linear.weight.shape[0] == 3  # n_voxels read from the head weights
    out = tmp_path / "out"
    argv = ["probe", "--ckpt", str(ckpt), "--builtin", "--tasks", "negation", "--max-items", "40",
            "--seeds", "0", "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]  # fmt: skip
    assert brainmis_main(argv) == 0
    assert {r["epoch"] for r in read_probing_csv(out / "probing.csv")} == {"3"}


def test_missing_checkpoint_is_one_line(tmp_path, capsys):
    code = brainmis_main(
        ["probe", "--ckpt", str(tmp_path / "none.ckpt"), "--builtin", "--out", str(tmp_path / "o")]
    )
    assert code == 2
    assert "none.ckpt: checkpoint file not found" in capsys.readouterr().err


def test_callback_rejects_negative_interval():
    with pytest.raises(ValueError):
        ProbingCallback(every_n_epochs=-1)
