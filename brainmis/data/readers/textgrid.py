"""Praat TextGrid files (long and short text formats) and the words of their word tier.

Both text formats carry the same sequence of values; the long one names them
(``xmin = 0``, ``intervals [1]:``), the short one lists them bare. This reader scans the file
into its values (quoted strings, numbers, ``<exists>`` flags), skipping names and bracketed
indices, and then reads one grammar for both:

    "ooTextFile" "TextGrid" xmin xmax <exists> n_tiers
    per tier: "IntervalTier" name xmin xmax n, then n x (xmin xmax text)
          or: "TextTier"     name xmin xmax n, then n x (time mark)

Files may be UTF-8 (with or without BOM) or UTF-16 (with BOM), as Praat writes them.
In the word tier, silences and noise marks are not words: empty text, ``sp``, ``sil``,
``spn`` (any case) and any mark wholly in braces or angle brackets (``{SL}``, ``{LG}``,
``<sil>``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainmis.errors import BrainmisInputError

WORD_TIER_NAMES = ("word", "words")
SILENCE_MARKS = frozenset({"", "sp", "sil", "spn"})
BRACKETED_MARK = re.compile(r"^(\{[^{}]*\}|<[^<>]*>)$")

TOKEN = re.compile(
    r'"(?P<string>(?:[^"]|"")*)"'
    r"|(?P<flag><exists>|<absent>)"
    r"|(?P<index>\[\s*\d*\s*\])"
    r"|(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z_0-9?]*)"
    r"|(?P<space>[\s=:]+)"
    r"|(?P<comment>![^\n]*)"
)


@dataclass(frozen=True)
class Interval:
    """One labelled stretch of a tier, in seconds (a point tier has ``start == end``)."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Tier:
    name: str
    kind: str  # "IntervalTier" or "TextTier"
    intervals: list[Interval]


def is_silence(text: str) -> bool:
    """True for silence or noise marks that are not words."""
    stripped = text.strip()
    return stripped.lower() in SILENCE_MARKS or bool(BRACKETED_MARK.match(stripped))


def decode_text_file(path: Path) -> str:
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    if raw.startswith(b"ooBinaryFile"):
        raise BrainmisInputError(path, "binary TextGrid files are not supported; save as text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def scan_values(path: Path, text: str) -> list[tuple[str, object]]:
    """The values of a TextGrid file in order: ``("string"|"number"|"flag", value)``."""
    values: list[tuple[str, object]] = []
    position = 0
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None:
            line = text.count("\n", 0, position) + 1
            raise BrainmisInputError(
                path, f"not a Praat TextGrid: unexpected {text[position]!r} on line {line}"
            )
        kind = match.lastgroup
        if kind == "string":
            values.append(("string", match.group("string").replace('""', '"')))
        elif kind == "number":
            values.append(("number", float(match.group("number"))))
        elif kind == "flag":
            values.append(("flag", match.group("flag") == "<exists>"))
        position = match.end()
    return values


class ValueReader:
    """Reads typed values off the scanned sequence, with errors naming the file."""

    def __init__(self, path: Path, values: list[tuple[str, object]]):
        self.path, self.values, self.position = path, values, 0

    def take(self, kind: str, what: str) -> object:
        if self.position >= len(self.values):
            raise BrainmisInputError(self.path, f"TextGrid ends early: expected {what}")
        found_kind, value = self.values[self.position]
        if found_kind != kind:
            raise BrainmisInputError(
                self.path, f"malformed TextGrid: expected {what}, found {value!r}"
            )
        self.position += 1
        return value

    def number(self, what: str) -> float:
        return float(self.take("number", what))  # type: ignore[arg-type]

    def count(self, what: str) -> int:
        value = self.number(what)
        if value < 0 or not value.is_integer():
            raise BrainmisInputError(self.path, f"malformed TextGrid: {what} is {value:g}")
        return int(value)

    def string(self, what: str) -> str:
        return str(self.take("string", what))


def read_textgrid(path: Path) -> list[Tier]:
    """Every tier of a TextGrid file, long or short text format."""
    path = Path(path)
    if not path.is_file():
        raise BrainmisInputError(path, "missing file (Praat TextGrid)")
    reader = ValueReader(path, scan_values(path, decode_text_file(path)))
    if reader.string("file type") != "ooTextFile" or reader.string("object class") != "TextGrid":
        raise BrainmisInputError(path, "not a Praat TextGrid (expected ooTextFile / TextGrid)")
    reader.number("xmin")
    reader.number("xmax")
    if not reader.take("flag", "<exists>"):
        return []
    tiers = []
    for _ in range(reader.count("number of tiers")):
        kind = reader.string("tier class")
        name = reader.string("tier name")
        reader.number("tier xmin")
        reader.number("tier xmax")
        intervals = []
        for _ in range(reader.count(f"number of items in tier {name!r}")):
            if kind == "IntervalTier":
                start, end = reader.number("interval xmin"), reader.number("interval xmax")
            elif kind == "TextTier":
                start = end = reader.number("point time")
            else:
                raise BrainmisInputError(path, f"unknown tier class {kind!r}")
            intervals.append(Interval(start, end, reader.string("interval text")))
        tiers.append(Tier(name, kind, intervals))
    return tiers


def read_textgrid_words(path: Path, tier_name: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Words and onsets of the word tier.

    Args:
        path: the TextGrid file.
        tier_name: the tier to read; default the first tier named ``word`` or ``words``
            (any case).

    Returns:
        ``(words (n_words,) unicode, onsets (n_words,) float64 seconds)``, silences left out.
    """
    path = Path(path)
    tiers = read_textgrid(path)
    wanted = (tier_name.lower(),) if tier_name else WORD_TIER_NAMES
    tier = next((t for t in tiers if t.name.strip().lower() in wanted), None)
    if tier is None:
        raise BrainmisInputError(
            path,
            f"no word tier named {' or '.join(map(repr, wanted))} "
            f"(tiers: {[t.name for t in tiers]})",
        )
    words, onsets = [], []
    previous_start = -np.inf
    for interval in tier.intervals:
        if interval.end < interval.start or interval.start < previous_start:
            raise BrainmisInputError(
                path,
                f"tier {tier.name!r}: interval times are not increasing at "
                f"{interval.start:g} s ({interval.text!r})",
            )
        previous_start = interval.start
        if is_silence(interval.text):
            continue
        words.append(interval.text.strip())
        onsets.append(interval.start)
    return np.array(words, dtype=str), np.array(onsets, dtype=np.float64)
