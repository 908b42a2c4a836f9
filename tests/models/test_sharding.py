"""Large models (docs/large_models.md): FSDP over the transformer blocks
(``brainmis.models.sharding``, ``configs/shared/trainer_fsdp.yaml``) and 4-/8-bit base loading
(``brainmis.models.quantization``).

FSDP runs here as 2 forked CPU processes with gloo (``start_method="fork"``, as ``ddp_fork`` in
test_ddp.py); the bf16 path on several GPUs and the bitsandbytes path skip without CUDA."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from standin import StandInDataModule  # noqa: E402

from brainmis.errors import BrainmisInputError  # noqa: E402
from brainmis.models.checkpoint import load_checkpoint_module  # noqa: E402
from brainmis.models.module import BrainMisalignmentModule  # noqa: E402
from brainmis.models.quantization import check_quantization, quantization_kwargs  # noqa: E402
from brainmis.models.sharding import (  # noqa: E402
    BlockFSDPStrategy,
    block_classes,
    clean_parameter_name,
    clip_grad_norm,
)

REPO = Path(__file__).resolve().parents[2]
HAS_BNB = importlib.util.find_spec("bitsandbytes") is not None


def _module(folder: Path, **kwargs) -> BrainMisalignmentModule:
    return BrainMisalignmentModule(
        str(folder), n_voxels=6, context_trs=3, condition="misaligned", **kwargs
    )


# ------------------------------------------------------------------ pieces, one process
@pytest.mark.parametrize(
    "family, block", [("gpt2", "GPT2Block"), ("llama", "LlamaDecoderLayer"), ("bert", "BertLayer")]
)
def test_block_classes_found_in_the_peft_wrapped_module(tiny_models, family, block):
    module = _module(tiny_models(family))
    assert block in {cls.__name__ for cls in block_classes(module)}


def test_clean_parameter_name_drops_wrapper_names():
    name = "backbone._fsdp_wrapped_module.h.0._fsdp_wrapped_module._checkpoint_wrapped_module.w"
    assert clean_parameter_name(name) == "backbone.h.0.w"


def test_clip_grad_norm_in_one_process_is_torchs():
    torch.manual_seed(0)
    ours = [torch.nn.Parameter(torch.randn(5, 3)) for _ in range(3)]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    for a, b in zip(ours, theirs, strict=True):
        a.grad = torch.randn_like(a) * 10
        b.grad = a.grad.clone()
    norm = clip_grad_norm(ours, 1.0, sharded=False)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert torch.allclose(norm, expected)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.allclose(a.grad, b.grad, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"sharding_strategy": "NO_SHARD"}, "sharding_strategy"),
        ({"param_dtype": "int8"}, "param_dtype"),
        ({"start_method": "spawn"}, "start_method"),
        ({"auto_wrap_policy": {torch.nn.Linear}}, "derived from the model"),
    ],
)
def test_strategy_refuses_what_it_cannot_do(kwargs, words):
    with pytest.raises(BrainmisInputError, match=words):
        BlockFSDPStrategy(**kwargs)


def test_fsdp_preset_composes_into_a_config(tiny_models, tmp_path):
    """The example config with the preset parses and instantiates the strategy."""
    from brainmis.commands.fit import BrainmisCLI
    from brainmis.data.datamodule import BrainDataModule

    cli = BrainmisCLI(
        BrainMisalignmentModule,
        BrainDataModule,
        run=False,
        seed_everything_default=42,
        args=[
            "--config",
            str(REPO / "configs/large/llama-3.1-8b_hp_misaligned.yaml"),
            f"--model.pretrained_path={tiny_models('gpt2')}",
            "--data.bundle=null",
            f"--data.cache_dir={tmp_path / 'cache'}",
            "--data.num_workers=0",
            "--trainer.accelerator=cpu",
            "--trainer.devices=2",
            "--trainer.strategy.init_args.process_group_backend=gloo",
            f"--trainer.default_root_dir={tmp_path}",
        ],
    )
    strategy = cli.trainer.strategy
    assert isinstance(strategy, BlockFSDPStrategy)
    assert (strategy.param_dtype, strategy.checkpoint_blocks) == ("bfloat16", True)
    assert strategy.kwargs["use_orig_params"] is True
    assert strategy._state_dict_type == "full"
    assert cli.trainer.precision == "32-true"
    assert cli.trainer.gradient_clip_val == 1.0


# ------------------------------------------------------------------ FSDP, 2 CPU processes
class RecordShards(L.Callback):
    """In each rank: the gathered trainable weights at the end of training, and the dtypes
    the head and a block's LoRA layer compute in (forward hooks on the first batch)."""

    def __init__(self, out: Path):
        self.out = out
        self.dtypes: dict[str, str] = {}
        self.handles: list = []

    def on_train_start(self, trainer, pl_module):
        def hook(name):
            def record(module, inputs, output):
                self.dtypes.setdefault(name, str(module.weight.dtype))
                self.dtypes.setdefault(f"{name} output", str(output.dtype))

            return record

        for name, sub in pl_module.named_modules():
            clean = clean_parameter_name(name)
            if clean == "head.linear" or clean.endswith("h.0.attn.c_attn.base_layer"):
                key = "head" if clean == "head.linear" else "block"
                self.handles.append(sub.register_forward_hook(hook(key)))

    def on_train_end(self, trainer, pl_module):
        from torch.distributed.fsdp import FullStateDictConfig, StateDictType
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        for handle in self.handles:
            handle.remove()
        config = FullStateDictConfig(offload_to_cpu=False, rank0_only=False)
        with FSDP.state_dict_type(trainer.strategy.model, StateDictType.FULL_STATE_DICT, config):
            full = trainer.strategy.model.state_dict()
        keep = set(pl_module.trainable_state_keys())
        weights = {key: value.clone() for key, value in full.items() if key in keep}
        master = {
            clean_parameter_name(n): str(p.dtype)
            for n, p in pl_module.named_parameters()
            if p.requires_grad
        }
        torch.save(
            {"weights": weights, "dtypes": self.dtypes, "master": master},
            self.out / f"rank{trainer.global_rank}.pt",
        )


