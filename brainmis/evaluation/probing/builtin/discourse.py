"""Discourse: sentence order, connectives, coreference, given/new, event order."""

from __future__ import annotations

import random

from brainmis.evaluation.probing.builtin import lexicon as lx
from brainmis.evaluation.probing.builtin.spec import Sample, TaskSpec, locate, sentence
from brainmis.evaluation.probing.task_types import ProbeTaskType as T

SUBFIELD = "discourse"


def _pronoun(name: str) -> str:
    return "he" if name in lx.MALE_NAMES else "she"


def sentence_order(rng: random.Random) -> Sample:
    """Two sentences encoded separately: ``Tom bought a ball.`` ``Then he played with it.``;
    1 = in the natural order, 0 = swapped."""
    label = rng.randrange(2)
    name = rng.choice(lx.NAMES)
    first, second = rng.choice(lx.EVENT_PAIRS)
    pair = [f"{name} {first}.", f"Then {_pronoun(name)} {second}."]
    return Sample(tuple(pair if label else pair[::-1]), label)


def connective_coherence(rng: random.Random) -> Sample:
    """``Tom was tired, so he went to bed.`` 1 = the connective fits (``so`` + expected effect,
    ``but`` + contrasting event)."""
    label = rng.randrange(2)
    name = rng.choice(lx.NAMES)
    cause, effect, contrast = rng.choice(lx.CAUSE_EFFECT)
    connective = rng.choice(("so", "but"))
    expected = connective == "so"
    event = effect if expected == bool(label) else contrast
    return Sample((f"{name} {cause}, {connective} {_pronoun(name)} {event}.",), label)


def pronoun_coreference(rng: random.Random) -> Sample:
    """Two tokens in ``John met Mary and she smiled.``: a name and the pronoun; 1 = the
    pronoun refers to that name (the two names differ in gender)."""
    label = rng.randrange(2)
    male, female = rng.choice(lx.MALE_NAMES), rng.choice(lx.FEMALE_NAMES)
    names = [male, female]
    rng.shuffle(names)
    referent = rng.choice(names)
    pronoun = _pronoun(referent)
    verb = rng.choice(lx.INTRANSITIVE_VERBS)[2]
    text = f"{names[0]} met {names[1]} and {pronoun} {verb}."
    probed = referent if label else next(n for n in names if n != referent)
    return Sample((locate(text, probed), locate(text, pronoun)), label, (text,))


def given_new(rng: random.Random) -> Sample:
    """Cross pair tokens: a noun in sentence 2, and sentence 1; 1 = the noun was already
    mentioned in sentence 1 (given), 0 = new."""
    label = rng.randrange(2)
    mentioned, other = rng.sample(lx.NOUNS, 2)
    noun = (mentioned if label else other)[0]
    first = sentence(["a", mentioned[0], "was", "in", "the", rng.choice(lx.PLACES)])
    second = sentence([rng.choice(lx.NAMES), "saw", "the", noun, "there"])
    return Sample((locate(second, noun, 1),), label, (first, second))


def topic_continuity(rng: random.Random) -> Sample:
    """Cross pair ``Mary went home.`` / ``She was tired.``: 1 = the pronoun can pick up the
    subject of the first sentence (same gender)."""
    label = rng.randrange(2)
    name = rng.choice(lx.NAMES)
    pronoun = _pronoun(name) if label else ("she" if _pronoun(name) == "he" else "he")
    first = f"{name} {rng.choice(lx.INTRANSITIVE_VERBS)[2]} in the {rng.choice(lx.PLACES)}."
    second = sentence([pronoun, "was", rng.choice(("tired", "happy", "late", "alone"))])
    return Sample((first, second), label)


def event_order(rng: random.Random) -> Sample:
    """Span task on one clause of ``After Tom cooked dinner, he ate it.`` (or ``Before``);
    1 = the clause's event happened first."""
    label = rng.randrange(2)
    name = rng.choice(lx.NAMES)
    earlier, later = rng.choice(lx.EVENT_PAIRS)
    earlier_clause, later_clause = f"{name} {earlier}", f"{_pronoun(name)} {later}"
    if rng.randrange(2):
        text = f"After {earlier_clause}, {later_clause}."
    else:
        text = f"Before {later_clause}, {earlier_clause}."
    clause = earlier_clause if label else later_clause
    start = text.index(clause)
    return Sample(((clause, 0, start, start + len(clause)),), label, (text,))


TASKS = (
    TaskSpec(
        "sentence-order",
        SUBFIELD,
        T.SENTENCE_PAIR_BI,
        2,
        sentence_order,
        "two sentences in their natural order",
    ),
    TaskSpec(
        "connective-coherence",
        SUBFIELD,
        T.SENTENCE,
        2,
        connective_coherence,
        "'so'/'but' fits the two clauses",
    ),
    TaskSpec(
        "pronoun-coreference",
        SUBFIELD,
        T.SENTENCE_TOKENS,
        2,
        pronoun_coreference,
        "pronoun refers to the marked name",
    ),
    TaskSpec(
        "given-new",
        SUBFIELD,
        T.SENTENCE_PAIR_TOKENS_CROSS,
        2,
        given_new,
        "noun mentioned in the previous sentence",
    ),
    TaskSpec(
        "topic-continuity",
        SUBFIELD,
        T.SENTENCE_PAIR_CROSS,
        2,
        topic_continuity,
        "pronoun agrees with the previous subject",
    ),
    TaskSpec(
        "event-order",
        SUBFIELD,
        T.SENTENCE_SPANS,
        2,
        event_order,
        "clause describes the earlier event",
    ),
)
