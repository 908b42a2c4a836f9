"""Word-category tasks: is a word of the narrative a member of a meaning category?

One token task per category of ``brainmis.data.synthetic.word_categories`` (emotion, motion,
people, place, number, sensory): the item is a sentence of the project's narrative with one
marked word; 1 = the word belongs to the category, 0 = it belongs to another category only.
Labels come from the lexicons that drive the synthetic brain, so these are the tasks that
the ``probed`` and ``semantic`` worlds target (``brainmis.data.synthetic.worlds``).

The splits hold *different words*: each category's members and non-members are divided once,
in a fixed order given by a hash of the word, into train (60%), dev (20%) and test (20%) words, and an item of
a split only marks words of that split. A probe therefore scores well on the test split only
if the model represents category membership as a shared property of words, not if it merely
tells the words apart.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import defaultdict
from functools import cache

from brainmis.data.synthetic.stimulus import default_text_path
from brainmis.data.synthetic.word_categories import (
    CATEGORY_LEXICONS,
    CATEGORY_NAMES,
    category_task_name,
    normalize_word,
)
from brainmis.evaluation.probing.builtin.spec import Sample, TaskSpec
from brainmis.evaluation.probing.task_types import ProbeTaskType as T

SUBFIELD = "semantics"
SPLIT_SHARES = (("train", 0.6), ("dev", 0.2), ("test", 0.2))
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"']?\s+")
_WORD = re.compile(r"[\w'-]+")


def _hash_rank(word: str) -> float:
    """A fixed pseudo-random number in [0, 1) per word."""
    return int(hashlib.sha256(f"word-category/{word}".encode()).hexdigest()[:8], 16) / 2**32


def split_words(words: list[str], split: str) -> tuple[str, ...]:
    """The words of ``words`` that fall in ``split``: the words ordered by a fixed hash, the
    first 60% train, the next 20% dev, the rest test (so every split gets its share)."""
    ordered = sorted(words, key=_hash_rank)
    bounds, start = {}, 0.0
    for name, share in SPLIT_SHARES:
        bounds[name] = (round(start * len(ordered)), round((start + share) * len(ordered)))
        start += share
    low, high = bounds[split]
    return tuple(sorted(ordered[low:high]))


@cache
def narrative_sentences() -> dict[str, tuple[tuple[str, int, int], ...]]:
    """Normalised word -> its occurrences ``(sentence, char start, char end)`` in the
    narrative, for every word of any category lexicon that the narrative contains."""
    text = default_text_path().read_text(encoding="utf-8")
    members = set().union(*CATEGORY_LEXICONS.values())
    occurrences: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for paragraph in text.split("\n\n"):
        for sentence in _SENTENCE_END.split(" ".join(paragraph.split())):
            for match in _WORD.finditer(sentence):
                word = normalize_word(match.group())
                if word in members:
                    start = match.start() + match.group().lower().find(word)
                    occurrences[word].append((sentence, start, start + len(word)))
    return {word: tuple(found) for word, found in occurrences.items()}


@cache
def word_pools(category: str, split: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(members, non-members) of ``category`` among the narrative's category words, those of
    one split (members and non-members are split separately); non-members belong to another
    category only."""
    present = sorted(narrative_sentences())
    members = [word for word in present if word in CATEGORY_LEXICONS[category]]
    others = [word for word in present if word not in CATEGORY_LEXICONS[category]]
    return split_words(members, split), split_words(others, split)


def make_item(category: str, rng: random.Random, split: str) -> Sample:
    """One item of a split: a narrative sentence with a marked word of that split."""
    label = rng.randrange(2)
    members, others = word_pools(category, split)
    word = rng.choice(members if label else others)
    sentence, start, end = rng.choice(narrative_sentences()[word])
    return Sample(((sentence[start:end], 0, start, end),), label, (sentence,))


def _task(category: str) -> TaskSpec:
    def make(rng: random.Random, split: str = "train") -> Sample:
        return make_item(category, rng, split)

    return TaskSpec(
        category_task_name(category),
        SUBFIELD,
        T.SENTENCE_TOKENS,
        2,
        make,
        f"is the marked narrative word a(n) {category} word (different words per split)",
        split_words=True,
    )


TASKS = tuple(_task(category) for category in CATEGORY_NAMES)
