"""Syntax: word order, number of subject and object, voice, length, roles, licensing."""

from __future__ import annotations

import random

from brainmis.evaluation.probing.builtin import lexicon as lx
from brainmis.evaluation.probing.builtin.spec import Sample, TaskSpec, locate, sentence
from brainmis.evaluation.probing.task_types import ProbeTaskType as T

SUBFIELD = "syntax"


def _clause(rng: random.Random, subject_plural: int, object_plural: int) -> list[str]:
    """``the ADJ NOUN VERB-past the NOUN`` words."""
    return [
        "the", rng.choice(lx.ADJECTIVES), rng.choice(lx.ANIMATE_NOUNS)[subject_plural],
        rng.choice(lx.TRANSITIVE_VERBS)[2], "the", rng.choice(lx.INANIMATE_NOUNS)[object_plural],
    ]  # fmt: skip


def bigram_shift(rng: random.Random) -> Sample:
    """1 = two adjacent words of ``the ADJ NOUN VERB the NOUN`` were swapped."""
    label = rng.randrange(2)
    words = _clause(rng, rng.randrange(2), rng.randrange(2))
    if label:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    return Sample((sentence(words),), label)


def subject_number(rng: random.Random) -> Sample:
    """1 = the subject is plural (the object's number is random)."""
    label = rng.randrange(2)
    return Sample((sentence(_clause(rng, label, rng.randrange(2))),), label)


def object_number(rng: random.Random) -> Sample:
    """1 = the object is plural (the subject's number is random)."""
    label = rng.randrange(2)
    return Sample((sentence(_clause(rng, rng.randrange(2), label)),), label)


def passive_voice(rng: random.Random) -> Sample:
    """1 = passive (``the cup was taken by the man``), 0 = active."""
    label = rng.randrange(2)
    verb = rng.choice(lx.TRANSITIVE_VERBS)
    agent, patient = rng.choice(lx.ANIMATE_NOUNS)[0], rng.choice(lx.INANIMATE_NOUNS)[0]
    if label:
        words = ["the", patient, "was", verb[3], "by", "the", agent]
    else:
        words = ["the", agent, verb[2], "the", patient]
    return Sample((sentence(words),), label)


def sentence_length(rng: random.Random) -> Sample:
    """Number of words: 0 = 3-5, 1 = 7-9, 2 = 11-13 (adjectives and places pad it out)."""
    label = rng.randrange(3)
    target = rng.randrange(3 + 4 * label, 6 + 4 * label)
    words = [rng.choice(lx.NAMES), rng.choice(lx.INTRANSITIVE_VERBS)[2]]
    fillers = [["in", "the", rng.choice(lx.PLACES)], ["with", "a", "friend"], ["today"],
               ["near", "the", rng.choice(lx.PLACES)], ["again"], ["slowly"], ["at", "night"]]  # fmt: skip
    rng.shuffle(fillers)
    for filler in fillers:
        if len(words) + len(filler) <= target:
            words += filler
    while len(words) < target:
        words.append("again" if words[-1] != "again" else "today")
    return Sample((sentence(words),), label)


def syntactic_role(rng: random.Random) -> Sample:
    """Token task on a noun of ``the NOUN VERB the NOUN``: 0 = subject, 1 = object."""
    label = rng.randrange(2)
    first, second = rng.sample(lx.ANIMATE_NOUNS, 2)
    verb = rng.choice(lx.TRANSITIVE_VERBS)[2]
    text = sentence(["the", first[0], verb, "the", second[0]])
    target = second[0] if label else first[0]
    return Sample((locate(text, target),), label, (text,))


def verb_transitivity(rng: random.Random) -> Sample:
    """Token task on the verb: 1 = it takes a direct object here."""
    label = rng.randrange(2)
    subject = rng.choice(lx.ANIMATE_NOUNS)[0]
    if label:
        verb = rng.choice(lx.TRANSITIVE_VERBS)[2]
        words = ["the", subject, verb, "the", rng.choice(lx.INANIMATE_NOUNS)[0]]
    else:
        verb = rng.choice(lx.INTRANSITIVE_VERBS)[2]
        words = ["the", subject, verb, "in", "the", rng.choice(lx.PLACES)]
    text = sentence(words)
    return Sample((locate(text, verb),), label, (text,))


def npi_licensing(rng: random.Random) -> Sample:
    """1 = ``ever`` is licensed by a negative (``no``/``not``) before it."""
    label = rng.randrange(2)
    noun = rng.choice(lx.ANIMATE_NOUNS)[0]
    verb = rng.choice(lx.TRANSITIVE_VERBS)[3]
    obj = rng.choice(lx.INANIMATE_NOUNS)[1]
    if label and rng.randrange(2):
        words = ["no", noun, "has", "ever", verb, "those", obj]
    elif label:
        words = ["the", noun, "has", "not", "ever", verb, "those", obj]
    else:
        words = [rng.choice(("the", "every", "some")), noun, "has", "ever", verb, "those", obj]
    return Sample((sentence(words),), label)


TASKS = (
    TaskSpec("bigram-shift", SUBFIELD, T.SENTENCE, 2, bigram_shift, "two adjacent words swapped"),
    TaskSpec("subject-number", SUBFIELD, T.SENTENCE, 2, subject_number, "plural subject"),
    TaskSpec("object-number", SUBFIELD, T.SENTENCE, 2, object_number, "plural object"),
    TaskSpec("passive-voice", SUBFIELD, T.SENTENCE, 2, passive_voice, "passive vs active"),
    TaskSpec("sentence-length", SUBFIELD, T.SENTENCE, 3, sentence_length, "length bin in words"),
    TaskSpec(
        "syntactic-role",
        SUBFIELD,
        T.SENTENCE_TOKENS,
        2,
        syntactic_role,
        "is the noun the subject or the object",
    ),
    TaskSpec(
        "verb-transitivity",
        SUBFIELD,
        T.SENTENCE_TOKENS,
        2,
        verb_transitivity,
        "does the verb take a direct object",
    ),
    TaskSpec(
        "npi-licensing",
        SUBFIELD,
        T.SENTENCE,
        2,
        npi_licensing,
        "negative polarity item 'ever' licensed",
    ),
)
