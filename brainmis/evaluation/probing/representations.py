"""Probe inputs from a language model: pooled hidden states of sentences, tokens and spans.

Every item of a task becomes one feature vector ``(n_vectors * hidden,)``: the vectors of its
inputs, concatenated in order. A sentence input is the masked mean over all its tokens; a
token or span input is the mean over the subword tokens whose character offsets overlap the
span (so a span that starts or ends inside a subword takes that whole subword). Cross pairs
are encoded as one sequence, the two sentences joined by the tokenizer's separator token
(``eos`` for decoders without one). Sequences are right-padded (``pad = eos`` when the
tokenizer has no pad token) with an attention mask. The forward pass is
``brainmis.models.features.layer_hidden_states``, as everywhere else in the project.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from brainmis.evaluation.probing.holmes_reader import Position, ProbeItem, ProbingTask
from brainmis.evaluation.probing.task_types import SPLITS
from brainmis.models.features import layer_hidden_states

CharRange = tuple[int, int] | None  # None = the whole sequence


@dataclass
class TaskFeatures:
    """Features of one task: ``splits[name]`` is float32 ``(n_items, n_features)``."""

    task: ProbingTask
    splits: dict[str, np.ndarray]
    layer: int

    @property
    def n_features(self) -> int:
        return int(self.splits["train"].shape[1])


def pair_joiner(tokenizer) -> str:
    """The text put between the two sentences of a cross pair."""
    token = getattr(tokenizer, "sep_token", None) or getattr(tokenizer, "eos_token", None)
    return f" {token} " if token else " "


@dataclass
class _Requests:
    """Unique sequences to encode and, per sequence, the distinct char ranges to pool."""

    sequences: list[str] = field(default_factory=list)
    ranges: list[list[CharRange]] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)

    def add(self, text: str, char_range: CharRange) -> tuple[int, int]:
        seq = self.index.setdefault(text, len(self.sequences))
        if seq == len(self.sequences):
            self.sequences.append(text)
            self.ranges.append([])
        if char_range not in self.ranges[seq]:
            self.ranges[seq].append(char_range)
        return seq, self.ranges[seq].index(char_range)


def _item_requests(item: ProbeItem, task: ProbingTask, joiner: str, requests: _Requests) -> list:
    """Register what an item needs; return one (sequence, range) reference per vector."""
    kind = task.task_type
    if not kind.reads_positions:
        if kind.is_cross:
            return [requests.add(joiner.join(item.inputs), None)]
        return [requests.add(text, None) for text in item.inputs]
    refs = []
    for position in item.inputs:
        assert isinstance(position, Position)
        if kind.is_cross:
            offset = 0 if position.context_index == 0 else len(item.context[0]) + len(joiner)
            text = joiner.join(item.context)
        else:
            offset, text = 0, item.context[position.context_index]
        span = (position.char_start + offset, position.char_end + offset)
        refs.append(requests.add(text, span))
    return refs


def _token_weights(
    offsets: list[tuple[int, int]], n_tokens: int, ranges: list[CharRange], length: int
) -> torch.Tensor:
    """``(len(ranges), length)`` mean-pooling weights over the tokens of each range."""
    weights = torch.zeros(len(ranges), length)
    for row, char_range in enumerate(ranges):
        if char_range is None:
            weights[row, :n_tokens] = 1.0
        else:
            start, end = char_range
            hits = [t for t, (s, e) in enumerate(offsets) if e > s and s < end and e > start]
            if not hits:  # span cut off by truncation: fall back to the whole sequence
                hits = list(range(n_tokens))
            weights[row, hits] = 1.0
    return weights / weights.sum(dim=1, keepdim=True).clamp(min=1.0)


def _max_length(model: nn.Module, tokenizer) -> int:
    config = getattr(model, "config", None)
    limits = [getattr(tokenizer, "model_max_length", 10**9) or 10**9]
    for key in ("max_position_embeddings", "n_positions"):
        value = getattr(config, key, None)
        if isinstance(value, int):
            limits.append(value)
    return int(min(limits))


def _pad_id(tokenizer) -> int:
    for name in ("pad_token_id", "eos_token_id", "sep_token_id", "unk_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    return 0


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@torch.no_grad()
def _encode_requests(
    model: nn.Module, tokenizer, requests: _Requests, layer: int, batch_tokens: int
) -> list[torch.Tensor]:
    """Per sequence, ``(n_ranges, hidden)`` float32 pooled vectors on the CPU."""
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError("probing needs a fast tokenizer (offset mapping)")
    encoded = tokenizer(
        requests.sequences,
        return_offsets_mapping=True,
        truncation=True,
        max_length=_max_length(model, tokenizer),
    )
    ids_all, offsets_all = encoded["input_ids"], encoded["offset_mapping"]
    order = sorted(range(len(ids_all)), key=lambda i: len(ids_all[i]))
    device, pad = _model_device(model), _pad_id(tokenizer)
    out: list[torch.Tensor] = [torch.empty(0)] * len(ids_all)
    start = 0
    while start < len(order):
        stop = start + 1  # ascending lengths: the last sequence added is the longest
        while stop < len(order) and (stop + 1 - start) * len(ids_all[order[stop]]) <= batch_tokens:
            stop += 1
        batch = order[start:stop]
        length = max(len(ids_all[i]) for i in batch)
        input_ids = torch.full((len(batch), length), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), length), dtype=torch.long)
        for row, i in enumerate(batch):
            input_ids[row, : len(ids_all[i])] = torch.tensor(ids_all[i])
            mask[row, : len(ids_all[i])] = 1
        hidden = layer_hidden_states(model, input_ids.to(device), mask.to(device), layer)
        hidden = hidden.float()
        for row, i in enumerate(batch):
            weights = _token_weights(offsets_all[i], len(ids_all[i]), requests.ranges[i], length)
            out[i] = (weights.to(hidden.device) @ hidden[row]).cpu()
        start = stop
    return out


def encode_task(
    model: nn.Module,
    tokenizer,
    task: ProbingTask,
    layer: int = -1,
    batch_tokens: int = 8192,
) -> TaskFeatures:
    """Features of every split of ``task`` (see module docstring).

    ``layer`` indexes ``hidden_states`` (0 = embeddings, -1 = last block). The model is put in
    eval mode for the pass and its previous mode restored; no gradients are kept.
    """
    return encode_tasks(model, tokenizer, [task], layer, batch_tokens)[0]


def encode_tasks(
    model: nn.Module,
    tokenizer,
    tasks: list[ProbingTask],
    layer: int = -1,
    batch_tokens: int = 8192,
) -> list[TaskFeatures]:
    """``encode_task`` for several tasks in one pass (shared sequences are encoded once)."""
    joiner = pair_joiner(tokenizer)
    requests = _Requests()
    refs = [[_item_requests(item, task, joiner, requests) for item in task.items] for task in tasks]
    was_training = model.training
    model.eval()
    try:
        vectors = _encode_requests(model, tokenizer, requests, layer, batch_tokens)
    finally:
        model.train(was_training)
    hidden = int(vectors[0].shape[1]) if vectors else 0
    results = []
    for task, task_refs in zip(tasks, refs, strict=True):
        n_vectors = max(len(r) for r in task_refs)
        rows = np.zeros((len(task.items), n_vectors * hidden), dtype=np.float32)
        for row, item_refs in enumerate(task_refs):
            for slot, (seq, rng) in enumerate(item_refs):
                rows[row, slot * hidden : (slot + 1) * hidden] = vectors[seq][rng].numpy()
        splits = {
            name: rows[[i for i, item in enumerate(task.items) if item.split == name]]
            for name in SPLITS
        }
        results.append(TaskFeatures(task=task, splits=splits, layer=layer))
    return results


def model_state_key(model: nn.Module) -> str:
    """A digest of the model's current weights: its trainable parameters (LoRA, head) when it
    has any, otherwise all parameters; plus the class and parameter shapes."""
    digest = hashlib.sha1(type(model).__name__.encode())
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not params:
        params = list(model.named_parameters())
    for name, parameter in params:
        digest.update(name.encode())
        digest.update(str(tuple(parameter.shape)).encode())
        digest.update(parameter.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _task_key(state: str, task: ProbingTask, layer: int) -> tuple:
    items = hashlib.sha1("\x1f".join(i.item_id + i.split for i in task.items).encode()).hexdigest()
    return (state, task.name, task.task_type.value, items, layer)


@dataclass
class RepresentationCache:
    """Features per (model state, task, item count, layer), reused while the model is
    unchanged. ``max_entries`` bounds memory (oldest entries are dropped first)."""

    max_entries: int = 256
    _store: dict[tuple, TaskFeatures] = field(default_factory=dict, repr=False)

    def features(
        self,
        model: nn.Module,
        tokenizer,
        tasks: list[ProbingTask],
        layer: int = -1,
        batch_tokens: int = 8192,
    ) -> list[TaskFeatures]:
        state = model_state_key(model)
        keys = [_task_key(state, t, layer) for t in tasks]
        missing = [t for t, k in zip(tasks, keys, strict=True) if k not in self._store]
        if missing:
            encoded = encode_tasks(model, tokenizer, missing, layer, batch_tokens)
            for task_features in encoded:
                self._store[_task_key(state, task_features.task, layer)] = task_features
            while len(self._store) > self.max_entries:
                self._store.pop(next(iter(self._store)))
        return [self._store[k] for k in keys]

    def __len__(self) -> int:
        return len(self._store)
