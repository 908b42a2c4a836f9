"""What a built-in task is: a name, its Holmes task type and a function that makes one
labelled item from a random generator. Labels are chosen first and the text built to match,
so they are correct by construction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from brainmis.evaluation.probing.task_types import ProbeTaskType

Position = tuple[str, int, int, int]  # (text, context index, char start, char end)


@dataclass(frozen=True)
class Sample:
    """One generated item in Holmes terms: ``inputs`` are sentences or ``Position``s into
    ``context``; ``label`` a class index (or a float for regression)."""

    inputs: tuple
    label: float
    context: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskSpec:
    name: str
    subfield: str
    task_type: ProbeTaskType
    num_labels: int
    make: Callable[..., Sample]
    description: str
    split_words: bool = False
    """True when ``make(rng, split)`` draws each split's items from its own words."""


def sentence(words: list[str], end: str = ".") -> str:
    """Words joined by spaces, first letter capitalised, ``end`` attached."""
    text = " ".join(words) + end
    return text[0].upper() + text[1:]


def locate(text: str, word: str, context_index: int = 0, occurrence: int = 0) -> Position:
    """The ``occurrence``-th whole-word match of ``word`` in ``text`` as a Position."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.find(word, start + 1)
        while start >= 0 and not _whole_word(text, start, len(word)):
            start = text.find(word, start + 1)
        if start < 0:
            raise ValueError(f"{word!r} not in {text!r}")
    return (word, context_index, start, start + len(word))


def _whole_word(text: str, start: int, length: int) -> bool:
    before = text[start - 1] if start > 0 else " "
    after = text[start + length] if start + length < len(text) else " "
    return not before.isalnum() and not after.isalnum()


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"
