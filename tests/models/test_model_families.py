"""Any standard Hugging Face masked or causal LM trains: the objective is read from the config,
the blocks are found in the module tree, LoRA targets come from the family table or from the
blocks' linear layers, and every tiny family fits, exports and reloads (docs/models.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from standin import StandInDataModule
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM

from brainmis.cli import main as brainmis_main
from brainmis.errors import BrainmisInputError
from brainmis.models.architecture import objective_of_config, transformer_blocks
from brainmis.models.backbone import AUTO_CLASSES, load_backbone, model_objective
from brainmis.models.export import INFO_FILE, export_checkpoint
from brainmis.models.features import window_features
from brainmis.models.lora import (
    FAMILY_TARGETS,
    adapted_module_names,
    add_lora,
    block_linear_names,
)
from brainmis.models.module import BrainMisalignmentModule
from brainmis.models.tiny import (
    MASKED_TINY_FAMILIES,
    TINY_FAMILIES,
    family_config_settings,
    train_tokenizer,
)

REPO = Path(__file__).resolve().parents[2]
MODEL_CONFIGS = sorted((REPO / "configs" / "models").glob("*.yaml"))
CONDITIONS = ("misaligned", "preserving", "tuned", "lm_only")
BLOCK_PATHS = {"bert": "bert.encoder.layer", "gpt2": "transformer.h", "llama": "model.layers"}


# ------------------------------------------------------------------ objective from the config
@pytest.mark.parametrize(
    ("config", "objective"),
    [
        ({"model_type": "bert", "architectures": ["BertForMaskedLM"]}, "masked"),
        ({"model_type": "bert", "architectures": ["BertLMHeadModel"], "is_decoder": True}, "causal"),
        ({"model_type": "bert", "is_decoder": True}, "causal"),
        ({"model_type": "bert", "architectures": ["BertModel"]}, "masked"),  # refused at load if it lacks the head
        ({"model_type": "roberta"}, "masked"),
        ({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}, "causal"),
        ({"model_type": "qwen2"}, "causal"),
        ({"model_type": "modernbert"}, "masked"),
    ],
)
def test_objective_comes_from_the_config(config, objective):
    assert objective_of_config(config) == objective


def test_objective_override_and_its_checks():
    config = {"model_type": "bert", "architectures": ["BertForMaskedLM"]}
    assert objective_of_config({**config, "is_decoder": True}, objective="causal") == "causal"
    # an encoder's causal class without is_decoder attends both ways: refused, not trained
    with pytest.raises(BrainmisInputError, match="attends both ways unless"):
        objective_of_config(config, "folder", objective="causal")
    with pytest.raises(BrainmisInputError, match="attends both ways unless"):
        objective_of_config({"model_type": "bert", "architectures": ["BertLMHeadModel"]})
    with pytest.raises(BrainmisInputError, match="encoder-decoder"):
        objective_of_config({"model_type": "bart", "is_encoder_decoder": True}, "folder")
    with pytest.raises(BrainmisInputError, match="no masked-LM class for model_type 'gpt2'"):
        objective_of_config({"model_type": "gpt2"}, "folder", objective="masked")
    with pytest.raises(BrainmisInputError, match="model.objective 'seq2seq'"):
        objective_of_config(config, objective="seq2seq")


@pytest.mark.parametrize(
    "config", [{"model_type": "vit"}, {"model_type": "t5"}, {"architectures": ["X"]}, [1, 2]]
)
def test_a_folder_that_is_no_language_model_is_one_line_naming_it(tmp_path, config):
    folder = tmp_path / "not-an-lm"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    for load in (load_backbone, model_objective):
        with pytest.raises(BrainmisInputError) as error:
            load(folder)
        line = str(error.value)
        assert "\n" not in line and str(folder) in line
        assert "neither a masked nor a causal" in line or "no model_type" in line


# ------------------------------------------------------------------ blocks and LoRA targets
@pytest.mark.parametrize("family", sorted(BLOCK_PATHS))
def test_blocks_are_found_in_the_module_tree(tiny_models, family):
    model = load_backbone(tiny_models(family)).model
    blocks = transformer_blocks(model)
    assert blocks.path == BLOCK_PATHS[family] and len(blocks.layers) == 2


def lora_leaves(wrapped) -> set[str]:
    return {name.rsplit(".", 1)[-1] for name in adapted_module_names(wrapped)}


def check_targets(family: str, wrapped) -> list[str]:
    """The adapted modules are the family table's defaults, or (without an entry) exactly the
    linear layers of the blocks; returns their names."""
    found = adapted_module_names(wrapped)
    if family in FAMILY_TARGETS:
        assert lora_leaves(wrapped) == {t.rsplit(".", 1)[-1] for t in FAMILY_TARGETS[family][0]}
    else:
        assert found == block_linear_names(wrapped.get_base_model())
    trainable = [n for n, p in wrapped.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    return found


def test_target_option_and_layers_override_the_defaults(tiny_models):
    model = load_backbone(tiny_models("qwen2")).model
    wrapped = add_lora(model, "qwen2", target_modules=["v_proj"], layers_to_transform=[1])
    assert adapted_module_names(wrapped) == ["self_attn.v_proj"]
    assert all(".layers.1." in n for n, p in wrapped.named_parameters() if p.requires_grad)
    auto = add_lora(load_backbone(tiny_models("modernbert")).model, "modernbert",
                    layers_to_transform=[0])  # fmt: skip
    adapted = [n for n, p in auto.named_parameters() if p.requires_grad]
    assert adapted and all(".layers.0." in n for n in adapted)


# ------------------------------------------------------------------ families not shipped
def save_unknown_family(folder: Path, model_type: str, text: str) -> Path:
    """A tiny model of a family that is neither a tiny family nor in the LoRA table."""
    kind = "bert" if model_type in ("electra", "distilbert") else "llama"
    tokenizer = train_tokenizer(kind, text, 300)
    if kind == "bert":
        settings = family_config_settings("bert", tokenizer, 32, 2, 2)
        if model_type == "distilbert":
            settings = dict(vocab_size=len(tokenizer), dim=32, n_layers=2, n_heads=2,
                            hidden_dim=64, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
        auto = AutoModelForMaskedLM
    else:
        settings = family_config_settings("qwen2", tokenizer, 32, 2, 2)
        auto = AutoModelForCausalLM
    torch.manual_seed(0)
    auto.from_config(AutoConfig.for_model(model_type, **settings)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("model_type", ["stablelm", "electra", "distilbert"])
def test_a_family_nobody_configured_trains(tmp_path, tiny_text_file, model_type):
    assert model_type not in FAMILY_TARGETS and model_type not in TINY_FAMILIES
    folder = save_unknown_family(tmp_path / model_type, model_type, tiny_text_file.read_text())
    module = BrainMisalignmentModule(str(folder), n_voxels=6, context_trs=3, condition="tuned")
    assert module.family == model_type
    assert module.objective == ("causal" if model_type == "stablelm" else "masked")
    # ELECTRA's head (the children after the body) reproduces its logits; DistilBERT registers
    # its activation before the body, so the check fails and the loss runs the whole model
    assert (module.mlm_head is not None) == (model_type == "electra")
    check_targets(model_type, module.backbone)
    batch = next(iter(StandInDataModule(module.tokenizer).train_dataloader()))
    lm_loss, features, _ = module.lm_loss_and_features(batch)
    assert torch.isfinite(lm_loss) and features.shape == (8, 3 * 32)


def test_a_head_that_needs_more_than_hidden_states_runs_the_whole_model(tmp_path, tiny_text_file):
    """DeBERTa-v2's non-legacy head takes the word embeddings too: no isolated head, the
    masked-LM loss comes from the whole model, and equals the isolated head's where both work."""
    text = tiny_text_file.read_text()
    tokenizer = train_tokenizer("bert", text, 300)
    settings = family_config_settings("deberta-v2", tokenizer, 32, 2, 2)
    folder = tmp_path / "deberta"
    model = AutoModelForMaskedLM.from_config(
        AutoConfig.for_model("deberta-v2", **settings, legacy=False)
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    module = BrainMisalignmentModule(str(folder), n_voxels=6, context_trs=3).eval()
    assert module.objective == "masked" and module.mlm_head is None
    batch = next(iter(StandInDataModule(module.tokenizer).val_dataloader()))
    assert torch.isfinite(module.lm_loss_and_features(batch)[0])

    bert = BrainMisalignmentModule(
        str(save_unknown_family(tmp_path / "electra", "electra", text)), n_voxels=6, context_trs=3
    ).eval()
    with torch.no_grad():
        isolated = bert.lm_loss_and_features(batch, torch.Generator().manual_seed(0))
        bert.mlm_head = None
        whole = bert.lm_loss_and_features(batch, torch.Generator().manual_seed(0))
    assert torch.allclose(isolated[0], whole[0], atol=1e-5)
    assert torch.allclose(isolated[1], whole[1], atol=1e-5)


# ------------------------------------------------------------------ every family, end to end
def fit_steps(module, data, root: Path, steps: int = 3) -> L.Trainer:
    """One epoch of ``steps`` training batches, then one validation batch."""
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_epochs=1, limit_train_batches=steps,
        limit_val_batches=1,
        num_sanity_val_steps=0, logger=False, enable_progress_bar=False,
        enable_model_summary=False, log_every_n_steps=1, default_root_dir=root,
    )  # fmt: skip
    trainer.fit(module, datamodule=data)
    return trainer


