"""What kind of language model a Hugging Face checkpoint is, and where its parts sit.

Nothing here is specific to a family; every rule reads the config or the module tree:

- the objective (``masked`` or ``causal``), from the config (``objective_of_config``);
- the transformer blocks: the ``nn.ModuleList`` with ``num_hidden_layers`` entries
  (``transformer_blocks``);
- the masked-LM head as the modules after the body, checked once against the model's own
  logits (``masked_lm_head``), so that a masked-LM loss can run the head on the masked
  positions only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_MASKED_LM_MAPPING_NAMES,
)

from brainmis.errors import BrainmisInputError

OBJECTIVES = ("masked", "causal")
OBJECTIVE_CHOICES = ("auto", *OBJECTIVES)
# class-name endings of ``config.json`` ``architectures`` that name the objective
MASKED_ARCHITECTURE_SUFFIXES = ("ForMaskedLM",)
CAUSAL_ARCHITECTURE_SUFFIXES = ("ForCausalLM", "LMHeadModel")


def lm_classes_of(model_type: str) -> tuple[str, ...]:
    """The objectives transformers has an LM class for with this ``model_type``."""
    found = []
    if model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        found.append("masked")
    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        found.append("causal")
    return tuple(found)


def objective_of_config(
    config: dict[str, Any], folder: str | Path | None = None, objective: str = "auto"
) -> str:
    """``masked`` or ``causal`` for a ``config.json`` mapping.

    ``objective`` other than ``auto`` is taken as it is (if transformers has such an LM class
    for the model type). Otherwise, first of: an ``architectures`` entry ending in
    ``ForMaskedLM`` (masked) or ``ForCausalLM`` / ``LMHeadModel`` (causal); ``is_decoder:
    true`` (causal); the only LM class transformers has for ``model_type``; masked for an
    encoder type that has both (BERT, RoBERTa: their causal class needs ``is_decoder``).
    A folder that is neither a masked nor a causal LM is a one-line error naming it.
    """
    if objective not in OBJECTIVE_CHOICES:
        raise BrainmisInputError(
            folder, f"model.objective {objective!r}: use one of {OBJECTIVE_CHOICES}"
        )
    model_type = config.get("model_type")
    if config.get("is_encoder_decoder") is True:
        raise BrainmisInputError(
            folder,
            f"model_type {model_type!r} is an encoder-decoder model: brainmis trains masked or "
            "causal language models (one stack of blocks)",
        )
    available = lm_classes_of(model_type) if isinstance(model_type, str) else ()
    if not available:
        raise BrainmisInputError(
            folder,
            f"model_type {model_type!r} is neither a masked nor a causal language model in "
            "transformers (no AutoModelForMaskedLM / AutoModelForCausalLM class)",
        )
    if objective != "auto":
        if objective not in available:
            raise BrainmisInputError(
                folder,
                f"model.objective {objective}: transformers has no {objective}-LM class for "
                f"model_type {model_type!r} (it has: {', '.join(available)})",
            )
        return _checked_causal(config, folder, objective, available)
    for name in config.get("architectures") or ():
        if str(name).endswith(MASKED_ARCHITECTURE_SUFFIXES) and "masked" in available:
            return "masked"
        if str(name).endswith(CAUSAL_ARCHITECTURE_SUFFIXES) and "causal" in available:
            return _checked_causal(config, folder, "causal", available)
    if config.get("is_decoder") is True and "causal" in available:
        return "causal"
    return available[0]  # "masked" first where both exist


def _checked_causal(
    config: dict[str, Any], folder: str | Path | None, objective: str, available: tuple[str, ...]
) -> str:
    """Refuse a causal objective on an encoder type (one with a masked-LM class too) whose
    config does not set ``is_decoder: true``: its causal class then attends both ways, and
    the next-token loss would be trained on a model that sees the next token."""
    if objective == "causal" and "masked" in available and config.get("is_decoder") is not True:
        raise BrainmisInputError(
            folder,
            f"model.objective causal: a {config.get('model_type')!r} model attends both ways "
            "unless its config.json sets is_decoder: true; use model.objective masked",
        )
    return objective


@dataclass(frozen=True)
class Blocks:
    """The transformer blocks of a model.

    Attributes:
        path: dotted module name of the ``nn.ModuleList`` (``"model.layers"``,
            ``"transformer.h"``, ``"bert.encoder.layer"``), relative to the model given.
        layers: the list itself, ``num_hidden_layers`` entries.
    """

    path: str
    layers: nn.ModuleList

    @property
    def attribute(self) -> str:
        """The list's own attribute name (peft's ``layers_pattern``): ``layers``, ``h`` ..."""
        return self.path.rsplit(".", 1)[-1]


def transformer_blocks(model: nn.Module) -> Blocks:
    """The outermost ``nn.ModuleList`` with ``config.num_hidden_layers`` entries of one class.

    Raises ``BrainmisInputError`` when the model has no such list.
    """
    n_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for name, module in model.named_modules():
        if (
            isinstance(module, nn.ModuleList)
            and len(module) == n_layers
            and len({type(block) for block in module}) == 1
        ):
            return Blocks(path=name, layers=module)
    raise BrainmisInputError(
        getattr(getattr(model, "config", None), "_name_or_path", None) or None,
        f"cannot find the transformer blocks: no module list with num_hidden_layers={n_layers}"
        f" entries in {type(model).__name__}",
    )


@dataclass(frozen=True)
class MaskedLMHead:
    """The masked-LM head as the LM's direct children after its body, applied in order.

    Holds names, not modules: it is applied to whichever modules the LM has at call time (peft
    may have replaced one by a LoRA layer).
    """

    names: tuple[str, ...]

    def __call__(self, model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        """Logits ``(..., vocab)`` of ``hidden`` ``(..., hidden_size)``, the body's last
        hidden state; ``model`` is the LM (peft-unwrapped)."""
        for name in self.names:
            hidden = getattr(model, name)(hidden)
        return hidden


def masked_lm_head(model: nn.Module) -> MaskedLMHead | None:
    """The head of a masked LM (``model`` as loaded by ``AutoModelForMaskedLM``), or None.

    Candidate: the LM's direct children other than the body (``base_model_prefix``) and loss
    modules, in registration order (BERT ``cls``; RoBERTa ``lm_head``; ModernBERT ``head``,
    ``decoder``). It is kept only if it reproduces the model's own logits on a short input,
    so a head that needs more than the hidden states (a second argument, a skipped function)
    gives None, and the caller runs the whole model instead.
    """
    prefix = getattr(model, "base_model_prefix", "")
    names = tuple(
        name
        for name, child in model.named_children()
        if name != prefix and not isinstance(child, nn.modules.loss._Loss)
    )
    if not names or not hasattr(model, prefix):
        return None
    head = MaskedLMHead(names)
    vocab = model.get_input_embeddings().num_embeddings
    input_ids = torch.arange(min(vocab, 8), device=model.device).unsqueeze(0)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            expected = model(input_ids=input_ids).logits
            hidden = getattr(model, prefix)(input_ids=input_ids).last_hidden_state
            found = head(model, hidden)
        same = found.shape == expected.shape and torch.allclose(
            found.float(), expected.float(), atol=1e-4, rtol=1e-3
        )
    except (TypeError, RuntimeError, AttributeError, ValueError):
        same = False
    finally:
        model.train(was_training)
    return head if same else None
