"""Tokenizing windows and collating them into batches.

A window's text is its words joined by single spaces, group after group (empty groups add
nothing). The fast tokenizer's offset mapping gives each token's character span; a token
belongs to the group of the first word character in its span (a leading space that
byte-level BPE folds into a token is skipped). Special tokens get group -1. Decoder
tokenizers that add no special tokens get their BOS (or, lacking one, EOS) token prepended,
so that no sequence is empty, not even a window of silent TRs. Over ``max_length`` tokens,
the oldest words are dropped (truncation from the left), keeping the target TR's words and
the tokenizer's special tokens.

Batches are padded on the right to the longest sequence of the batch with the tokenizer's
pad token (its EOS token if it has none); padding has attention 0 and group -1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from brainmis.errors import BrainmisInputError

TOKENIZE_CHUNK = 512  # windows per call of the tokenizer


@dataclass
class TokenizedWindow:
    """One window's tokens.

    Attributes:
        input_ids: ``(L,)`` int64 token ids, ``1 <= L <= max_length``.
        group_ids: ``(L,)`` int64 TR group of each token, 0 (oldest) .. ``context_trs - 1``
            (target TR), -1 for special tokens.
    """

    input_ids: np.ndarray
    group_ids: np.ndarray


def window_text(groups: Sequence[Sequence[str]]) -> tuple[str, np.ndarray]:
    """The text of a window and the group of each of its characters.

    Args:
        groups: the window's word groups, oldest first.

    Returns:
        The words joined by single spaces, and ``(len(text),)`` int64 group index of every
        character (-1 on the spaces between words). Words are stripped; empty words dropped.
    """
    pieces: list[str] = []
    char_groups: list[np.ndarray] = []
    for group_index, group in enumerate(groups):
        for word in group:
            word = str(word).strip()
            if not word:
                continue
            if pieces:
                pieces.append(" ")
                char_groups.append(np.full(1, -1, dtype=np.int64))
            pieces.append(word)
            char_groups.append(np.full(len(word), group_index, dtype=np.int64))
    if not pieces:
        return "", np.zeros(0, dtype=np.int64)
    return "".join(pieces), np.concatenate(char_groups)


def special_token_to_prepend(tokenizer: Any) -> int | None:
    """The id to prepend to every window: BOS (else EOS) for a tokenizer that adds no special
    tokens of its own, None for one that does (BERT's [CLS] ... [SEP], Llama's BOS)."""
    if tokenizer.num_special_tokens_to_add(pair=False) > 0:
        return None
    for token_id in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    raise BrainmisInputError(
        getattr(tokenizer, "name_or_path", None),
        "tokenizer adds no special tokens and has neither a BOS nor an EOS token, so an "
        "empty window would have no tokens; add a bos_token to the tokenizer",
    )


def pad_token_id(tokenizer: Any) -> int:
    """The id batches are padded with: the pad token, else the EOS token."""
    for token_id in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    raise BrainmisInputError(
        getattr(tokenizer, "name_or_path", None),
        "tokenizer has neither a pad nor an EOS token to pad batches with",
    )


def check_tokenizer(tokenizer: Any, max_length: int) -> None:
    """Raise ``BrainmisInputError`` unless ``tokenizer`` can tokenize and pad windows of at
    most ``max_length`` tokens: fast, a BOS/EOS where one must be prepended, a pad (or EOS)
    token, and room for at least one word token beside the special tokens."""
    source = getattr(tokenizer, "name_or_path", None)
    if not getattr(tokenizer, "is_fast", False):
        raise BrainmisInputError(
            source, "a fast tokenizer (tokenizer.json) is needed for offset mappings"
        )
    prepend = special_token_to_prepend(tokenizer)
    pad_token_id(tokenizer)
    n_special = tokenizer.num_special_tokens_to_add(pair=False) + (prepend is not None)
    if max_length < n_special + 1:
        raise BrainmisInputError(
            source, f"max_length {max_length} leaves no room for words next to special tokens"
        )


def _groups_of_tokens(offsets: Sequence[tuple[int, int]], char_groups: np.ndarray) -> np.ndarray:
    groups = np.full(len(offsets), -1, dtype=np.int64)
    for index, (start, end) in enumerate(offsets):
        if end > start:
            inside = char_groups[start:end]
            inside = inside[inside >= 0]
            if len(inside):
                groups[index] = inside[0]
    return groups


def _truncate_left(
    ids: np.ndarray, groups: np.ndarray, special: np.ndarray, max_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Drop the oldest non-special tokens until ``max_length`` tokens remain, keeping the
    leading and trailing runs of special tokens."""
    if len(ids) <= max_length:
        return ids, groups
    content = np.flatnonzero(~special)
    first, last = content[0], content[-1]
    n_keep = max_length - first - (len(ids) - 1 - last)
    if n_keep < 1:
        raise ValueError(f"max_length {max_length} leaves no room for words")
    keep = np.concatenate(
        [np.arange(first), np.arange(last + 1 - n_keep, last + 1), np.arange(last + 1, len(ids))]
    )
    return ids[keep], groups[keep]


