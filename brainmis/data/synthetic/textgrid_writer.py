"""Write Praat TextGrid files (interval tiers) in the long or the short text format.

Used by the synthetic Moth and LeBel layouts and by reader tests; ``write_story_textgrid``
writes a timed story (a ``StimulusRun``) as a word tier (pauses labelled ``sp`` or empty)
and a crude phone tier. An interval is
``(xmin_seconds, xmax_seconds, text)``; gaps between the given intervals of a tier are
filled with empty intervals so that every tier covers ``[xmin, xmax]`` without holes, as
Praat requires.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brainmis.data.synthetic.stimulus import StimulusRun

Interval = tuple[float, float, str]
SILENCE_SHORT = "sp"  # pauses shorter than SHORT_PAUSE_S are labelled "sp", longer ones ""
SHORT_PAUSE_S = 0.6


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _number(value: float) -> str:
    return repr(round(float(value), 6))


def fill_gaps(intervals: list[Interval], xmin: float, xmax: float) -> list[Interval]:
    """Return intervals covering ``[xmin, xmax]``: gaps become ``""`` intervals.

    Raises ValueError when intervals overlap, run backwards or leave ``[xmin, xmax]``.
    """
    filled: list[Interval] = []
    cursor = xmin
    for start, stop, text in intervals:
        if stop <= start or start < cursor - 1e-9 or stop > xmax + 1e-9:
            raise ValueError(f"interval ({start}, {stop}, {text!r}) overlaps or is out of range")
        if start > cursor + 1e-9:
            filled.append((cursor, start, ""))
        filled.append((max(start, cursor), stop, text))
        cursor = stop
    if cursor < xmax - 1e-9:
        filled.append((cursor, xmax, ""))
    return filled


def textgrid_text(
    tiers: dict[str, list[Interval]],
    xmax: float,
    xmin: float = 0.0,
    short_format: bool = False,
) -> str:
    """The TextGrid file content for interval ``tiers`` (tier name -> intervals in order)."""
    filled = {name: fill_gaps(intervals, xmin, xmax) for name, intervals in tiers.items()}
    if short_format:
        lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', ""]
        lines += [_number(xmin), _number(xmax), "<exists>", str(len(filled))]
        for name, intervals in filled.items():
            lines += ['"IntervalTier"', _quote(name), _number(xmin), _number(xmax)]
            lines.append(str(len(intervals)))
            for start, stop, text in intervals:
                lines += [_number(start), _number(stop), _quote(text)]
        return "\n".join(lines) + "\n"
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', ""]
    lines += [f"xmin = {_number(xmin)} ", f"xmax = {_number(xmax)} ", "tiers? <exists> "]
    lines += [f"size = {len(filled)} ", "item []: "]
    for tier_index, (name, intervals) in enumerate(filled.items(), start=1):
        lines += [f"    item [{tier_index}]:", '        class = "IntervalTier" ']
        lines += [f"        name = {_quote(name)} "]
        lines += [f"        xmin = {_number(xmin)} ", f"        xmax = {_number(xmax)} "]
        lines.append(f"        intervals: size = {len(intervals)} ")
        for interval_index, (start, stop, text) in enumerate(intervals, start=1):
            lines.append(f"        intervals [{interval_index}]:")
            lines.append(f"            xmin = {_number(start)} ")
            lines.append(f"            xmax = {_number(stop)} ")
            lines.append(f"            text = {_quote(text)} ")
    return "\n".join(lines) + "\n"


def write_textgrid(
    path: str | Path,
    tiers: dict[str, list[Interval]],
    xmax: float,
    xmin: float = 0.0,
    short_format: bool = False,
) -> Path:
    """Write a TextGrid with the given interval tiers; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textgrid_text(tiers, xmax, xmin, short_format), encoding="utf-8")
    return path


def story_intervals(run: StimulusRun) -> list[tuple[float, float, str]]:
    """Word intervals of a story with the pauses between words labelled as silences."""
    intervals: list[tuple[float, float, str]] = []
    cursor = 0.0
    for word, onset, duration in zip(run.tokens, run.onsets, run.durations, strict=True):
        if onset > cursor + 1e-6:
            gap = onset - cursor
            intervals.append((cursor, float(onset), SILENCE_SHORT if gap < SHORT_PAUSE_S else ""))
        intervals.append((float(onset), float(onset + duration), word))
        cursor = float(onset + duration)
    return intervals


def phone_intervals(words: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """A crude phone tier: each word interval split evenly over its letters (upper case)."""
    phones: list[tuple[float, float, str]] = []
    for start, stop, text in words:
        letters = [character.upper() for character in text if character.isalpha()]
        if not letters or text == SILENCE_SHORT:
            phones.append((start, stop, "sp" if text else ""))
            continue
        edges = np.linspace(start, stop, len(letters) + 1)
        phones += [
            (float(a), float(b), p) for a, b, p in zip(edges[:-1], edges[1:], letters, strict=True)
        ]
    return phones


def write_story_textgrid(run: StimulusRun, path: Path, short_format: bool = False) -> None:
    """A story's TextGrid: tiers ``phone`` and ``word``, on the clock of ``run.onsets``."""
    words = story_intervals(run)
    xmax = max(float(run.tr_times[-1]), words[-1][1] + 1.0)  # the audio outlasts the words
    tiers = {"phone": phone_intervals(words), "word": words}
    write_textgrid(path, tiers, xmax=xmax, short_format=short_format)