def trainable_copy(module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}


def check_fit(family: str, folder: Path, condition: str, root: Path):
    """Three steps of ``condition``: losses are finite and LoRA moves. Returns the module and
    its trainer."""
    L.seed_everything(0, verbose=False)
    module = BrainMisalignmentModule(
        str(folder), n_voxels=6, context_trs=3, condition=condition, lr=5e-3
    )
    data = StandInDataModule(module.tokenizer)
    if condition == "preserving":  # the datamodule's job in a real fit: targets shuffled
        data.true_targets = data.true_targets[torch.randperm(len(data.true_targets)).numpy()]
    before = trainable_copy(module)
    trainer = fit_steps(module, data, root)
    assert trainer.global_step == 3
    for key in ("train/lm_loss", "train/brain_r", "val/lm_loss"):
        assert torch.isfinite(trainer.callback_metrics[key]), key
    after = trainable_copy(module)
    assert any(not torch.equal(before[n], after[n]) for n in before if "lora_" in n)
    assert module.objective == ("masked" if family in MASKED_TINY_FAMILIES else "causal")
    return module, trainer


def check_export(module, trainer, root: Path) -> None:
    """Export merges LoRA; the folder reloads with the objective's auto class and gives the
    adapted model's window features."""
    checkpoint = root / "last.ckpt"
    trainer.save_checkpoint(checkpoint)
    out = export_checkpoint(checkpoint, root / "export")
    reloaded = AUTO_CLASSES[module.objective].from_pretrained(out).eval()
    module.eval()
    batch = next(iter(StandInDataModule(module.tokenizer).val_dataloader()))
    args = (batch["input_ids"], batch["attention_mask"], batch["group_ids"], 3)
    with torch.no_grad():
        assert torch.allclose(
            window_features(reloaded, *args), window_features(module.backbone, *args), atol=1e-4
        )
    info = json.loads((out / INFO_FILE).read_text())
    assert info["family"] == module.family and info["objective"] == module.objective


