"""Load a language model and its tokenizer from a local folder.

Nothing is fetched at run time: ``pretrained_path`` must be a folder written by
``save_pretrained`` (a downloaded checkpoint, or one made by ``brainmis make-tiny-model``).
Any standard Hugging Face masked or causal LM loads: the objective comes from the folder's
``config.json`` (``brainmis.models.architecture.objective_of_config``, overridable), and the
model is loaded by ``AutoModelForMaskedLM`` or ``AutoModelForCausalLM`` accordingly. The
family is the config's ``model_type`` (``bert``, ``gpt2``, ``qwen2`` ...); it picks the LoRA
defaults (``brainmis.models.lora``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoTokenizer,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as transformers_logging

from brainmis.errors import BrainmisInputError, missing_model_folder
from brainmis.models.architecture import (
    OBJECTIVE_CHOICES,
    MaskedLMHead,
    masked_lm_head,
    objective_of_config,
)
from brainmis.models.lora import FAMILY_TARGETS
from brainmis.models.quantization import quantization_kwargs

AUTO_CLASSES = {"masked": AutoModelForMaskedLM, "causal": AutoModelForCausalLM}
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class Backbone:
    """A loaded language model (with its LM head), its tokenizer and what kind it is.

    Attributes:
        model: the ``AutoModelForMaskedLM`` / ``AutoModelForCausalLM`` model.
        tokenizer: its fast tokenizer.
        family: the config's ``model_type`` (or the family asked for).
        objective: ``masked`` or ``causal``.
        mlm_head: for a masked LM whose head could be isolated, the head applied to hidden
            states (``brainmis.models.architecture.masked_lm_head``); else None.
    """

    model: nn.Module
    tokenizer: PreTrainedTokenizerBase
    family: str
    objective: str = "causal"
    mlm_head: MaskedLMHead | None = None


def check_local_folder(pretrained_path: str | Path) -> Path:
    """Return the folder as a Path, or raise a one-line error saying what is missing."""
    path = Path(pretrained_path)
    if not path.exists():
        raise missing_model_folder(path)
    if not path.is_dir():
        raise BrainmisInputError(path, "model path is a file; expected a save_pretrained folder")
    if not (path / "config.json").is_file():
        raise BrainmisInputError(path, "no config.json in the model folder (not a HF model folder)")
    return path


def read_model_config(pretrained_path: str | Path) -> dict[str, Any]:
    """The folder's ``config.json`` as a mapping (one-line error if unreadable)."""
    path = check_local_folder(pretrained_path) / "config.json"
    try:
        config = json.loads(path.read_text())
    except (ValueError, OSError) as error:
        raise BrainmisInputError(path, f"unreadable config: {error}") from error
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise BrainmisInputError(path, "unreadable config: no model_type")
    return config


def model_family(pretrained_path: str | Path, family: str | None = None) -> str:
    """``family`` if given (one with LoRA defaults, ``FAMILY_TARGETS``), else the
    ``model_type`` of the folder's ``config.json`` (any)."""
    path = check_local_folder(pretrained_path)
    config = read_model_config(path)
    if family is None:
        return config["model_type"]
    if family not in FAMILY_TARGETS:
        raise BrainmisInputError(
            path,
            f"unknown model family {family!r}; use one of {sorted(FAMILY_TARGETS)}, or none"
            " (the config's model_type)",
        )
    return family


def model_objective(pretrained_path: str | Path, objective: str = "auto") -> str:
    """``masked`` or ``causal`` for the folder (see ``objective_of_config``)."""
    path = check_local_folder(pretrained_path)
    return objective_of_config(read_model_config(path), path, objective)


def load_tokenizer(pretrained_path: str | Path) -> PreTrainedTokenizerBase:
    """The fast tokenizer saved in the folder."""
    path = check_local_folder(pretrained_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, TypeError, ImportError) as error:
        raise BrainmisInputError(
            path, f"cannot load a tokenizer from the folder: {error}"
        ) from error
    if not tokenizer.is_fast:
        raise BrainmisInputError(path, "tokenizer is not a fast tokenizer (tokenizer.json needed)")
    return tokenizer


def untied_missing_parameters(model: torch.nn.Module, missing_keys) -> list[str]:
    """The parameters ``from_pretrained`` found no weights for, less those tied to the input
    embedding (a tied LM decoder is not stored) and buffers (recomputed, not learned)."""
    embedding = model.get_input_embeddings().weight
    parameters = dict(model.named_parameters(remove_duplicate=False))
    return [
        key
        for key in missing_keys
        if key in parameters and parameters[key].data_ptr() != embedding.data_ptr()
    ]


def load_backbone(
    pretrained_path: str | Path,
    family: str | None = None,
    dtype: str = "auto",
    objective: str = "auto",
    quantization: str | None = None,
) -> Backbone:
    """Load model + tokenizer from a local folder and check that they fit together.

    Args:
        pretrained_path: folder with ``config.json``, weights and tokenizer files.
        family: the LoRA family (a key of ``brainmis.models.lora.FAMILY_TARGETS``); None =
            the config's ``model_type``.
        dtype: weights dtype, one of ``auto`` (as saved), ``float32``, ``bfloat16``, ``float16``.
        objective: ``auto`` (from the config), ``masked`` or ``causal``.
        quantization: None, ``4bit`` or ``8bit`` (``brainmis.models.quantization``).
    """
    path = check_local_folder(pretrained_path)
    family = model_family(path, family)
    if objective not in OBJECTIVE_CHOICES:
        raise BrainmisInputError(
            path, f"model.objective {objective!r}: use one of {OBJECTIVE_CHOICES}"
        )
    objective = model_objective(path, objective)
    if dtype not in DTYPES:
        raise BrainmisInputError(path, f"unknown dtype {dtype!r}; use one of {DTYPES}")
    tokenizer = load_tokenizer(path)
    torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
    transformers_logging.disable_progress_bar()  # a per-load "Loading weights" bar is noise
    try:
        model, loading = AUTO_CLASSES[objective].from_pretrained(
            path,
            dtype=torch_dtype,
            local_files_only=True,
            output_loading_info=True,
            **quantization_kwargs(quantization, path),
        )
    except (OSError, ValueError, RuntimeError, KeyError, ImportError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise BrainmisInputError(path, f"cannot load the model weights: {reason}") from error
    missing = untied_missing_parameters(model, loading.get("missing_keys", ()))
    if missing:
        raise BrainmisInputError(
            path,
            f"the weights lack {len(missing)} parameter(s) of the {objective} LM (e.g. "
            f"{missing[0]}): they would start random (an encoder saved without its LM head?); "
            "save the model with its LM head",
        )
    vocab_size = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > vocab_size:
        raise BrainmisInputError(
            path,
            f"tokenizer has {len(tokenizer)} tokens but the model's embedding has {vocab_size}:"
            " tokenizer and model do not belong together",
        )
    mlm_head = None
    if objective == "masked":
        if tokenizer.mask_token_id is None:
            raise BrainmisInputError(path, "masked-LM model but the tokenizer has no mask token")
        mlm_head = masked_lm_head(model)
    return Backbone(
        model=model, tokenizer=tokenizer, family=family, objective=objective, mlm_head=mlm_head
    )
