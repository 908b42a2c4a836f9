import json
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from transformers import AutoModel

sys.path.insert(0, str(Path(__file__).parent))
from standin import StandInDataModule  # noqa: E402

from brainmis.cli import main as brainmis_main  # noqa: E402
from brainmis.errors import BrainmisInputError  # noqa: E402
from brainmis.models.export import HEAD_FILE, INFO_FILE  # noqa: E402
from brainmis.models.features import window_features  # noqa: E402
from brainmis.models.module import BrainMisalignmentModule  # noqa: E402


def make_module(folder, **kwargs):
    kwargs.setdefault("n_voxels", 6)
    kwargs.setdefault("context_trs", 3)
    return BrainMisalignmentModule(str(folder), **kwargs)


def quiet_trainer(root, **kwargs):
    defaults = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=root,
    )
    defaults.update(kwargs)
    return L.Trainer(**defaults)


@pytest.mark.parametrize("family", ["gpt2", "bert"])
def test_training_features_are_the_evaluation_features(tiny_models, family):
    module = make_module(tiny_models(family)).eval()
    batch = next(iter(StandInDataModule(module.tokenizer).val_dataloader()))
    with torch.no_grad():
        lm_loss, features, n_predicted = module.lm_loss_and_features(batch)
        expected = window_features(
            module.backbone,
            batch["input_ids"],
            batch["attention_mask"],
            batch["group_ids"],
            context_trs=3,
        )
    assert features.shape == (8, 3 * 32)
    assert torch.allclose(features, expected, atol=1e-5)
    assert torch.isfinite(lm_loss) and n_predicted > 0


def lora_grads(module, batch, w_lm):
    module.hparams.w_lm = w_lm
    module.zero_grad()
    lm_loss, features, _ = module.lm_loss_and_features(batch)
    predicted = module.head(module.head_input(features, strength=0.5))
    from brainmis.models.losses import pearson_loss

    (w_lm * lm_loss + module.hparams.w_ba * pearson_loss(predicted, batch["targets"])).backward()
    return {
        n: p.grad.clone()
        for n, p in module.named_parameters()
        if p.requires_grad and p.grad is not None
    }


def test_conditions_decide_what_the_backbone_learns_from_the_head(tiny_models):
    folder = tiny_models("gpt2")
    torch.manual_seed(0)
    tuned = make_module(folder, condition="tuned", lora_dropout=0.0).eval()
    batch = next(iter(StandInDataModule(tuned.tokenizer).train_dataloader()))
    misaligned = make_module(folder, condition="misaligned").eval()
    misaligned.load_state_dict(tuned.state_dict())
    lm_only = make_module(folder, condition="lm_only").eval()
    lm_only.load_state_dict(tuned.state_dict())
    # Make LoRA B non-zero so that gradients reach LoRA A as well.
    with torch.no_grad():
        for module in (tuned, misaligned, lm_only):
            for name, p in module.named_parameters():
                if "lora_B" in name:
                    p.copy_(torch.full_like(p, 0.01))
    g_tuned = lora_grads(tuned, batch, w_lm=0.0)
    g_mis = lora_grads(misaligned, batch, w_lm=0.0)
    g_lm_only = lora_grads(lm_only, batch, w_lm=0.0)
    lora_names = [n for n in g_tuned if "lora_" in n]
    assert lora_names and any(g_tuned[n].abs().sum() > 0 for n in lora_names)
    for name in lora_names:  # reversed and scaled by the strength 0.5
        assert torch.allclose(g_mis[name], -0.5 * g_tuned[name], atol=1e-6)
        assert name not in g_lm_only or torch.all(g_lm_only[name] == 0)
    head = "head.linear.weight"
    assert torch.allclose(g_mis[head], g_tuned[head]) and torch.allclose(
        g_lm_only[head], g_tuned[head]
    )


def test_bad_condition_is_refused(tiny_models):
    with pytest.raises(BrainmisInputError, match="condition"):
        make_module(tiny_models("gpt2"), condition="aligned")


