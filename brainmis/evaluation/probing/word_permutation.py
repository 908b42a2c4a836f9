"""The word-permutation control: the same probing items with the words of every sentence in
a random order.

A probe that scores as well on shuffled sentences reads the words, not how they are put
together. Words are the whitespace-separated pieces of a sentence. The words that a token
or span input touches move as one block (a span over two words keeps both, in order), so
every input still points at the same text: its character offsets are shifted to where its
block lands. The shuffled sentence is the blocks joined by single spaces. Each item draws
its own order from ``(seed, item number)``, so the control is reproducible.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from brainmis.evaluation.probing.holmes_reader import Position, ProbeItem, ProbingTask
from brainmis.evaluation.probing.task_types import ControlTaskType

_WORD = re.compile(r"\S+")

CharSpan = tuple[int, int]


def _blocks(sentence: str, spans: list[CharSpan]) -> list[CharSpan]:
    """``[start, end)`` character ranges of the movable blocks of ``sentence``, in order:
    single words, except that the words overlapping one span are merged into one block."""
    blocks = [match.span() for match in _WORD.finditer(sentence)]
    for start, end in spans:
        touched = [i for i, (s, e) in enumerate(blocks) if s < end and start < e]
        if len(touched) > 1:
            first, last = touched[0], touched[-1]
            blocks[first : last + 1] = [(blocks[first][0], blocks[last][1])]
    return blocks


def shuffle_sentence(
    sentence: str, spans: list[CharSpan], rng: np.random.Generator
) -> tuple[str, list[CharSpan]]:
    """``sentence`` with its blocks (see :func:`_blocks`) in a random order, and ``spans``
    moved with the text they cover (without whitespace at their edges). A span that touches
    no word becomes ``(0, 0)``."""
    blocks = _blocks(sentence, spans)
    order = rng.permutation(len(blocks))
    pieces, new_start, cursor = [], {}, 0
    for index in order:
        start, end = blocks[index]
        new_start[index] = cursor
        pieces.append(sentence[start:end])
        cursor += end - start + 1
    moved = []
    for start, end in spans:
        home = next((i for i, (s, e) in enumerate(blocks) if s < end and start < e), None)
        if home is None:
            moved.append((0, 0))
        else:  # whitespace at the span's edges stays behind
            block_start, block_end = blocks[home]
            shift = new_start[home] - block_start
            moved.append((max(start, block_start) + shift, min(end, block_end) + shift))
    return " ".join(pieces), moved


def _shuffled_item(item: ProbeItem, rng: np.random.Generator) -> ProbeItem:
    if not any(isinstance(x, Position) for x in item.inputs):  # sentence inputs
        inputs = tuple(shuffle_sentence(str(x), [], rng)[0] for x in item.inputs)
        return replace(item, inputs=inputs)
    context = list(item.context)
    inputs: list[Position] = list(item.inputs)  # type: ignore[arg-type]
    for sentence_index, sentence in enumerate(item.context):
        slots = [i for i, p in enumerate(inputs) if p.context_index == sentence_index]
        spans = [(inputs[i].char_start, inputs[i].char_end) for i in slots]
        context[sentence_index], moved = shuffle_sentence(sentence, spans, rng)
        for slot, (start, end) in zip(slots, moved, strict=True):
            inputs[slot] = replace(inputs[slot], char_start=start, char_end=end)
    return replace(item, inputs=tuple(inputs), context=tuple(context))


def word_permuted(task: ProbingTask, seed: int = 0) -> ProbingTask:
    """A copy of ``task`` whose every sentence has its words shuffled (labels, ids and splits
    unchanged), marked with the ``PERMUTATION`` control."""
    items = [
        _shuffled_item(item, np.random.default_rng([seed, number]))
        for number, item in enumerate(task.items)
    ]
    return replace(task, items=items, control=ControlTaskType.PERMUTATION)
