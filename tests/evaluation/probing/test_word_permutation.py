"""The word-permutation control: shuffled sentences that keep every input's text."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from brainmis.evaluation.probing.builtin.suite import load_builtin_suite
from brainmis.evaluation.probing.holmes_reader import Position
from brainmis.evaluation.probing.task_types import ControlTaskType
from brainmis.evaluation.probing.word_permutation import shuffle_sentence, word_permuted


def test_a_span_moves_as_one_block_and_keeps_its_text():
    sentence = "The old dog chased a red ball home"
    spans = [(4, 11), (25, 29), (13, 16)]  # "old dog", "ball", "has" inside "chased"
    orders = set()
    for seed in range(20):
        shuffled, moved = shuffle_sentence(sentence, spans, np.random.default_rng(seed))
        assert sorted(shuffled.split()) == sorted(sentence.split())
        assert [shuffled[s:e] for s, e in moved] == ["old dog", "ball", "has"]
        assert "old dog" in shuffled
        orders.add(shuffled)
    assert len(orders) > 10  # 7 blocks: the order really changes
    again = shuffle_sentence(sentence, spans, np.random.default_rng(3))
    assert again == shuffle_sentence(sentence, spans, np.random.default_rng(3))


def test_whitespace_at_a_span_edge_stays_behind_and_a_blank_span_points_nowhere():
    sentence = "my  dog sleeps"
    for seed in range(5):
        shuffled, moved = shuffle_sentence(sentence, [(3, 8), (2, 3)], np.random.default_rng(seed))
        assert sorted(shuffled.split()) == ["dog", "my", "sleeps"]
        assert shuffled[moved[0][0] : moved[0][1]] == "dog" and moved[1] == (0, 0)


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    tasks = load_builtin_suite(tmp_path_factory.mktemp("builtin"), seed=0)
    return [task.capped(100) for task in tasks]


def test_every_builtin_task_keeps_its_inputs_labels_and_words(suite):
    changed = total = 0
    for task in suite:
        permuted = word_permuted(task, seed=1)
        assert (
            permuted.control is ControlTaskType.PERMUTATION and task.control is not permuted.control
        )
        assert [i.item_id for i in permuted.items] == [i.item_id for i in task.items]
        for before, after in zip(task.items, permuted.items, strict=True):
            assert (after.label, after.split) == (before.label, before.split)
            pairs = list(zip(before.inputs, after.inputs, strict=True))
            for old, new in pairs:
                if isinstance(old, Position):
                    old_text = before.context[old.context_index][old.char_start : old.char_end]
                    new_text = after.context[new.context_index][new.char_start : new.char_end]
                    assert new_text == old_text, (task.name, before.item_id)
                    assert new.text == old.text
            sentences = list(zip(before.context, after.context, strict=True))
            if not isinstance(before.inputs[0], Position):
                sentences = list(zip(before.inputs, after.inputs, strict=True))
            for old_sentence, new_sentence in sentences:
                assert Counter(new_sentence.split()) == Counter(old_sentence.split())
                if len(set(old_sentence.split())) > 3:
                    total += 1
                    changed += new_sentence != " ".join(old_sentence.split())
    assert total > 1000 and changed > 0.8 * total
    assert word_permuted(suite[0], seed=1).items == word_permuted(suite[0], seed=1).items
    assert word_permuted(suite[0], seed=1).items != word_permuted(suite[0], seed=2).items


def test_shuffled_items_give_other_features_and_a_control_score(suite, tiny_gpt2):
    from brainmis.evaluation.probing.probe import ProbeProtocol
    from brainmis.evaluation.probing.representations import encode_tasks
    from brainmis.evaluation.probing.runner import probe_tasks

    model, tokenizer = tiny_gpt2
    tasks = [t for t in suite if t.task_type.reads_positions][:1] + [
        t for t in suite if not t.task_type.reads_positions
    ][:1]
    for task in tasks:
        original = encode_tasks(model, tokenizer, [task])[0].splits["train"]
        shuffled = encode_tasks(model, tokenizer, [word_permuted(task)])[0].splits["train"]
        assert original.shape == shuffled.shape
        assert not np.allclose(original, shuffled, atol=1e-4), task.name
    protocol = ProbeProtocol(seeds=(0,), max_epochs=2)
    scores = probe_tasks(model, tokenizer, tasks, protocol, controls=("permuted_words",))
    controls = [s for s in scores if s.metric.startswith("permuted_words/")]
    assert {s.task for s in controls} == {t.name for t in tasks}
    assert all(np.isfinite(s.score) for s in controls)
