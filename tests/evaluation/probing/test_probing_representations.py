"""Representations: span pooling over subwords, pairs, padding, layers, eval mode, cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brainmis.evaluation.probing.holmes_reader import Position, ProbeItem, ProbingTask
from brainmis.evaluation.probing.representations import (
    RepresentationCache,
    encode_task,
    model_state_key,
    pair_joiner,
)
from brainmis.evaluation.probing.task_types import ProbeTaskType
from brainmis.models.features import layer_hidden_states


def make_task(task_type: ProbeTaskType, items: list[tuple], num_labels: int = 2) -> ProbingTask:
    """items: (inputs, context); split cycles train/dev/test."""
    splits = ("train", "dev", "test")
    return ProbingTask(
        name="t",
        subfield="syntax",
        task_type=task_type,
        num_labels=num_labels,
        items=[
            ProbeItem(str(i), tuple(inputs), tuple(context), i % 2, splits[i % 3])
            for i, (inputs, context) in enumerate(items)
        ],
    )


def hidden_of(model, tokenizer, text: str, layer: int = -1):
    """Hidden states of one unpadded sequence, and its encoding (for char_to_token)."""
    encoding = tokenizer(text)
    ids = torch.tensor([encoding["input_ids"]])
    with torch.no_grad():
        hidden = layer_hidden_states(model.eval(), ids, torch.ones_like(ids), layer)[0]
    return hidden, encoding


def tokens_of_chars(encoding, start: int, end: int) -> list[int]:
    """Tokens covering characters [start, end), looked up one character at a time."""
    found = [encoding.char_to_token(c) for c in range(start, end)]
    return sorted({t for t in found if t is not None})


@pytest.mark.parametrize("family", ["tiny_bert", "tiny_gpt2"])
def test_span_inside_a_subword_pools_the_covering_subwords(family, request):
    model, tokenizer = request.getfixturevalue(family)
    text = "The unbelievably heavy boxes arrived."
    hidden, encoding = hidden_of(model, tokenizer, text)
    words = [encoding.token_to_chars(t) for t in range(len(encoding["input_ids"]))]
    long_tokens = [c for c in words if c is not None and c.end - c.start >= 3]
    first, second = long_tokens[1], long_tokens[2]
    spans = [
        (first.start + 1, first.end),  # starts inside a subword
        (second.start, second.end - 1),  # ends inside a subword
        (first.start + 1, second.end - 1),  # both, across several tokens
        (0, 3),
    ]
    items = [([Position(text[s:e], 0, s, e)], [text]) for s, e in spans]
    features = encode_task(model, tokenizer, make_task(ProbeTaskType.SENTENCE_SPANS, items))
    for index, (start, end) in enumerate(spans):
        split, row = ("train", "dev", "test")[index % 3], index // 3
        tokens = tokens_of_chars(encoding, start, end)
        assert tokens, "the tokenizer must map these characters to tokens"
        expected = hidden[tokens].mean(0).numpy()
        np.testing.assert_allclose(features.splits[split][row], expected, rtol=1e-4, atol=1e-5)
    # a span of the same token without its first character pools the same token
    whole = encode_task(
        model,
        tokenizer,
        make_task(
            ProbeTaskType.SENTENCE_SPANS, [([Position("x", 0, first.start, first.end)], [text])]
        ),
    )
    np.testing.assert_allclose(whole.splits["train"][0], features.splits["train"][0], rtol=1e-5)


@pytest.mark.parametrize("family", ["tiny_bert", "tiny_gpt2"])
def test_batched_right_padding_matches_one_at_a_time(family, request):
    model, tokenizer = request.getfixturevalue(family)
    sentences = [
        "A cat.",
        "The old farmer watched the quiet horses today.",
        "Mary ran.",
        "Tom slept in the garden at night.",
    ]
    task = make_task(ProbeTaskType.SENTENCE, [([s], []) for s in sentences] * 3)
    batched = encode_task(model, tokenizer, task, batch_tokens=4096)
    single = encode_task(model, tokenizer, task, batch_tokens=1)  # one sequence per batch
    for split in ("train", "dev", "test"):
        np.testing.assert_allclose(
            batched.splits[split], single.splits[split], rtol=1e-4, atol=1e-5
        )
    hidden, _ = hidden_of(model, tokenizer, sentences[1])
    np.testing.assert_allclose(
        batched.splits["dev"][0], hidden.mean(0).numpy(), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("family, token", [("tiny_bert", "[SEP]"), ("tiny_gpt2", "<|endoftext|>")])
def test_pairs_bi_concatenate_and_cross_join_with_separator(family, token, request):
    model, tokenizer = request.getfixturevalue(family)
    assert pair_joiner(tokenizer) == f" {token} "
    a, b = "The dog ran.", "It was fast."
    bi = encode_task(
        model, tokenizer, make_task(ProbeTaskType.SENTENCE_PAIR_BI, [([a, b], [])] * 3)
    )
    cross = encode_task(
        model, tokenizer, make_task(ProbeTaskType.SENTENCE_PAIR_CROSS, [([a, b], [])] * 3)
    )
    hidden_a, _ = hidden_of(model, tokenizer, a)
    hidden_b, _ = hidden_of(model, tokenizer, b)
    width = hidden_a.shape[1]
    assert bi.n_features == 2 * width and cross.n_features == width
    np.testing.assert_allclose(
        bi.splits["train"][0, :width], hidden_a.mean(0), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        bi.splits["train"][0, width:], hidden_b.mean(0), rtol=1e-4, atol=1e-5
    )
    joined, encoding = hidden_of(model, tokenizer, f"{a} {token} {b}")
    assert tokenizer.convert_tokens_to_ids(token) in encoding["input_ids"]
    np.testing.assert_allclose(cross.splits["train"][0], joined.mean(0), rtol=1e-4, atol=1e-5)
    # pair tokens, cross: the second sentence's offsets are shifted past the joiner
    items = [([Position("dog", 0, 4, 7), Position("fast", 1, 7, 11)], [a, b])] * 3
    tokens = encode_task(
        model, tokenizer, make_task(ProbeTaskType.SENTENCE_PAIR_TOKENS_CROSS, items)
    )
    shift = len(a) + len(f" {token} ")
    expected = joined[tokens_of_chars(encoding, 7 + shift, 11 + shift)].mean(0)
    np.testing.assert_allclose(tokens.splits["train"][0, width:], expected, rtol=1e-4, atol=1e-5)


def test_layer_choice_eval_mode_and_cache(tiny_gpt2):
    model, tokenizer = tiny_gpt2
    task = make_task(ProbeTaskType.SENTENCE, [(["The cat sat."], []), (["A dog ran."], [])] * 3)
    model.train()
    last = encode_task(model, tokenizer, task)
    assert model.training, "the model's mode must be restored"
    embeddings = encode_task(model, tokenizer, task, layer=0)
    assert not np.allclose(last.splits["train"], embeddings.splits["train"])
    model.eval()
    cache = RepresentationCache()
    first = cache.features(model, tokenizer, [task])[0]
    assert cache.features(model, tokenizer, [task])[0] is first and len(cache) == 1
    key = model_state_key(model)
    parameter = next(model.parameters())
    with torch.no_grad():
        parameter.add_(0.5)
    try:
        assert model_state_key(model) != key
        changed = cache.features(model, tokenizer, [task])[0]
        assert changed is not first and len(cache) == 2
        assert not np.allclose(changed.splits["train"], first.splits["train"])
    finally:
        with torch.no_grad():
            parameter.sub_(0.5)