def tokenize_windows(
    tokenizer: Any, windows: Sequence[Sequence[Sequence[str]]], max_length: int
) -> list[TokenizedWindow]:
    """Tokenize windows (see module docstring).

    Args:
        tokenizer: a fast Hugging Face tokenizer (offset mappings are needed).
        windows: each a sequence of word groups, oldest first.
        max_length: the most tokens a window keeps, special tokens included.

    Returns:
        One ``TokenizedWindow`` per window.
    """
    check_tokenizer(tokenizer, max_length)
    prepend = special_token_to_prepend(tokenizer)
    out: list[TokenizedWindow] = []
    for chunk_start in range(0, len(windows), TOKENIZE_CHUNK):
        chunk = [window_text(w) for w in windows[chunk_start : chunk_start + TOKENIZE_CHUNK]]
        encoded = tokenizer(
            [text for text, _ in chunk],
            add_special_tokens=True,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            truncation=False,
            verbose=False,
        )
        for index, (_, char_groups) in enumerate(chunk):
            ids = np.asarray(encoded["input_ids"][index], dtype=np.int64)
            special = np.asarray(encoded["special_tokens_mask"][index], dtype=bool)
            groups = _groups_of_tokens(encoded["offset_mapping"][index], char_groups)
            groups[special] = -1
            if prepend is not None:
                ids = np.concatenate([[prepend], ids]).astype(np.int64)
                groups = np.concatenate([[-1], groups]).astype(np.int64)
                special = np.concatenate([[True], special])
            ids, groups = _truncate_left(ids, groups, special, max_length)
            out.append(TokenizedWindow(input_ids=ids, group_ids=groups))
    return out


@dataclass
class PaddedWindows:
    """The tokens of many windows in right-padded arrays, for fast batch assembly.

    Attributes:
        input_ids: ``(N, L_max)`` int64, the pad id after each window's tokens.
        group_ids: ``(N, L_max)`` int64, -1 after each window's tokens.
        lengths: ``(N,)`` int64 number of tokens of each window.
    """

    input_ids: np.ndarray
    group_ids: np.ndarray
    lengths: np.ndarray

    @classmethod
    def from_windows(cls, windows: Sequence[TokenizedWindow], pad_id: int) -> PaddedWindows:
        lengths = np.array([len(w.input_ids) for w in windows], dtype=np.int64)
        width = int(lengths.max()) if len(windows) else 0
        input_ids = np.full((len(windows), width), pad_id, dtype=np.int64)
        group_ids = np.full((len(windows), width), -1, dtype=np.int64)
        for row, window in enumerate(windows):
            input_ids[row, : lengths[row]] = window.input_ids
            group_ids[row, : lengths[row]] = window.group_ids
        return cls(input_ids=input_ids, group_ids=group_ids, lengths=lengths)

    def batch(
        self, rows: np.ndarray, targets: np.ndarray, sample_ids: np.ndarray
    ) -> dict[str, torch.Tensor]:
        """The batch dict of windows ``rows`` (see ``WindowCollator``), padded to the longest.

        Args:
            rows: ``(B,)`` row indices into these arrays.
            targets: ``(B, V)`` float32 targets of those windows.
            sample_ids: ``(B,)`` ids reported as ``sample_ids``.
        """
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        width = int(lengths.max())
        return {
            "input_ids": torch.from_numpy(self.input_ids[rows, :width]),
            "attention_mask": torch.from_numpy(
                (np.arange(width) < lengths[:, None]).astype(np.int64)
            ),
            "group_ids": torch.from_numpy(self.group_ids[rows, :width]),
            "targets": torch.from_numpy(np.asarray(targets, dtype=np.float32)),
            "sample_ids": torch.from_numpy(np.asarray(sample_ids, dtype=np.int64)),
        }


@dataclass(frozen=True)
class WindowCollator:
    """Collate window items into the batch dict of the contract (docs/architecture.md).

    Each item is a dict with ``input_ids`` and ``group_ids`` (``(L,)`` int64 arrays),
    ``targets`` (``(V,)`` float32 array) and ``sample_id`` (int). The batch holds
    ``input_ids``, ``attention_mask``, ``group_ids`` (long ``(B, L_max)``, right-padded),
    ``targets`` (float32 ``(B, V)``) and ``sample_ids`` (long ``(B,)``). A batch dict that a
    dataset already assembled (``PaddedWindows.batch``) passes through unchanged.
    """

    pad_id: int

    def __call__(
        self, items: Sequence[dict[str, Any]] | dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        if isinstance(items, dict):
            return items
        length = max(len(item["input_ids"]) for item in items)
        input_ids = np.full((len(items), length), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(items), length), dtype=np.int64)
        group_ids = np.full((len(items), length), -1, dtype=np.int64)
        for row, item in enumerate(items):
            n = len(item["input_ids"])
            input_ids[row, :n] = item["input_ids"]
            attention_mask[row, :n] = 1
            group_ids[row, :n] = item["group_ids"]
        return {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention_mask),
            "group_ids": torch.from_numpy(group_ids),
            "targets": torch.from_numpy(np.stack([item["targets"] for item in items])).float(),
            "sample_ids": torch.tensor([int(item["sample_id"]) for item in items]),
        }
