"""Load a language model and its tokenizer from a local folder.

Nothing is fetched at run time: ``pretrained_path`` must be a folder written by
``save_pretrained`` (a downloaded checkpoint, or one made by ``brainmis make-tiny-model``).
BERT-style models load as masked LMs, GPT-2 and Llama as causal LMs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

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

FAMILIES = ("bert", "gpt2", "llama")
MASKED_LM_FAMILIES = ("bert",)
# config.json ``model_type`` -> family; close relatives train the same way.
MODEL_TYPE_TO_FAMILY = {
    "bert": "bert",
    "roberta": "bert",
    "gpt2": "gpt2",
    "llama": "llama",
}
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class Backbone:
    """A loaded language model (with its LM head), its tokenizer and its family."""

    model: nn.Module
    tokenizer: PreTrainedTokenizerBase
    family: str


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


def model_family(pretrained_path: str | Path, family: str | None = None) -> str:
    """The family (``bert|gpt2|llama``) named by ``family`` or read from ``config.json``."""
    path = check_local_folder(pretrained_path)
    if family is not None:
        if family not in FAMILIES:
            raise BrainmisInputError(
                path, f"unknown model family {family!r}; use one of {FAMILIES}"
            )
        return family
    try:
        model_type = json.loads((path / "config.json").read_text())["model_type"]
    except (ValueError, KeyError) as error:
        raise BrainmisInputError(path / "config.json", f"unreadable config: {error}") from error
    if model_type not in MODEL_TYPE_TO_FAMILY:
        raise BrainmisInputError(
            path / "config.json",
            f"model_type {model_type!r} is not supported; supported: {sorted(MODEL_TYPE_TO_FAMILY)}",
        )
    return MODEL_TYPE_TO_FAMILY[model_type]


def load_tokenizer(pretrained_path: str | Path) -> PreTrainedTokenizerBase:
    """The fast tokenizer saved in the folder."""
    path = check_local_folder(pretrained_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as error:
        raise BrainmisInputError(
            path, f"cannot load a tokenizer from the folder: {error}"
        ) from error
    if not tokenizer.is_fast:
        raise BrainmisInputError(path, "tokenizer is not a fast tokenizer (tokenizer.json needed)")
    return tokenizer


def load_backbone(
    pretrained_path: str | Path, family: str | None = None, dtype: str = "auto"
) -> Backbone:
    """Load model + tokenizer from a local folder and check that they fit together.

    Args:
        pretrained_path: folder with ``config.json``, weights and tokenizer files.
        family: ``bert|gpt2|llama``; None reads it from ``config.json``.
        dtype: weights dtype, one of ``auto`` (as saved), ``float32``, ``bfloat16``, ``float16``.
    """
    path = check_local_folder(pretrained_path)
    family = model_family(path, family)
    if dtype not in DTYPES:
        raise BrainmisInputError(path, f"unknown dtype {dtype!r}; use one of {DTYPES}")
    tokenizer = load_tokenizer(path)
    auto_class = AutoModelForMaskedLM if family in MASKED_LM_FAMILIES else AutoModelForCausalLM
    torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
    transformers_logging.disable_progress_bar()  # a per-load "Loading weights" bar is noise
    try:
        model = auto_class.from_pretrained(path, dtype=torch_dtype, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as error:
        raise BrainmisInputError(path, f"cannot load the model weights: {error}") from error
    vocab_size = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > vocab_size:
        raise BrainmisInputError(
            path,
            f"tokenizer has {len(tokenizer)} tokens but the model's embedding has {vocab_size}:"
            " tokenizer and model do not belong together",
        )
    if family in MASKED_LM_FAMILIES and tokenizer.mask_token_id is None:
        raise BrainmisInputError(path, "masked-LM model but the tokenizer has no mask token")
    return Backbone(model=model, tokenizer=tokenizer, family=family)
