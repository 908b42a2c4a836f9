"""Tokenizing windows: group ids from offsets, special tokens, BOS, left truncation, collate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer
from window_fixtures import bert_like_tokenizer, gpt2_like_tokenizer

from brainmis.data.window_tokens import (
    PaddedWindows,
    WindowCollator,
    pad_token_id,
    special_token_to_prepend,
    tokenize_windows,
    window_text,
)
from brainmis.errors import BrainmisInputError


@pytest.fixture(scope="module")
def bert_tok(tmp_path_factory):
    return AutoTokenizer.from_pretrained(bert_like_tokenizer(tmp_path_factory.mktemp("bert")))


@pytest.fixture(scope="module")
def gpt2_tok(tmp_path_factory):
    return AutoTokenizer.from_pretrained(gpt2_like_tokenizer(tmp_path_factory.mktemp("gpt2")))


WINDOW = ((), ("the", "owl"), (), ("flew",), ("over", "town."))


def test_window_text_marks_the_group_of_every_character():
    text, groups = window_text(WINDOW)
    assert text == "the owl flew over town."
    assert groups.tolist() == (
        [1, 1, 1, -1, 1, 1, 1, -1] + [3] * 4 + [-1] + [4] * 4 + [-1] + [4] * 5
    )
    assert window_text(((), ())) == ("", pytest.approx(np.zeros(0)))
    assert window_text((("  a ", ""),))[0] == "a"  # words stripped, empty words dropped


def test_bert_like_group_ids_match_the_words(bert_tok):
    (window,) = tokenize_windows(bert_tok, [WINDOW], max_length=64)
    tokens = bert_tok.convert_ids_to_tokens(window.input_ids.tolist())
    assert tokens == ["[CLS]", "the", "owl", "flew", "over", "town", ".", "[SEP]"]
    assert window.group_ids.tolist() == [-1, 1, 1, 3, 4, 4, 4, -1]
    assert window.input_ids.dtype == np.int64 and window.group_ids.dtype == np.int64
    assert special_token_to_prepend(bert_tok) is None


def test_empty_window_keeps_the_special_tokens(bert_tok, gpt2_tok):
    (bert,) = tokenize_windows(bert_tok, [((), (), ())], max_length=8)
    assert bert_tok.convert_ids_to_tokens(bert.input_ids.tolist()) == ["[CLS]", "[SEP]"]
    assert bert.group_ids.tolist() == [-1, -1]
    (gpt,) = tokenize_windows(gpt2_tok, [((), (), ())], max_length=8)
    assert gpt.input_ids.tolist() == [gpt2_tok.bos_token_id] and gpt.group_ids.tolist() == [-1]


def test_gpt2_like_gets_bos_and_every_group_decodes_to_its_words(gpt2_tok):
    windows = [WINDOW, (("a", "small", "boy"), ("watched",), ("the", "owl,"), (), ("smiled!",))]
    for groups, window in zip(windows, tokenize_windows(gpt2_tok, windows, 64), strict=True):
        assert window.input_ids[0] == gpt2_tok.bos_token_id and window.group_ids[0] == -1
        assert np.all(window.group_ids[1:] >= 0)
        assert np.all(np.diff(window.group_ids[1:]) >= 0)  # groups in order
        for index, words in enumerate(groups):
            ids = window.input_ids[window.group_ids == index].tolist()
            assert gpt2_tok.decode(ids).strip() == " ".join(words)


def test_truncation_drops_the_oldest_words_and_keeps_specials(bert_tok, gpt2_tok):
    (bert,) = tokenize_windows(bert_tok, [WINDOW], max_length=5)
    assert bert_tok.convert_ids_to_tokens(bert.input_ids.tolist()) == [
        "[CLS]",
        "over",
        "town",
        ".",
        "[SEP]",
    ]
    assert bert.group_ids.tolist() == [-1, 4, 4, 4, -1]
    (full,) = tokenize_windows(gpt2_tok, [WINDOW], max_length=64)
    (cut,) = tokenize_windows(gpt2_tok, [WINDOW], max_length=4)
    assert len(cut.input_ids) == 4
    assert cut.input_ids[0] == gpt2_tok.bos_token_id
    assert cut.input_ids[1:].tolist() == full.input_ids[-3:].tolist()
    assert cut.group_ids[-1] == 4


def test_max_length_without_room_for_words_is_refused(bert_tok):
    with pytest.raises(BrainmisInputError, match="max_length 2"):
        tokenize_windows(bert_tok, [WINDOW], max_length=2)


def test_collate_pads_to_the_longest(bert_tok, gpt2_tok):
    windows = tokenize_windows(bert_tok, [WINDOW, ((), (), (), (), ("owl",))], 64)
    items = [
        {
            "input_ids": w.input_ids,
            "group_ids": w.group_ids,
            "targets": np.full(3, k, np.float32),
            "sample_id": 7 + k,
        }
        for k, w in enumerate(windows)
    ]
    batch = WindowCollator(pad_token_id(bert_tok))(items)
    assert set(batch) == {"input_ids", "attention_mask", "group_ids", "targets", "sample_ids"}
    assert batch["input_ids"].shape == (2, 8) and batch["input_ids"].dtype == torch.long
    assert batch["attention_mask"].dtype == torch.long and batch["group_ids"].dtype == torch.long
    assert batch["targets"].dtype == torch.float32 and batch["targets"].shape == (2, 3)
    assert batch["sample_ids"].tolist() == [7, 8] and batch["sample_ids"].dtype == torch.long
    assert batch["attention_mask"][1].tolist() == [1, 1, 1] + [0] * 5
    assert batch["input_ids"][1, 3:].tolist() == [bert_tok.pad_token_id] * 5
    assert batch["group_ids"][1].tolist() == [-1, 4, -1] + [-1] * 5


def test_pad_falls_back_to_eos(gpt2_tok):
    assert gpt2_tok.pad_token_id is None
    assert pad_token_id(gpt2_tok) == gpt2_tok.eos_token_id


def test_padded_batches_equal_collated_items(gpt2_tok):
    windows = tokenize_windows(
        gpt2_tok, [WINDOW, ((), ("owl",)), (("the", "quiet", "town"),), ((),)], 64
    )
    padded = PaddedWindows.from_windows(windows, pad_token_id(gpt2_tok))
    assert padded.lengths.tolist() == [len(w.input_ids) for w in windows]
    rows = np.array([3, 1, 2])
    targets = np.arange(6, dtype=np.float32).reshape(3, 2)
    items = [
        {
            "input_ids": windows[r].input_ids,
            "group_ids": windows[r].group_ids,
            "targets": targets[k],
            "sample_id": r,
        }
        for k, r in enumerate(rows)
    ]
    collate = WindowCollator(pad_token_id(gpt2_tok))
    expected = collate(items)
    batch = padded.batch(rows, targets, rows)
    assert batch.keys() == expected.keys()
    for key in expected:
        assert batch[key].dtype == expected[key].dtype
        assert torch.equal(batch[key], expected[key]), key
    assert batch["input_ids"].shape[1] == max(len(windows[r].input_ids) for r in rows)
    assert collate(batch) is batch  # an assembled batch passes through
