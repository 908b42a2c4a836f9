"""The built-in suite: coverage, sizes, determinism, and every task's labels checked against
an independent rule (written here from the surface text, not from the generator)."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from brainmis.data.synthetic.word_categories import CATEGORY_LEXICONS, CATEGORY_TASK_PREFIX
from brainmis.evaluation.probing.builtin.suite import (
    BUILTIN_TASKS,
    builtin_suite_dir,
    builtin_task_names,
    generate_rows,
    load_builtin_suite,
)
from brainmis.evaluation.probing.holmes_reader import Position
from brainmis.evaluation.probing.probe import ProbeProtocol
from brainmis.evaluation.probing.runner import headline_metric, probe_tasks, task_means
from brainmis.evaluation.probing.subfields import SUBFIELDS

# --- word knowledge written for the checks (deliberately not imported from the lexicon) ---
IRREGULAR_PLURALS = {"children", "men", "women", "mice", "wolves", "knives", "shelves", "leaves"}
IRREGULAR_PASTS = {"saw", "took", "ate", "found", "held", "brought", "bought", "wrote", "gave",
                   "broke", "threw", "stole", "slept", "ran", "sang"}  # fmt: skip
PARTICIPLES = {"seen", "taken", "eaten", "found", "held", "brought", "bought", "written",
               "given", "broken", "thrown", "stolen"}  # fmt: skip
LIVING = {"dog", "cat", "teacher", "doctor", "farmer", "child", "man", "woman", "girl", "boy",
          "bird", "horse", "student", "pilot", "baker", "singer", "mouse", "wolf", "nurse", "friend"}  # fmt: skip
NUMBERS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split())}  # fmt: skip
DESCRIBING = set(
    "big small old young tall short long warm cold fast slow dark red green quiet happy heavy".split()
)
SHE = {"Mary", "Anna", "Sarah", "Emma", "Lucy", "Kate", "Julia", "Alice", "Rose", "Eva"}
SAME_MEANING = {frozenset(p) for p in [("big", "large"), ("small", "little"), ("happy", "glad"),
    ("quick", "fast"), ("quiet", "silent"), ("angry", "mad"), ("hard", "difficult"), ("begin", "start")]}  # fmt: skip
KINDS = {"animal": "dog cat horse bird wolf mouse cow sheep", "tool": "hammer chisel drill wrench shovel axe",
         "fruit": "apple pear banana cherry plum grape", "vehicle": "car bus truck train bicycle boat"}  # fmt: skip
EFFECTS = {"went to bed", "ate a sandwich", "put on a coat", "ran to the station", "drank some water",
           "saw a doctor", "read a book", "called a friend"}  # fmt: skip
FIRST_EVENTS = {"bought a ball", "cooked dinner", "wrote a letter", "found a key", "planted a seed",
                "caught a fish", "washed the cup", "opened the box"}  # fmt: skip


def words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9]+", text)


def is_plural(noun: str) -> bool:
    return noun.lower() in IRREGULAR_PLURALS or noun.lower().endswith("s")


def is_past(verb: str) -> bool:
    return verb.endswith("ed") or verb in IRREGULAR_PASTS


def token_word(position: Position, context: tuple[str, ...]) -> str:
    return context[position.context_index][position.char_start : position.char_end]


def word_index(position: Position, context: tuple[str, ...]) -> int:
    """Index of the word the position starts in."""
    return len(words(context[position.context_index][: position.char_start]))


def she_or_he(name: str) -> str:
    return "she" if name in SHE else "he"


def rule(name: str, inputs: tuple, context: tuple[str, ...]) -> float:  # noqa: C901 - a table
    text = inputs[0] if isinstance(inputs[0], str) else None
    w = words(text) if text else []
    if name == "subject-verb-agreement":  # The HEAD near the X VERB
        return float(is_plural(w[1]) != w[5].endswith("s"))
    if name == "determiner-noun-agreement":
        return float((w[2] in ("these", "those")) == is_plural(w[3]))
    if name == "irregular-past-tense":
        return float(w[3] in IRREGULAR_PASTS)
    if name in ("noun-number",):
        return float(is_plural(token_word(inputs[0], context)))
    if name == "verb-tense":
        return float(is_past(w[2]))
    if name == "adjective-degree":
        word = token_word(inputs[0], context)
        return (
            2.0
            if word.endswith("est")
            else 1.0
            if word.endswith("er") and "than" in context[0]
            else 0.0
        )
    if name == "bigram-shift":  # the ADJ NOUN VERB the NOUN, checked by shape
        ok = w[0] == "The" and w[1] in DESCRIBING and w[4] == "the" and is_past(w[3])
        return float(not ok)
    if name == "subject-number":
        return float(is_plural(w[2]))
    if name == "object-number":
        return float(is_plural(w[5]))
    if name == "passive-voice":
        return float(bool(re.search(r" (was|were) \w+ by ", text)))
    if name == "sentence-length":
        n = len(text.split())
        return 0.0 if n <= 5 else 1.0 if n <= 9 else 2.0
    if name == "syntactic-role":
        return float(word_index(inputs[0], context) > 2)
    if name == "verb-transitivity":
        after = words(context[0][inputs[0].char_end :])
        return float(after[0] == "the")
    if name == "npi-licensing":
        before_ever = w[: w.index("ever")]
        return float("No" in before_ever or "not" in before_ever)
    if name == "negation":
        return float("not" in w or "never" in w)
    if name == "animacy":
        return float(token_word(inputs[0], context) in LIVING)
    if name == "semantic-role":
        sentence_text, span_start = context[0], inputs[0].char_start
        by = sentence_text.find(" by ")
        return float(span_start > by) if by >= 0 else float(span_start == 0)
    if name == "word-relation":
        return float(frozenset((words(inputs[0])[-1], words(inputs[1])[-1])) in SAME_MEANING)
    if name == "numeral-magnitude":
        return float(NUMBERS[token_word(inputs[0], context)] > 10)
    if name == "number-value":
        return NUMBERS[token_word(inputs[0], context)] / 20
    if name == "lexical-category":
        return float(word_index(inputs[0], context) - 1)
    if name == "hypernymy":
        member, kind = token_word(inputs[0], context), token_word(inputs[1], context)
        return float(member in KINDS[kind].split())
    if name == "age-comparison":
        a, b = (int(x) for x in re.findall(r"\d+", text))
        return float((a > b) == text.endswith("older."))
    if name == "quantity-comparison":
        m = re.match(r"There are (\d+) (\w+) and (\d+) (\w+), so there are more (\w+)\.", text)
        bigger = m[2] if int(m[1]) > int(m[3]) else m[4]
        return float(m[5] == bigger)
    if name == "transitive-inference":
        facts = re.findall(r"(\w+) is taller than (\w+)\.", text)
        (p1, p2), claim = facts[:2], facts[2]
        chain = (p1[0], p1[1], p2[1]) if p1[1] == p2[0] else (p2[0], p2[1], p1[1])
        return float(claim == (chain[0], chain[2]))
    if name == "arithmetic-sum":
        a, _, b, _, c = (x.lower() for x in w)
        return float(NUMBERS[a] + NUMBERS[b] == NUMBERS[c])
    if name == "quantifier-entailment":
        p, h = words(inputs[0])[0].lower(), words(inputs[1])[0].lower()
        if p == h or (p, h) == ("all", "some"):
            return 0.0
        return 2.0 if (p, h) == ("some", "all") else 1.0
    if name == "object-location":
        moved_to = re.search(r"moved it to the (\w+)\.", text)[1]
        return float(text.endswith(f"in the {moved_to}."))
    if name == "sentence-order":
        return float(not inputs[0].startswith("Then"))
    if name == "connective-coherence":
        expected_effect = any(e in text for e in EFFECTS)
        return float(expected_effect == (", so " in text))
    if name == "pronoun-coreference":
        name_word, pronoun = token_word(inputs[0], context), token_word(inputs[1], context)
        return float(she_or_he(name_word) == pronoun)
    if name == "given-new":
        noun = token_word(inputs[0], context)
        return float(noun in words(context[0]))
    if name == "topic-continuity":
        return float(she_or_he(words(inputs[0])[0]) == words(inputs[1])[0].lower())
    if name == "event-order":
        clause = token_word(inputs[0], context)
        return float(any(clause.endswith(e) for e in FIRST_EVENTS))
    if name.startswith(CATEGORY_TASK_PREFIX):  # the brain's own lexicons define these labels
        category = name.removeprefix(CATEGORY_TASK_PREFIX)
        return float(token_word(inputs[0], context).lower() in CATEGORY_LEXICONS[category])
    raise AssertionError(f"no independent rule for task {name}")


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    return load_builtin_suite(tmp_path_factory.mktemp("builtin"), seed=0)


def test_coverage_and_sizes(suite):
    assert len(suite) >= 30
    assert [t.name for t in suite] == builtin_task_names()
    assert set(Counter(t.subfield for t in suite)) == set(SUBFIELDS)
    assert len({t.task_type for t in suite}) >= 3
    assert any(t.is_regression for t in suite)
    for task in suite:
        assert [len(task.split(s)) for s in ("train", "dev", "test")] >= [1000, 200, 200], task.name
        labels = task.labels("train")
        if not task.is_regression:  # every class present, none dominant
            counts = np.bincount(labels, minlength=task.num_labels)
            assert counts.min() > 0.5 * len(labels) / task.num_labels, task.name


def test_every_task_matches_its_independent_rule(suite):
    for task in suite:
        sample = task.items[:: max(1, len(task.items) // 150)]
        for item in sample:
            assert rule(task.name, item.inputs, item.context) == pytest.approx(item.label), (
                task.name,
                item,
            )


def test_generation_is_deterministic_and_lazy(tmp_path):
    spec = BUILTIN_TASKS[0]
    assert generate_rows(spec, 7, (5, 2, 2)) == generate_rows(spec, 7, (5, 2, 2))
    assert generate_rows(spec, 7, (5, 2, 2)) != generate_rows(spec, 8, (5, 2, 2))
    folder = builtin_suite_dir(tmp_path, seed=3, tasks=[spec.name], sizes=(20, 5, 5))
    samples = folder / spec.name / "samples.csv"
    before = samples.stat().st_mtime_ns
    assert builtin_suite_dir(tmp_path, seed=3, tasks=[spec.name], sizes=(20, 5, 5)) == folder
    assert samples.stat().st_mtime_ns == before  # not rewritten
    assert sorted(p.name for p in folder.iterdir()) == [spec.name]


def test_some_tasks_are_above_chance_on_a_tiny_random_model(tiny_gpt2, tmp_path):
    model, tokenizer = tiny_gpt2
    names = ["syntactic-role", "sentence-order", "negation"]
    tasks = [t.capped(300) for t in load_builtin_suite(tmp_path, seed=0, tasks=names)]
    scores = probe_tasks(model, tokenizer, tasks, ProbeProtocol(seeds=(0,)))
    means = task_means(scores, {t.name: headline_metric(t) for t in tasks})
    above = [name for name, value in means.items() if value > 0.7]  # chance: 0.5
    assert len(above) >= 2, means


def test_word_category_splits_hold_different_words(suite):
    """A word-category probe is tested on words it never saw in training."""
    category_tasks = [t for t in suite if t.name.startswith(CATEGORY_TASK_PREFIX)]
    assert len(category_tasks) == len(CATEGORY_LEXICONS)
    for task in category_tasks:
        marked = {
            split: {token_word(item.inputs[0], item.context).lower() for item in task.split(split)}
            for split in ("train", "dev", "test")
        }
        assert marked["train"].isdisjoint(marked["test"]), task.name
        assert marked["train"].isdisjoint(marked["dev"]), task.name
        assert len(marked["test"]) >= 10, task.name