@pytest.mark.parametrize("param_dtype", [None, "bfloat16"])
def test_fsdp_two_cpu_processes_with_gloo(tiny_models, tmp_path, param_dtype):
    """Two forked gloo processes shard the tiny GPT-2 per block (activation checkpointing,
    use_orig_params, LoRA clipping over the shards), train 2 steps and save one checkpoint of
    LoRA + head, which load_checkpoint_module rebuilds; both ranks gather the same weights,
    the parent gets them back. Under param_dtype bfloat16 a block computes in bf16 and the
    head in float32, and the trainable (master) weights stay float32."""
    L.seed_everything(3, verbose=False)
    module = _module(tiny_models("gpt2"))
    before = {k: v.clone() for k, v in module.head.state_dict().items()}
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy=BlockFSDPStrategy(
            param_dtype=param_dtype, start_method="fork", process_group_backend="gloo"
        ),
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=2,
        num_sanity_val_steps=0,
        gradient_clip_val=1.0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[RecordShards(tmp_path)],
    )
    trainer.fit(module, datamodule=StandInDataModule(module.tokenizer))
    assert trainer.world_size == 2
    assert torch.isfinite(trainer.callback_metrics["val/brain_r"])

    checkpoints = list((tmp_path / "checkpoints").glob("*.ckpt"))
    assert len(checkpoints) == 1
    saved = torch.load(checkpoints[0], weights_only=True)["state_dict"]
    assert set(saved) == set(module.trainable_state_keys())
    assert any("lora_A" in key for key in saved)
    assert all(value.dtype == torch.float32 for value in saved.values())
    assert not torch.equal(saved["head.linear.weight"], before["linear.weight"])

    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert set(ranks[0]["weights"]) == set(saved)
    for key, value in saved.items():
        assert torch.equal(ranks[0]["weights"][key], value), key
        assert torch.equal(ranks[1]["weights"][key], value), key
    for rank in ranks:
        assert set(rank["master"].values()) == {"torch.float32"}
        assert rank["dtypes"]["head"] == rank["dtypes"]["head output"] == "torch.float32"
        low = "torch.float32" if param_dtype is None else f"torch.{param_dtype}"
        assert rank["dtypes"]["block"] == rank["dtypes"]["block output"] == low

    trained = dict(module.named_parameters())  # the parent's module, handed back by the launcher
    for key, value in saved.items():
        assert torch.equal(trained[key].detach(), value), key

    loaded = load_checkpoint_module(checkpoints[0]).module
    own = dict(loaded.named_parameters())
    for key, value in saved.items():
        assert torch.equal(own[key].detach(), value), key


def _fsdp_fit(folder: Path, root: Path, epochs: int, ckpt: Path | None = None):
    """A 2-process CPU FSDP fit; the constant reversal strength makes the first epoch of a
    1-epoch and of a 2-epoch fit the same (the ramp depends on the total step count)."""
    L.seed_everything(3, verbose=False)
    module = _module(folder, grl_schedule="constant")
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy=BlockFSDPStrategy(
            param_dtype=None, start_method="fork", process_group_backend="gloo"
        ),
        max_epochs=epochs,
        limit_train_batches=2,
        limit_val_batches=2,
        num_sanity_val_steps=0,
        gradient_clip_val=1.0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
    )
    trainer.fit(module, datamodule=StandInDataModule(module.tokenizer), ckpt_path=ckpt)
    return dict(module.named_parameters()), module.trainable_state_keys()


