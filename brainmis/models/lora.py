"""LoRA adapters (peft) with per-family default target modules."""

from __future__ import annotations

import warnings

from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn

from brainmis.errors import BrainmisInputError

# Module names that receive adapters by default (DESIGN.md section 1).
DEFAULT_TARGETS: dict[str, list[str]] = {
    "bert": ["query", "key", "value", "dense"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
}
LLAMA_MLP_TARGETS = ["gate_proj", "up_proj", "down_proj"]
# peft's name of the list that holds the transformer blocks, per family.
LAYERS_PATTERN = {"bert": "layer", "gpt2": "h", "llama": "layers"}
# Families whose linear layers store weights as (in, out) (GPT-2's Conv1D).
FAN_IN_FAN_OUT = {"gpt2"}


def lora_targets(
    family: str, target_modules: list[str] | None = None, include_mlp: bool = False
) -> list[str]:
    """The adapter targets: ``target_modules`` if given, else the family's defaults
    (plus the MLP projections for llama when ``include_mlp``)."""
    if target_modules:
        return list(target_modules)
    if family not in DEFAULT_TARGETS:
        raise BrainmisInputError(None, f"no default LoRA targets for model family {family!r}")
    targets = list(DEFAULT_TARGETS[family])
    if include_mlp and family == "llama":
        targets += LLAMA_MLP_TARGETS
    return targets


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
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=lora_targets(family, target_modules, include_mlp),
        layers_to_transform=layers_to_transform,
        layers_pattern=LAYERS_PATTERN.get(family) if layers_to_transform is not None else None,
        bias="none",
        fan_in_fan_out=family in FAN_IN_FAN_OUT,
    )
    try:
        with warnings.catch_warnings():  # peft asks transformers 5 a deprecated question
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
            return get_peft_model(model, config)
    except ValueError as error:  # e.g. a target module name that the model does not have
        raise BrainmisInputError(None, f"cannot add LoRA adapters: {error}") from error
