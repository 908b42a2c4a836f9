import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

from brainmis.cli import main as brainmis_main
from brainmis.errors import BrainmisInputError
from brainmis.models.backbone import load_backbone, model_family
from brainmis.models.lora import add_lora


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama"])
def test_tiny_model_loads_through_the_backbone_path(tiny_models, family):
    folder = tiny_models(family)
    loaded = load_backbone(folder)
    assert loaded.family == family == model_family(folder)
    assert len(loaded.tokenizer) <= loaded.model.get_input_embeddings().num_embeddings
    assert loaded.tokenizer.is_fast
    auto = AutoModelForMaskedLM if family == "bert" else AutoModelForCausalLM
    assert isinstance(loaded.model, type(auto.from_pretrained(folder)))
    encoded = loaded.tokenizer("Harry ran to the castle")
    if family == "bert":
        assert encoded["input_ids"][0] == loaded.tokenizer.cls_token_id
        assert loaded.tokenizer.mask_token_id is not None
    elif family == "llama":
        assert encoded["input_ids"][0] == loaded.tokenizer.bos_token_id
    else:
        assert loaded.tokenizer.eos_token == "<|endoftext|>"


def test_hub_name_without_local_copy_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BrainmisInputError, match="nothing is downloaded at run time"):
        load_backbone("meta-llama/Llama-3.2-1B")


def test_tokenizer_model_mismatch_is_refused(tiny_models, tmp_path):
    folder = tmp_path / "mismatch"
    folder.mkdir()
    for item in tiny_models("gpt2").iterdir():
        (folder / item.name).write_bytes(item.read_bytes())
    tokenizer = load_backbone(folder).tokenizer
    tokenizer.add_tokens([f"extraword{i}" for i in range(400)])
    tokenizer.save_pretrained(folder)
    with pytest.raises(BrainmisInputError, match="do not belong together"):
        load_backbone(folder)
    config = json.loads((folder / "config.json").read_text())
    config["vocab_size"] = 50
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(BrainmisInputError, match="cannot load the model weights"):
        load_backbone(folder)


def test_make_tiny_model_cli_refuses_non_empty_out(tiny_text_file, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user file")
    code = brainmis_main(
        ["make-tiny-model", "--family", "gpt2", "--text", str(tiny_text_file), "--out", str(out)]
    )
    assert code == 2
    assert "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def heldout_masked_lm_loss(folder, text: str) -> float:
    """Masked-LM loss (nats/token) of the BERT model in ``folder`` on ``text``, with a fixed
    15% masking (seed 0), so two models are scored on the same masked tokens."""
    import torch

    from brainmis.models.masking import mask_tokens

    loaded = load_backbone(folder)
    tokenizer = loaded.tokenizer
    ids = torch.tensor([tokenizer(line)["input_ids"] for line in text.splitlines()])
    maskable = (ids != tokenizer.cls_token_id) & (ids != tokenizer.sep_token_id)
    masked, labels = mask_tokens(
        ids,
        maskable,
        tokenizer.mask_token_id,
        len(tokenizer),
        generator=torch.Generator().manual_seed(0),
    )
    with torch.no_grad():
        return float(loaded.model(input_ids=masked, labels=labels).loss)


def test_make_tiny_model_cli_with_pretraining_lowers_lm_loss(tiny_text_file, tmp_path):
    """The folder written with ``--pretrain-steps 10`` has a lower held-out masked-LM loss
    than the one written by the same command with 0 steps (the same initial weights)."""
    from standin import tiny_text

    folders = {}
    for steps in (0, 10):
        folders[steps] = tmp_path / f"bert-{steps}"
        arguments = ["make-tiny-model", "--family", "bert", "--text", str(tiny_text_file)]
        arguments += ["--out", str(folders[steps]), "--hidden", "32", "--vocab", "300"]
        assert brainmis_main([*arguments, "--pretrain-steps", str(steps)]) == 0
    heldout = tiny_text(n_lines=40, seed=1)  # other sentences of the same words
    assert heldout not in tiny_text_file.read_text()
    untrained = heldout_masked_lm_loss(folders[0], heldout)
    pretrained = heldout_masked_lm_loss(folders[10], heldout)
    assert pretrained < untrained - 0.25  # 4.75 -> 4.27 nats/token


def test_make_tiny_model_with_pretraining_is_reproducible(tiny_text_file, tmp_path):
    """Two calls with the same seed write the same weights, whatever the global generator
    did in between (dropout during pre-training draws from it)."""
    from safetensors.torch import load_file

    from brainmis.models.tiny import make_tiny_model

    weights = []
    for name in ("first", "second"):
        torch.rand(7)  # the global generator moves on between the calls
        folder = make_tiny_model(
            "gpt2", text=tiny_text_file, out=tmp_path / name, hidden=32, vocab=300,
            pretrain_steps=3,
        )  # fmt: skip
        weights.append(load_file(folder / "model.safetensors"))
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key


@pytest.mark.parametrize(
    ("family", "targets"),
    [
        ("bert", ["query", "key", "value", "dense"]),
        ("gpt2", ["c_attn", "c_proj", "c_fc"]),
        ("llama", ["q_proj", "k_proj", "v_proj", "o_proj"]),
    ],
)
def test_lora_defaults_freeze_the_base(tiny_models, family, targets):
    model = load_backbone(tiny_models(family)).model
    wrapped = add_lora(model, family, r=4, alpha=8)
    trainable = [n for n, p in wrapped.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    adapted = {n.split(".lora_")[0].split(".")[-1] for n in trainable}
    assert adapted == set(targets)


def test_lora_layers_to_transform_and_bad_target(tiny_models):
    model = load_backbone(tiny_models("gpt2")).model
    wrapped = add_lora(model, "gpt2", layers_to_transform=[1], gradient_checkpointing=True)
    trainable = [n for n, p in wrapped.named_parameters() if p.requires_grad]
    assert trainable and all(".h.1." in n for n in trainable)
    assert wrapped.get_base_model().is_gradient_checkpointing
    with pytest.raises(BrainmisInputError, match="LoRA"):
        add_lora(load_backbone(tiny_models("gpt2")).model, "gpt2", target_modules=["nope"])