def test_fsdp_fit_resumes_exactly_from_its_checkpoint(tiny_models, tmp_path):
    """A 2-epoch fit resumed from the FSDP checkpoint of epoch 1 (FSDP restores LoRA + head
    and AdamW's moments itself; the module checks the checkpoint's key list) ends with the
    same trainable weights as an uninterrupted 2-epoch fit. (With Lightning's
    offload_to_cpu=True on the CPU, the saved first moments held the second moments'
    values and the resumed weights differed by 7e-3; BlockFSDPStrategy.optimizer_state.)"""
    folder = tiny_models("gpt2")
    _fsdp_fit(folder, tmp_path / "resumed", epochs=1)
    (checkpoint,) = (tmp_path / "resumed" / "checkpoints").glob("*.ckpt")
    resumed, keys = _fsdp_fit(folder, tmp_path / "resumed", epochs=2, ckpt=checkpoint)
    uninterrupted, _ = _fsdp_fit(folder, tmp_path / "uninterrupted", epochs=2)
    for key in keys:
        assert torch.equal(resumed[key], uninterrupted[key]), key


# ------------------------------------------------------------------ GPU only
@pytest.mark.skipif(
    torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs (bf16 FSDP sharding across GPUs)"
)
def test_fsdp_bf16_on_two_gpus(tiny_models, tmp_path):
    L.seed_everything(3, verbose=False)
    module = _module(tiny_models("llama"))
    trainer = L.Trainer(
        accelerator="gpu",
        devices=2,
        strategy=BlockFSDPStrategy(param_dtype="bfloat16", start_method="fork"),
        precision="32-true",
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=2,
        num_sanity_val_steps=0,
        gradient_clip_val=1.0,
        logger=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
        callbacks=[RecordShards(tmp_path)],
    )
    trainer.fit(module, datamodule=StandInDataModule(module.tokenizer))
    (checkpoint,) = (tmp_path / "checkpoints").glob("*.ckpt")
    saved = torch.load(checkpoint, weights_only=True)["state_dict"]
    assert set(saved) == set(module.trainable_state_keys())
    loaded = load_checkpoint_module(checkpoint).module
    for key, value in saved.items():
        assert torch.equal(dict(loaded.named_parameters())[key].detach(), value), key


# ------------------------------------------------------------------ quantization
def test_quantization_refuses_unknown_value(tiny_models):
    with pytest.raises(BrainmisInputError, match="model.quantization '2bit'"):
        check_quantization("2bit")
    assert quantization_kwargs(None) == {}


@pytest.mark.skipif(HAS_BNB, reason="bitsandbytes is installed here")
def test_quantization_without_bitsandbytes_is_one_line(tiny_models):
    with pytest.raises(BrainmisInputError) as error:
        _module(tiny_models("gpt2"), quantization="4bit")
    message = str(error.value)
    assert "model.quantization '4bit': bitsandbytes is not installed" in message
    assert "\n" not in message


def test_quantization_without_cuda_is_one_line(tiny_models, monkeypatch):
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        return object() if name == "bitsandbytes" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BrainmisInputError) as error:
        _module(tiny_models("gpt2"), quantization="8bit")
    message = str(error.value)
    assert "model.quantization '8bit': needs a CUDA GPU" in message
    assert "\n" not in message


@pytest.mark.skipif(
    not (HAS_BNB and torch.cuda.is_available()), reason="needs bitsandbytes and a CUDA GPU"
)
@pytest.mark.parametrize("quantization", ["4bit", "8bit"])
def test_quantized_base_trains_lora_and_head_in_float32(tiny_models, tmp_path, quantization):
    L.seed_everything(3, verbose=False)
    module = _module(tiny_models("llama"), quantization=quantization)
    trainer = L.Trainer(
        accelerator="gpu",
        devices=1,
        precision="bf16-mixed",
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=2,
        num_sanity_val_steps=0,
        logger=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=StandInDataModule(module.tokenizer))
    trainable = {n: p for n, p in module.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trainable)
    assert all(p.dtype == torch.float32 for p in trainable.values())
    kinds = {type(m).__name__ for m in module.backbone.modules()}
    assert kinds & {"Linear4bit", "Linear8bitLt"}
    (checkpoint,) = (tmp_path / "checkpoints").glob("*.ckpt")
    assert set(torch.load(checkpoint, weights_only=True)["state_dict"]) == set(trainable)
