"""Optional 4-/8-bit loading of the frozen base (``model.quantization``), for LoRA on one GPU.

``quantization_kwargs(quantization, path)`` is what ``load_backbone`` adds to
``from_pretrained``: nothing for None, else a transformers ``BitsAndBytesConfig`` and a
device map onto this process's GPU (bitsandbytes places the quantized weights at load time).

- ``4bit``: NF4 weights with double quantization, bf16 compute (QLoRA's recipe);
- ``8bit``: LLM.int8() weights.

LoRA's adapters (peft creates them in float32 on a quantized layer) and the brain head stay
float32; the LM head and embeddings are not quantized (transformers keeps the output layer in
full precision). Without bitsandbytes, or without a CUDA GPU, the option is refused with a
one-line ``BrainmisInputError`` before anything is loaded. Not combined with FSDP
(``brainmis.models.sharding`` refuses a quantized model).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import torch

from brainmis.errors import BrainmisInputError

QUANTIZATIONS = (None, "4bit", "8bit")


def check_quantization(quantization: str | None, path: str | Path | None = None) -> None:
    """Refuse an unknown value, a missing bitsandbytes or a machine without a CUDA GPU."""
    if quantization is None:
        return
    if quantization not in QUANTIZATIONS:
        raise BrainmisInputError(
            path, f"model.quantization {quantization!r}: use null, '4bit' or '8bit'"
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise BrainmisInputError(
            path, f"model.quantization {quantization!r}: bitsandbytes is not installed"
        )
    if not torch.cuda.is_available():
        raise BrainmisInputError(path, f"model.quantization {quantization!r}: needs a CUDA GPU")


def quantization_kwargs(quantization: str | None, path: str | Path | None = None) -> dict[str, Any]:
    """Keyword arguments for ``from_pretrained``: ``{}`` for None, else the
    ``BitsAndBytesConfig`` and the device map onto ``cuda:LOCAL_RANK``."""
    check_quantization(quantization, path)
    if quantization is None:
        return {}
    from transformers import BitsAndBytesConfig

    if quantization == "4bit":
        config = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
    else:
        config = BitsAndBytesConfig(load_in_8bit=True)
    device = int(os.environ.get("LOCAL_RANK", "0"))
    return {"quantization_config": config, "device_map": {"": device}}


def is_quantized(model: torch.nn.Module) -> bool:
    """True when any submodule of ``model`` was loaded with a quantization config."""
    return any(getattr(module, "hf_quantizer", None) is not None for module in model.modules())
