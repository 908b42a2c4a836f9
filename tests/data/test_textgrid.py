"""Praat TextGrid reading: long and short text formats, point tiers, silences, encodings."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_sources import STORY_ONSETS, STORY_WORDS, story_textgrid, textgrid_long, textgrid_short

from brainmis.data.readers.textgrid import (
    Interval,
    is_silence,
    read_textgrid,
    read_textgrid_words,
)
from brainmis.errors import BrainmisInputError

MIXED_TIERS = [
    ("IntervalTier", "words", [(0.0, 0.5, 'say "hi"'), (0.5, 1.25, ""), (1.25, 2.0, "né")]),
    ("TextTier", "events", [(0.3, "beep"), (1.7, "click")]),
]


@pytest.mark.parametrize("writer", [textgrid_long, textgrid_short], ids=["long", "short"])
def test_both_formats_give_the_same_tiers(tmp_path, writer):
    path = tmp_path / "mixed.TextGrid"
    path.write_text(writer(MIXED_TIERS, 2.0), encoding="utf-8")
    tiers = read_textgrid(path)
    assert [(t.name, t.kind) for t in tiers] == [
        ("words", "IntervalTier"),
        ("events", "TextTier"),
    ]
    assert tiers[0].intervals == [
        Interval(0.0, 0.5, 'say "hi"'),  # doubled quotes are one quote
        Interval(0.5, 1.25, ""),
        Interval(1.25, 2.0, "né"),
    ]
    assert tiers[1].intervals == [Interval(0.3, 0.3, "beep"), Interval(1.7, 1.7, "click")]


@pytest.mark.parametrize("short", [False, True], ids=["long", "short"])
def test_word_tier_leaves_out_silences(tmp_path, short):
    path = tmp_path / "story.TextGrid"
    path.write_text(story_textgrid(short=short), encoding="utf-8")
    words, onsets = read_textgrid_words(path)
    assert words.tolist() == STORY_WORDS
    np.testing.assert_array_equal(onsets, STORY_ONSETS)
    assert words.dtype.kind == "U" and onsets.dtype == np.float64


def test_utf16_file_with_bom(tmp_path):
    path = tmp_path / "story.TextGrid"
    path.write_bytes(story_textgrid().encode("utf-16"))
    assert read_textgrid_words(path)[0].tolist() == STORY_WORDS


def test_named_word_tier(tmp_path):
    path = tmp_path / "story.TextGrid"
    path.write_text(story_textgrid(word_tier="lexical"), encoding="utf-8")
    assert read_textgrid_words(path, tier_name="lexical")[0].tolist() == STORY_WORDS


@pytest.mark.parametrize(
    "text, silent",
    [
        ("", True),
        ("  ", True),
        ("sp", True),
        ("SIL", True),
        ("{SL}", True),
        ("{LG}", True),
        ("<sil>", True),
        ("spot", False),
        ("{word", False),
        ("I", False),
    ],
)
def test_silence_marks(text, silent):
    assert is_silence(text) is silent


def test_no_word_tier_names_the_file_and_the_tiers(tmp_path):
    path = tmp_path / "phones.TextGrid"
    path.write_text(textgrid_long([("IntervalTier", "phone", [(0, 1, "AH")])], 1.0))
    with pytest.raises(BrainmisInputError, match=r"phones\.TextGrid: no word tier.*phone"):
        read_textgrid_words(path)


def test_truncated_file(tmp_path):
    path = tmp_path / "cut.TextGrid"
    text = story_textgrid()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(BrainmisInputError, match=r"cut\.TextGrid: "):
        read_textgrid(path)


def test_not_a_textgrid(tmp_path):
    path = tmp_path / "other.TextGrid"
    path.write_text('File type = "ooTextFile"\nObject class = "PitchTier"\n0\n1\n')
    with pytest.raises(BrainmisInputError, match="not a Praat TextGrid"):
        read_textgrid(path)


def test_decreasing_word_times(tmp_path):
    path = tmp_path / "bad.TextGrid"
    tiers = [("IntervalTier", "word", [(1.0, 1.5, "b"), (0.2, 0.5, "a")])]
    path.write_text(textgrid_short(tiers, 2.0))
    with pytest.raises(BrainmisInputError, match=r"bad\.TextGrid: .*not increasing"):
        read_textgrid_words(path)


@pytest.mark.parametrize("short", [False, True], ids=["long", "short"])
def test_project_writer_output_is_read(tmp_path, short):
    """The synthetic generator's TextGrid writer and this reader agree."""
    from brainmis.data.synthetic.textgrid_writer import write_textgrid

    path = write_textgrid(
        tmp_path / "w.TextGrid",
        {"phone": [(0.5, 1.5, "HH")], "word": [(0.5, 0.9, "hello"), (1.2, 1.5, "world")]},
        2.0,
        short_format=short,
    )
    words, onsets = read_textgrid_words(path)
    assert words.tolist() == ["hello", "world"]
    np.testing.assert_allclose(onsets, [0.5, 1.2])