def test_one_new_family_end_to_end(tiny_models, tmp_path):
    """The fast smoke test: qwen2 builds, gets its LoRA defaults, fits, exports, reloads."""
    module, trainer = check_fit("qwen2", tiny_models("qwen2"), "misaligned", tmp_path)
    assert check_targets("qwen2", module.backbone) == [
        "self_attn.k_proj", "self_attn.o_proj", "self_attn.q_proj", "self_attn.v_proj"
    ]  # fmt: skip
    check_export(module, trainer, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("condition", CONDITIONS)
@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_every_family_fits_under_every_condition(tiny_models, tmp_path, family, condition):
    module, trainer = check_fit(family, tiny_models(family), condition, tmp_path)
    print(family, module.objective, check_targets(family, module.backbone))
    if condition == "tuned":
        check_export(module, trainer, tmp_path)


# ------------------------------------------------------------------ configs, benchmark, demo
def test_a_config_per_family_is_shipped():
    assert {path.stem for path in MODEL_CONFIGS} == set(TINY_FAMILIES)


@pytest.mark.parametrize("path", MODEL_CONFIGS, ids=[p.stem for p in MODEL_CONFIGS])
def test_family_config_parses(path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        brainmis_main(["fit", "--config", str(path), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["objective"] in ("auto", "masked", "causal")
    assert f"tiny-{path.stem}" in printed["model"]["pretrained_path"]


@pytest.mark.slow
def test_family_benchmark_prints_the_table(tmp_path):
    completed = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "model_families.py"),
         "--families", "qwen2", "modernbert", "--work-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    rows = [line for line in completed.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| family | objective | LoRA targets found")
    assert "| qwen2 | causal | self_attn.k_proj" in rows[1] and "OK" in rows[1]
    assert "| modernbert | masked | attn.Wo, attn.Wqkv, mlp.Wi, mlp.Wo" in rows[2]


@pytest.mark.slow
def test_demo_runs_with_another_model_family(tmp_path, monkeypatch, capsys):
    """The demo's four conditions with a tiny Qwen2, reduced: one subject, two training
    batches (about 3 minutes on 2 cores: the brain-alignment and probing callbacks)."""
    monkeypatch.chdir(tmp_path)  # the synthetic default's cache is made here
    out = tmp_path / "demo"
    code = brainmis_main(
        ["demo", "--model-family", "qwen2", "--out", str(out), "--subjects", "F",
         "--pretrain-steps", "5", "--", "--trainer.max_epochs=1",
         "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1",
         "--probing.tasks=[negation]", "--probing.max_items=30"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed[-2000:]
    assert "tiny qwen2" in printed
    runs = sorted(p.parent.name for p in out.glob("lightning_logs/*/version_0"))
    assert runs == sorted(f"{condition}_sub-F" for condition in CONDITIONS)
    assert (out / "comparison").is_dir()


def test_weights_without_the_lm_head_are_refused(tiny_models, tmp_path):
    """An encoder saved without its masked-LM head (a bare BertModel) would load with a random
    head and a meaningless LM loss: one line naming the folder and a missing weight."""
    backbone = load_backbone(tiny_models("bert"))
    bare = tmp_path / "bare-bert"
    backbone.model.bert.save_pretrained(bare)
    backbone.tokenizer.save_pretrained(bare)
    with pytest.raises(BrainmisInputError) as error:
        load_backbone(bare)
    line = str(error.value)
    assert "\n" not in line and str(bare) in line and "cls.predictions" in line
