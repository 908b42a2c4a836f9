"""The kinds of probing task in the Holmes format, and the control variants of a probe.

A task type says what the probe reads: whole sentences, tokens or spans inside a context
sentence, or a pair of sentences encoded separately (``BI``) or together (``CROSS``, joined by
the tokenizer's separator).
"""

from __future__ import annotations

from enum import Enum


class ProbeTaskType(str, Enum):
    SENTENCE = "SENTENCE"
    SENTENCE_TOKENS = "SENTENCE_TOKENS"
    SENTENCE_SPANS = "SENTENCE_SPANS"
    SENTENCE_PAIR_BI = "SENTENCE_PAIR_BI"
    SENTENCE_PAIR_CROSS = "SENTENCE_PAIR_CROSS"
    SENTENCE_PAIR_TOKENS_BI = "SENTENCE_PAIR_TOKENS_BI"
    SENTENCE_PAIR_TOKENS_CROSS = "SENTENCE_PAIR_TOKENS_CROSS"

    @property
    def reads_positions(self) -> bool:
        """True when ``inputs`` are ``(text, context_idx, char_start, char_end)`` tuples."""
        return self in (
            ProbeTaskType.SENTENCE_TOKENS,
            ProbeTaskType.SENTENCE_SPANS,
            ProbeTaskType.SENTENCE_PAIR_TOKENS_BI,
            ProbeTaskType.SENTENCE_PAIR_TOKENS_CROSS,
        )

    @property
    def is_cross(self) -> bool:
        """True when the two sentences of a pair are encoded as one joined sequence."""
        return self in (ProbeTaskType.SENTENCE_PAIR_CROSS, ProbeTaskType.SENTENCE_PAIR_TOKENS_CROSS)

    @property
    def is_pair(self) -> bool:
        return self.value.startswith("SENTENCE_PAIR")


class ControlTaskType(str, Enum):
    """Holmes control variants. ``RANDOMIZATION`` permutes the labels (selectivity),
    ``RANDOM_WEIGHTS`` probes a re-initialised copy of the model, ``PERMUTATION`` shuffles words.
    """

    NONE = "NONE"
    PERMUTATION = "PERMUTATION"
    RANDOMIZATION = "RANDOMIZATION"
    RANDOM_WEIGHTS = "RANDOM_WEIGHTS"


SPLITS = ("train", "dev", "test")
