"""Semantics: negation, animacy, roles, word relations, number meaning, word classes."""

from __future__ import annotations

import random

from brainmis.evaluation.probing.builtin import lexicon as lx
from brainmis.evaluation.probing.builtin.spec import Sample, TaskSpec, article, locate, sentence
from brainmis.evaluation.probing.task_types import ProbeTaskType as T

SUBFIELD = "semantics"


def negation(rng: random.Random) -> Sample:
    """1 = the sentence is negated (``did not`` or ``never``)."""
    label = rng.randrange(2)
    verb = rng.choice(lx.TRANSITIVE_VERBS)
    name, obj = rng.choice(lx.NAMES), rng.choice(lx.INANIMATE_NOUNS)[0]
    if label:
        middle = ["did", "not", verb[0]] if rng.randrange(2) else ["never", verb[2]]
    else:
        middle = ["really", verb[2]] if rng.randrange(2) else [verb[2]]
    return Sample((sentence([name, *middle, "the", obj]),), label)


def animacy(rng: random.Random) -> Sample:
    """Token task on a noun: 1 = it names a living being."""
    label = rng.randrange(2)
    noun = rng.choice(lx.ANIMATE_NOUNS if label else lx.INANIMATE_NOUNS)[0]
    text = sentence([rng.choice(lx.NAMES), "looked", "at", "the", noun])
    return Sample((locate(text, noun),), label, (text,))


def semantic_role(rng: random.Random) -> Sample:
    """Span task on a noun phrase (``the old man``): 1 = agent, 0 = patient; active or passive."""
    label = rng.randrange(2)
    first = ["the", rng.choice(lx.ADJECTIVES), rng.choice(lx.ANIMATE_NOUNS)[0]]
    second = ["the", rng.choice(lx.ADJECTIVES), rng.choice(lx.ANIMATE_NOUNS)[0]]
    verb = rng.choice(lx.TRANSITIVE_VERBS)
    passive = rng.randrange(2)
    if passive:  # first is the patient, second the agent
        text = sentence([*first, "was", verb[3], "by", *second])
        agent_first = False
    else:
        text = sentence([*first, verb[2], *second])
        agent_first = True
    pick_first = agent_first == bool(label)
    phrase = " ".join(first if pick_first else second)
    lowered = text[0].lower() + text[1:]
    start = lowered.find(phrase) if pick_first else lowered.rfind(phrase)
    span_text = text[start : start + len(phrase)]
    return Sample(((span_text, 0, start, start + len(phrase)),), label, (text,))


def word_relation(rng: random.Random) -> Sample:
    """Cross pair ``The room is big.`` / ``The room is large.``: 1 = synonyms, 0 = antonyms."""
    label = rng.randrange(2)
    pair = list(rng.choice(lx.SYNONYMS if label else lx.ANTONYMS))
    rng.shuffle(pair)
    noun = rng.choice(lx.NOUNS)[0]
    return Sample(tuple(sentence(["the", noun, "is", word]) for word in pair), label)


def numeral_magnitude(rng: random.Random) -> Sample:
    """Token task on a number word (one..twenty): 1 = greater than ten."""
    label = rng.randrange(2)
    value = rng.randrange(11, 21) if label else rng.randrange(1, 11)
    word = lx.NUMBER_WORDS[value]
    text = sentence([rng.choice(lx.NAMES), "has", word, rng.choice(lx.PLURAL_GOODS)])
    return Sample((locate(text, word),), label, (text,))


def number_value(rng: random.Random) -> Sample:
    """Regression token task: the value of a number word, divided by 20."""
    value = rng.randrange(0, 21)
    word = lx.NUMBER_WORDS[value]
    text = sentence(["there", "were", word, rng.choice(lx.PLURAL_GOODS), "on", "the", "table"])
    return Sample((locate(text, word),), value / 20.0, (text,))


def lexical_category(rng: random.Random) -> Sample:
    """Token task in ``the ADJ NOUN VERB the NOUN``: 0 adjective, 1 noun, 2 verb."""
    label = rng.randrange(3)
    adjective, noun = rng.choice(lx.ADJECTIVES), rng.choice(lx.NOUNS)[0]
    verb, obj = rng.choice(lx.TRANSITIVE_VERBS)[2], rng.choice(lx.INANIMATE_NOUNS)[0]
    text = sentence(["the", adjective, noun, verb, "the", obj])
    word = (adjective, noun, verb)[label]
    return Sample((locate(text, word),), label, (text,))


def hypernymy(rng: random.Random) -> Sample:
    """Pair tokens (encoded separately): a word in sentence 1 and a category word in sentence
    2; 1 = the word is a member of the category."""
    label = rng.randrange(2)
    categories = list(lx.CATEGORIES)
    category = rng.choice(categories)
    member_of = category if label else rng.choice([c for c in categories if c != category])
    word = rng.choice(lx.CATEGORIES[member_of])
    first = sentence([rng.choice(lx.NAMES), "saw", article(word), word])
    second = sentence(["it", "was", article(category), category])
    return Sample((locate(first, word, 0), locate(second, category, 1)), label, (first, second))


TASKS = (
    TaskSpec("negation", SUBFIELD, T.SENTENCE, 2, negation, "negated sentence"),
    TaskSpec("animacy", SUBFIELD, T.SENTENCE_TOKENS, 2, animacy, "animate noun"),
    TaskSpec(
        "semantic-role",
        SUBFIELD,
        T.SENTENCE_SPANS,
        2,
        semantic_role,
        "agent or patient noun phrase, active and passive",
    ),
    TaskSpec(
        "word-relation",
        SUBFIELD,
        T.SENTENCE_PAIR_CROSS,
        2,
        word_relation,
        "synonym vs antonym predicate",
    ),
    TaskSpec(
        "numeral-magnitude",
        SUBFIELD,
        T.SENTENCE_TOKENS,
        2,
        numeral_magnitude,
        "number word above ten",
    ),
    TaskSpec(
        "number-value",
        SUBFIELD,
        T.SENTENCE_TOKENS,
        1,
        number_value,
        "value of a number word (regression)",
    ),
    TaskSpec(
        "lexical-category",
        SUBFIELD,
        T.SENTENCE_TOKENS,
        3,
        lexical_category,
        "adjective, noun or verb",
    ),
    TaskSpec(
        "hypernymy",
        SUBFIELD,
        T.SENTENCE_PAIR_TOKENS_BI,
        2,
        hypernymy,
        "word belongs to the category named in the next sentence",
    ),
)