def fit(folder, root, epochs, seed=7, ckpt_path=None, **trainer_kwargs):
    L.seed_everything(seed, verbose=False)
    module = make_module(folder, condition="misaligned", grl_schedule="constant", lr=5e-3)
    data = StandInDataModule(module.tokenizer)
    trainer = quiet_trainer(root, max_epochs=epochs, **trainer_kwargs)
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    return module, trainer


def trainable(module):
    return {
        k: v.detach().clone()
        for k, v in module.state_dict().items()
        if k in set(module.trainable_state_keys())
    }


def test_checkpoint_holds_trainable_weights_only_and_resume_is_exact(tiny_models, tmp_path):
    folder = tiny_models("bert")  # masked LM: masks and dropout use the RNG
    straight, _ = fit(folder, tmp_path / "a", epochs=2, enable_checkpointing=False)
    first, trainer = fit(folder, tmp_path / "b", epochs=1)
    checkpoint_path = trainer.checkpoint_callback.best_model_path
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    assert set(checkpoint["state_dict"]) == set(first.trainable_state_keys())
    assert all("lora_" in k or k.startswith("head.") for k in checkpoint["state_dict"])
    resumed, _ = fit(folder, tmp_path / "b", epochs=2, ckpt_path=checkpoint_path)
    a, b = trainable(straight), trainable(resumed)
    assert set(a) == set(b)
    assert any(not torch.equal(a[k], trainable(first)[k]) for k in a)  # epoch 2 did train
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_fit_writes_held_out_lm_loss_and_export_round_trip(tiny_models, tmp_path, capsys):
    folder = tiny_models("gpt2")
    logger = L.pytorch.loggers.TensorBoardLogger(tmp_path / "lightning_logs", name="run")
    module, trainer = fit(folder, tmp_path, epochs=1, logger=logger, limit_train_batches=2)
    run = Path(trainer.log_dir)
    record = json.loads((run / "evaluation" / "lm.json").read_text())
    assert record["epoch"] == 1 and record["lm_loss"] > 0
    assert trainer.callback_metrics["val/brain_r"].isfinite()
    for key in (
        "train/lm_loss",
        "train/brain_loss",
        "grl_lambda",
        "lr",
        "tokens_per_s",
        "val/lm_loss",
    ):
        assert key in trainer.callback_metrics
    checkpoint = next((run / "checkpoints").glob("*.ckpt"))
    out = tmp_path / "export"
    assert brainmis_main(["export", str(checkpoint), "--out", str(out)]) == 0
    exported = AutoModel.from_pretrained(out)
    module.eval()
    batch = next(iter(StandInDataModule(module.tokenizer).val_dataloader()))
    with torch.no_grad():
        merged = window_features(
            exported, batch["input_ids"], batch["attention_mask"], batch["group_ids"], 3
        )
        adapted = window_features(
            module.backbone, batch["input_ids"], batch["attention_mask"], batch["group_ids"], 3
        )
    assert torch.allclose(merged, adapted, atol=1e-4)
    info = json.loads((out / INFO_FILE).read_text())
    assert info["n_voxels"] == 6 and info["context_trs"] == 3 and (out / HEAD_FILE).is_file()
    assert brainmis_main(["export", str(checkpoint), "--out", str(out)]) == 2  # not empty
    assert "not empty" in capsys.readouterr().err


def test_bf16_mixed_keeps_trainable_weights_float32(tiny_models, tmp_path):
    L.seed_everything(0, verbose=False)
    module = make_module(tiny_models("llama"), condition="tuned")
    trainer = quiet_trainer(
        tmp_path,
        precision="bf16-mixed",
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        enable_checkpointing=False,
    )
    trainer.fit(module, datamodule=StandInDataModule(module.tokenizer))
    assert all(p.dtype == torch.float32 for p in module.parameters() if p.requires_grad)
    assert torch.isfinite(trainer.callback_metrics["train/lm_loss"])
    assert torch.isfinite(trainer.callback_metrics["val/lm_loss"])
