"""BERT-style token masking for the masked-LM loss."""

from __future__ import annotations

import torch

IGNORE_INDEX = -100  # label of tokens that do not count in the cross-entropy


def mask_tokens(
    input_ids: torch.Tensor,
    maskable: torch.Tensor,
    mask_token_id: int,
    vocab_size: int,
    probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose ``probability`` of the maskable tokens; of those 80% become the mask token,
    10% a random token, 10% stay as they are (Devlin et al. 2019).

    Args:
        input_ids: ``(batch, tokens)`` long.
        maskable: ``(batch, tokens)`` bool, False for special and padding tokens.
        mask_token_id: id of ``[MASK]``.
        vocab_size: random replacements are drawn from ``[0, vocab_size)``.
        probability: share of maskable tokens that are predicted.
        generator: random source (None: torch's default).

    Returns:
        ``(masked_input_ids, labels)``, both ``(batch, tokens)`` long; labels hold the
        original id at chosen positions and ``IGNORE_INDEX`` elsewhere.
    """
    device = input_ids.device

    def uniform() -> torch.Tensor:
        return torch.rand(input_ids.shape, generator=generator, device=device)

    chosen = (uniform() < probability) & maskable
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    draw = uniform()
    to_mask = chosen & (draw < 0.8)
    to_random = chosen & (draw >= 0.8) & (draw < 0.9)
    random_ids = torch.randint(
        vocab_size, input_ids.shape, generator=generator, device=device, dtype=input_ids.dtype
    )
    masked = torch.where(to_mask, torch.full_like(input_ids, mask_token_id), input_ids)
    masked = torch.where(to_random, random_ids, masked)
    return masked, labels
