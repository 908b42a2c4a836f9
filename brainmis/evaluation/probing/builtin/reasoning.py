"""Reasoning: comparisons of quantities, transitive order, arithmetic, quantifier entailment."""

from __future__ import annotations

import random

from brainmis.evaluation.probing.builtin import lexicon as lx
from brainmis.evaluation.probing.builtin.spec import Sample, TaskSpec, sentence
from brainmis.evaluation.probing.task_types import ProbeTaskType as T

SUBFIELD = "reasoning"


def age_comparison(rng: random.Random) -> Sample:
    """``Tom is 34 and Anna is 52, so Tom is older.`` 1 = the conclusion is true."""
    label = rng.randrange(2)
    first, second = rng.sample(lx.NAMES, 2)
    age_a, age_b = rng.sample(range(5, 90), 2)
    older = age_a > age_b
    claim = "older" if older == bool(label) else "younger"
    words = [first, "is", str(age_a), "and", second, "is", f"{age_b},", "so", first, "is", claim]
    return Sample((sentence(words),), label)


def quantity_comparison(rng: random.Random) -> Sample:
    """``There are 7 apples and 3 pears, so there are more apples.`` 1 = true."""
    label = rng.randrange(2)
    goods_a, goods_b = rng.sample(lx.PLURAL_GOODS, 2)
    count_a, count_b = rng.sample(range(1, 30), 2)
    more_a = count_a > count_b
    named = goods_a if more_a == bool(label) else goods_b
    words = ["there", "are", str(count_a), goods_a, "and", str(count_b), f"{goods_b},",
             "so", "there", "are", "more", named]  # fmt: skip
    return Sample((sentence(words),), label)


def transitive_inference(rng: random.Random) -> Sample:
    """Three people ordered by height in two premises, then a claim about the outer two;
    1 = the claim follows."""
    label = rng.randrange(2)
    tallest, middle, shortest = rng.sample(lx.NAMES, 3)
    premises = [f"{tallest} is taller than {middle}.", f"{middle} is taller than {shortest}."]
    rng.shuffle(premises)
    claim = (tallest, shortest) if label else (shortest, tallest)
    text = " ".join([*premises, f"So {claim[0]} is taller than {claim[1]}."])
    return Sample((text,), label)


def arithmetic_sum(rng: random.Random) -> Sample:
    """``Two plus three is five.`` with number words; 1 = the sum is right."""
    label = rng.randrange(2)
    a, b = rng.randrange(0, 11), rng.randrange(0, 11)
    total = a + b
    if not label:
        total = rng.choice(
            [t for t in range(max(0, a + b - 3), min(20, a + b + 3) + 1) if t != a + b]
        )
    words = [lx.NUMBER_WORDS[a], "plus", lx.NUMBER_WORDS[b], "is", lx.NUMBER_WORDS[total]]
    return Sample((sentence(words),), label)


# premise quantifier -> hypothesis quantifier -> relation (0 entail, 1 contradict, 2 neutral)
QUANTIFIER_RELATIONS = {
    ("all", "some"): 0, ("all", "no"): 1, ("some", "all"): 2, ("no", "some"): 1,
    ("no", "all"): 1, ("some", "no"): 1, ("all", "all"): 0, ("no", "no"): 0,
}  # fmt: skip


def quantifier_entailment(rng: random.Random) -> Sample:
    """Cross pair ``All dogs are happy.`` / ``Some dogs are happy.``: 0 entailment,
    1 contradiction, 2 neutral."""
    label = rng.randrange(3)
    pairs = [pair for pair, relation in QUANTIFIER_RELATIONS.items() if relation == label]
    premise_q, hypothesis_q = rng.choice(pairs)
    noun, adjective = rng.choice(lx.ANIMATE_NOUNS)[1], rng.choice(lx.ADJECTIVES)
    return Sample(
        (
            sentence([premise_q, noun, "are", adjective]),
            sentence([hypothesis_q, noun, "are", adjective]),
        ),
        label,
    )


def object_permanence(rng: random.Random) -> Sample:
    """``Anna put the key in the box, then moved it to the bag. The key is in the bag.``
    1 = the final location is right."""
    label = rng.randrange(2)
    name = rng.choice(lx.NAMES)
    thing = rng.choice(lx.INANIMATE_NOUNS)[0]
    first, second = rng.sample(lx.PLACES, 2)
    stated = second if label else first
    text = (
        f"{name} put the {thing} in the {first}, then moved it to the {second}. "
        f"The {thing} is in the {stated}."
    )
    return Sample((text,), label)


TASKS = (
    TaskSpec("age-comparison", SUBFIELD, T.SENTENCE, 2, age_comparison, "older/younger claim true"),
    TaskSpec(
        "quantity-comparison", SUBFIELD, T.SENTENCE, 2, quantity_comparison, "'more X' claim true"
    ),
    TaskSpec(
        "transitive-inference",
        SUBFIELD,
        T.SENTENCE,
        2,
        transitive_inference,
        "height order follows from two premises",
    ),
    TaskSpec("arithmetic-sum", SUBFIELD, T.SENTENCE, 2, arithmetic_sum, "spelled-out sum correct"),
    TaskSpec(
        "quantifier-entailment",
        SUBFIELD,
        T.SENTENCE_PAIR_CROSS,
        3,
        quantifier_entailment,
        "entailment between all/some/no statements",
    ),
    TaskSpec(
        "object-location",
        SUBFIELD,
        T.SENTENCE,
        2,
        object_permanence,
        "final location of a moved object",
    ),
)
