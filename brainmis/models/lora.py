"""LoRA adapters (peft): which modules get them, and the wrapping.

Targets, first of:

1. ``target_modules`` (``model.lora_target_modules``): module names, matched the peft way
   (a module whose dotted name ends with one of them);
2. the family's entry in ``FAMILY_TARGETS`` (by the config's ``model_type``): the attention
   projections, plus the MLP projections under ``include_mlp``;
3. every linear layer inside the transformer blocks (peft's ``all-linear`` restricted to the
   blocks, so never the LM head or the embeddings): a regular expression over the blocks'
   module names.

``layers_to_transform`` limits any of them to some blocks (found from the module tree,
``brainmis.models.architecture.transformer_blocks``).
"""

from __future__ import annotations

import re
import warnings

from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn
from transformers.pytorch_utils import Conv1D

from brainmis.errors import BrainmisInputError
from brainmis.models.architecture import transformer_blocks

ATTENTION_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj"]
GATED_MLP = ["gate_proj", "up_proj", "down_proj"]
# model_type -> (default targets, MLP targets added by include_mlp). bert and gpt2 already
# adapt their MLP by default ("dense", "c_fc"); DESIGN.md section 1 for bert, gpt2, llama.
FAMILY_TARGETS: dict[str, tuple[list[str], list[str]]] = {
    "bert": (["query", "key", "value", "dense"], []),
    "roberta": (["query", "key", "value", "dense"], []),
    "gpt2": (["c_attn", "c_proj", "c_fc"], []),
    "llama": (ATTENTION_PROJECTIONS, GATED_MLP),
    "mistral": (ATTENTION_PROJECTIONS, GATED_MLP),
    "qwen2": (ATTENTION_PROJECTIONS, GATED_MLP),
    "olmo2": (ATTENTION_PROJECTIONS, GATED_MLP),
    "gemma": (ATTENTION_PROJECTIONS, GATED_MLP),
    "phi3": (["qkv_proj", "o_proj"], ["gate_up_proj", "down_proj"]),
    "gpt_neox": (["query_key_value", "dense"], ["dense_h_to_4h", "dense_4h_to_h"]),
}
LINEAR_TYPES = (nn.Linear, Conv1D)


def block_linear_names(model: nn.Module) -> list[str]:
    """Names, relative to one block, of the linear layers found in the blocks
    (``self_attn.q_proj``, ``mlp.Wi`` ...), sorted; a LoRA-wrapped layer counts as its base."""
    names = set()
    for name, module in transformer_blocks(model).layers.named_modules():
        if "." not in name or ".lora_" in name or ".base_layer" in name:
            continue
        base = getattr(module, "base_layer", module)
        if isinstance(base, LINEAR_TYPES):
            names.add(name.split(".", 1)[1])
    return sorted(names)


def all_linear_in_blocks(model: nn.Module, layers: list[int] | None = None) -> str:
    """A peft target regex: every linear layer of the blocks (of ``layers``, else all)."""
    blocks = transformer_blocks(model)
    index = r"\d+" if layers is None else "|".join(str(int(i)) for i in layers)
    names = "|".join(re.escape(name) for name in block_linear_names(model))
    return rf"{re.escape(blocks.path)}\.({index})\.({names})"


def lora_targets(
    family: str,
    target_modules: list[str] | None = None,
    include_mlp: bool = False,
    model: nn.Module | None = None,
    layers: list[int] | None = None,
) -> list[str] | str:
    """The adapter targets (see the module docstring): a list of names, or for a family
    without a table entry the regex of ``all_linear_in_blocks(model, layers)``."""
    if target_modules:
        return list(target_modules)
    if family in FAMILY_TARGETS:
        default, mlp = FAMILY_TARGETS[family]
        return list(default) + (list(mlp) if include_mlp else [])
    if model is None:
        raise BrainmisInputError(None, f"no default LoRA targets for model family {family!r}")
    return all_linear_in_blocks(model, layers)


def adapted_module_names(model: nn.Module) -> list[str]:
    """Names, relative to one block, of the modules that hold LoRA adapters, sorted
    (``attn.c_attn``, ``self_attn.q_proj`` ...); modules outside the blocks keep their full
    name (BERT's ``cls.predictions.transform.dense``)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    blocks = transformer_blocks(base).path + "."
    found = set()
    for name, module in base.named_modules():
        if hasattr(module, "lora_A") and isinstance(module.lora_A, nn.ModuleDict):
            inside = name.startswith(blocks)
            found.add(name[len(blocks) :].split(".", 1)[1] if inside else name)
    return sorted(found)


def add_lora(
    model: nn.Module,
    family: str,
    r: int = 8,
    alpha: int = 8,
    dropout: float = 0.0,
    target_modules: list[str] | None = None,
    layers_to_transform: list[int] | None = None,
    include_mlp: bool = False,
    gradient_checkpointing: bool = False,
) -> PeftModel:
    """Freeze ``model`` and wrap it with LoRA adapters; only the adapters are trainable.

    Gradient checkpointing (non-reentrant, so it works with frozen inputs and DDP) is
    switched on before wrapping when asked.
    """
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    targets = lora_targets(family, target_modules, include_mlp, model, layers_to_transform)
    blocks = transformer_blocks(model)
    by_list = isinstance(targets, list) and layers_to_transform is not None
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=targets,
        layers_to_transform=layers_to_transform if by_list else None,
        layers_pattern=blocks.attribute if by_list else None,
        bias="none",
        fan_in_fan_out=any(isinstance(m, Conv1D) for m in blocks.layers.modules()),
    )
    try:
        with warnings.catch_warnings():  # peft asks transformers 5 a deprecated question
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
            return get_peft_model(model, config)
    except ValueError as error:  # e.g. a target module name that the model does not have
        raise BrainmisInputError(None, f"cannot add LoRA adapters: {error}") from error
