"""Window features of a whole dataloader: the one extraction loop every evaluation uses.

Batched, without gradients, in eval mode (each submodule's previous mode is restored after),
under bf16 autocast on CUDA. The features go through ``brainmis.models.features`` exactly as
in training, so evaluation reads what the brain head reads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from brainmis.models.features import pool_groups, transformer_body, window_features


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


@contextlib.contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule in eval mode; restore each one's own mode afterwards."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes.items():
            module.training = training


def autocast_for(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA, nothing elsewhere."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def extract_window_features(
    model: nn.Module,
    dataloader: Iterable[dict[str, torch.Tensor]],
    context_trs: int,
    layer: int = -1,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Features of every window a dataloader yields.

    Args:
        model: a language model (plain, or peft-wrapped) already on ``device``.
        dataloader: yields batch dicts with ``input_ids``, ``attention_mask``, ``group_ids``
            ``(B, L)`` and ``sample_ids`` ``(B,)`` (docs/architecture.md, "Batches").
        context_trs: TR groups per window.
        layer: index into the model's ``hidden_states`` (0 embeddings, -1 last block).
        device: where batches go (default: the model's device).

    Returns:
        ``features`` ``(N, context_trs * hidden)`` float32 and ``sample_ids`` ``(N,)`` int64,
        in the order the dataloader yields them.
    """
    device = model_device(model) if device is None else torch.device(device)
    chunks: list[np.ndarray] = []
    ids: list[np.ndarray] = []
    with evaluation_mode(model), torch.no_grad(), autocast_for(device):
        for batch in dataloader:
            features = window_features(
                model,
                batch["input_ids"].to(device),
                batch["attention_mask"].to(device),
                batch["group_ids"].to(device),
                context_trs,
                layer,
            )
            chunks.append(features.float().cpu().numpy())
            ids.append(np.asarray(batch["sample_ids"].cpu().numpy(), dtype=np.int64))
    if not chunks:
        raise ValueError("the dataloader yielded no batches")
    return np.concatenate(chunks), np.concatenate(ids)


def hidden_state_count(model: nn.Module) -> int:
    """How many hidden states a forward returns: embeddings (index 0) plus one per block,
    from the model's config (``num_hidden_layers``)."""
    config = getattr(transformer_body(model), "config", None) or getattr(model, "config", None)
    blocks = getattr(config, "num_hidden_layers", None)
    if not isinstance(blocks, int):
        raise ValueError("the model's config gives no num_hidden_layers")
    return blocks + 1


def extract_layer_window_features(
    model: nn.Module,
    dataloader: Iterable[dict[str, torch.Tensor]],
    context_trs: int,
    layers: Sequence[int],
    device: str | torch.device | None = None,
) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Window features of several layers from one forward per batch (all hidden states).

    Args:
        layers: indices into ``hidden_states`` (0 embeddings; negative counts from the end).
        The rest as :func:`extract_window_features`.

    Returns:
        layer (as given) -> ``(N, context_trs * hidden)`` float32, and ``sample_ids``
        ``(N,)`` int64 in the order the dataloader yields them.
    """
    device = model_device(model) if device is None else torch.device(device)
    layers = list(dict.fromkeys(int(layer) for layer in layers))
    if not layers:
        raise ValueError("no layers asked for")
    chunks: dict[int, list[np.ndarray]] = {layer: [] for layer in layers}
    ids: list[np.ndarray] = []
    body = transformer_body(model)
    with evaluation_mode(model), torch.no_grad(), autocast_for(device):
        for batch in dataloader:
            group_ids = batch["group_ids"].to(device)
            hidden_states = body(
                input_ids=batch["input_ids"].to(device),
                attention_mask=batch["attention_mask"].to(device),
                output_hidden_states=True,
            ).hidden_states
            for layer in layers:
                pooled = pool_groups(hidden_states[layer], group_ids, context_trs)
                chunks[layer].append(pooled.float().cpu().numpy())
            ids.append(np.asarray(batch["sample_ids"].cpu().numpy(), dtype=np.int64))
    if not ids:
        raise ValueError("the dataloader yielded no batches")
    return {layer: np.concatenate(parts) for layer, parts in chunks.items()}, np.concatenate(ids)


def features_in_table_order(
    features: np.ndarray, sample_ids: np.ndarray, n_windows: int
) -> np.ndarray:
    """Rows of ``features`` ``(N, F)`` placed at their ``sample_ids``: ``(n_windows, F)``.

    Raises ValueError unless every window index ``0..n_windows-1`` appears exactly once.
    """
    if len(sample_ids) != n_windows or not np.array_equal(
        np.sort(sample_ids), np.arange(n_windows)
    ):
        raise ValueError(f"sample ids do not cover the {n_windows} windows exactly once")
    ordered = np.empty((n_windows, features.shape[1]), dtype=features.dtype)
    ordered[sample_ids] = features
    return ordered
