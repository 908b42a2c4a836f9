"""Morphology: agreement, past tense, number and degree of words."""

from __future__ import annotations

import random

from brainmis.evaluation.probing.builtin import lexicon as lx
from brainmis.evaluation.probing.builtin.spec import Sample, TaskSpec, locate, sentence
from brainmis.evaluation.probing.task_types import ProbeTaskType as T

SUBFIELD = "morphology"


def subject_verb_agreement(rng: random.Random) -> Sample:
    """ "The dog near the cars sleeps." 1 = verb agrees with the head noun (not the attractor)."""
    label = rng.randrange(2)
    plural = rng.randrange(2)
    head = rng.choice(lx.NOUNS)[plural]
    attractor = rng.choice(lx.INANIMATE_NOUNS)[1 - plural]
    verb = rng.choice(lx.INTRANSITIVE_VERBS)
    singular_verb = (plural == 0) == bool(label)
    form = verb[1] if singular_verb else verb[0]
    return Sample((sentence(["the", head, "near", "the", attractor, form]),), label)


def determiner_noun_agreement(rng: random.Random) -> Sample:
    """ "Tom saw these dogs." 1 = demonstrative and noun agree in number."""
    label = rng.randrange(2)
    plural = rng.randrange(2)
    near = rng.randrange(2)
    det_plural = plural if label else 1 - plural
    det = (("that", "those"), ("this", "these"))[near][det_plural]
    noun = rng.choice(lx.NOUNS)[plural]
    verb = rng.choice(lx.TRANSITIVE_VERBS)[2]
    return Sample((sentence([rng.choice(lx.NAMES), verb, det, noun]),), label)


def irregular_past_tense(rng: random.Random) -> Sample:
    """ "Yesterday the boy took the cup." 1 = correct irregular past, 0 = over-regularised."""
    label = rng.randrange(2)
    verb = rng.choice(lx.IRREGULAR_VERBS)
    form = verb[2] if label else lx.WRONG_PASTS[verb[0]]
    subject = rng.choice(lx.ANIMATE_NOUNS)[0]
    obj = rng.choice(lx.INANIMATE_NOUNS)[0]
    return Sample((sentence(["yesterday", "the", subject, form, "the", obj]),), label)


def noun_number(rng: random.Random) -> Sample:
    """Token task: a noun in a sentence; 1 = plural."""
    label = rng.randrange(2)
    noun = rng.choice(lx.NOUNS)[label]
    name = rng.choice(lx.NAMES)
    verb = rng.choice(lx.TRANSITIVE_VERBS)[2]
    text = sentence([name, verb, "the", rng.choice(lx.ADJECTIVES), noun])
    return Sample((locate(text, noun),), label, (text,))


def verb_tense(rng: random.Random) -> Sample:
    """ "The girl pushes the box." 1 = past tense, 0 = present."""
    label = rng.randrange(2)
    verb = rng.choice(lx.TRANSITIVE_VERBS)
    form = verb[2] if label else verb[1]
    words = ["the", rng.choice(lx.ANIMATE_NOUNS)[0], form, "the", rng.choice(lx.INANIMATE_NOUNS)[0]]
    return Sample((sentence(words),), label)


def adjective_degree(rng: random.Random) -> Sample:
    """Token task on an adjective: 0 positive, 1 comparative, 2 superlative."""
    label = rng.randrange(3)
    adjective = rng.choice(lx.ADJECTIVE_DEGREES)[label]
    noun = rng.choice(lx.NOUNS)[0]
    other = rng.choice(lx.NOUNS)[0]
    if label == 0:
        words = ["the", noun, "is", "very", adjective]
    elif label == 1:
        words = ["the", noun, "is", adjective, "than", "the", other]
    else:
        words = ["the", noun, "is", "the", adjective, "of", "all"]
    text = sentence(words)
    return Sample((locate(text, adjective),), label, (text,))


TASKS = (
    TaskSpec(
        "subject-verb-agreement",
        SUBFIELD,
        T.SENTENCE,
        2,
        subject_verb_agreement,
        "verb agrees with the head noun despite an attractor",
    ),
    TaskSpec(
        "determiner-noun-agreement",
        SUBFIELD,
        T.SENTENCE,
        2,
        determiner_noun_agreement,
        "demonstrative agrees with its noun in number",
    ),
    TaskSpec(
        "irregular-past-tense",
        SUBFIELD,
        T.SENTENCE,
        2,
        irregular_past_tense,
        "irregular past form vs over-regularised -ed form",
    ),
    TaskSpec(
        "noun-number", SUBFIELD, T.SENTENCE_TOKENS, 2, noun_number, "is the marked noun plural"
    ),
    TaskSpec("verb-tense", SUBFIELD, T.SENTENCE, 2, verb_tense, "past vs present tense"),
    TaskSpec(
        "adjective-degree",
        SUBFIELD,
        T.SENTENCE_TOKENS,
        3,
        adjective_degree,
        "positive, comparative or superlative adjective",
    ),
)
