"""The one way a model's TR-window features are computed, in training and in evaluation.

A window holds the words of ``context_trs`` consecutive TRs. Each token carries the index
of its TR group (0 = oldest, ``context_trs - 1`` = the target TR; -1 = special or padding
token). A window's features are the chosen layer's hidden states, mean-pooled per group and
concatenated in group order: ``(batch, context_trs * hidden)``. An empty group gives zeros.
"""

from __future__ import annotations

import torch
from torch import nn


def transformer_body(model: nn.Module) -> nn.Module:
    """The transformer without its LM head, with LoRA layers (if any) still in place.

    Accepts a plain transformers model with a head (``GPT2LMHeadModel``...), a bare body
    (``GPT2Model``...), or a peft ``PeftModel`` around either.
    """
    if hasattr(model, "get_base_model"):  # peft wrapper: LoRA is injected in place
        model = model.get_base_model()
    body = getattr(model, "base_model", model)
    return body if isinstance(body, nn.Module) else model


def layer_hidden_states(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    layer: int = -1,
) -> torch.Tensor:
    """Hidden states ``(batch, tokens, hidden)`` of ``layer`` (index into ``hidden_states``,
    where 0 is the embeddings and -1 the last block) of the model's body."""
    out = transformer_body(model)(
        input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True
    )
    return out.hidden_states[layer]


def pool_groups(hidden: torch.Tensor, group_ids: torch.Tensor, context_trs: int) -> torch.Tensor:
    """Mean-pool tokens per TR group and concatenate the groups.

    Args:
        hidden: ``(batch, tokens, hidden)`` hidden states.
        group_ids: ``(batch, tokens)`` long, group of each token in ``[0, context_trs)`` or -1.
        context_trs: number of groups per window.

    Returns:
        ``(batch, context_trs * hidden)`` features, in ``hidden``'s dtype; empty groups are 0.
    """
    valid = group_ids >= 0
    one_hot = torch.nn.functional.one_hot(group_ids.clamp(min=0), context_trs)
    one_hot = (one_hot * valid.unsqueeze(-1)).to(hidden.dtype)  # (B, L, C)
    sums = one_hot.transpose(1, 2) @ hidden  # (B, C, H)
    counts = one_hot.sum(dim=1).clamp(min=1).unsqueeze(-1)  # (B, C, 1)
    return (sums / counts).flatten(1)


def window_features(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    group_ids: torch.Tensor,
    context_trs: int,
    layer: int = -1,
) -> torch.Tensor:
    """``(batch, context_trs * hidden)`` window features of a batch (see module docstring)."""
    hidden = layer_hidden_states(model, input_ids, attention_mask, layer)
    return pool_groups(hidden, group_ids, context_trs)
