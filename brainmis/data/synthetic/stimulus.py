"""Stimulus timelines for synthetic datasets: which word is shown or heard when, per run.

The text (by default the project's narrative) is cut into runs at paragraph boundaries, then
timed in one of two ways:

- ``rsvp_runs``: rapid serial visual presentation as in the Harry Potter experiment, one
  item every ``word_s`` seconds, a ``+`` item at each paragraph break, a few words marked as
  italic with a leading ``@``; TR time stamps run on one clock across all runs.
- ``spoken_runs``: natural word durations (about 0.2-0.6 s, longer words last longer) with
  short pauses inside sentences and longer ones between sentences and paragraphs, as in a
  story read aloud (Moth, generic NIfTI); times are seconds from the start of each run.

Both return ``StimulusRun`` records; which TRs are kept (``kept_trs``) follows the trimming
of the layout. Nothing here knows about voxels.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from brainmis.data.synthetic.word_categories import normalize_word
from brainmis.errors import BrainmisInputError

PARAGRAPH_MARKER = "+"
ITALIC_PREFIX = "@"
_SENTENCE_END = (".", "!", "?", '."', '!"', '?"', ".'")
_CLAUSE_END = (",", ";", ":", ',"')


@dataclass
class StimulusRun:
    """The timed stimulus of one run.

    Attributes:
        name: run name as the layout's reader reports it (``run1``, ``story_03``).
        tr_times: ``(n_TR,)`` float64 seconds, every TR of the run, trimmed ones included.
        kept_trs: ``(n_kept,)`` int64 indices into ``tr_times`` of the TRs that have data.
        tokens: presented items in order, as written to disk (markers included).
        onsets: ``(n_tokens,)`` float64 seconds, same clock as ``tr_times``.
        durations: ``(n_tokens,)`` float64 seconds.
        is_word: ``(n_tokens,)`` bool, False for markers such as ``+`` (they drive no signal).
    """

    name: str
    tr_times: np.ndarray
    kept_trs: np.ndarray
    tokens: list[str]
    onsets: np.ndarray
    durations: np.ndarray
    is_word: np.ndarray

    @property
    def words(self) -> list[str]:
        """The tokens that are words, markers removed."""
        return [token for token, word in zip(self.tokens, self.is_word, strict=True) if word]


def default_text_path() -> Path:
    """The project's narrative (``narrative.txt`` beside this module), shipped as package data."""
    return Path(str(resources.files("brainmis.data.synthetic").joinpath("narrative.txt")))


def load_paragraphs(
    path: str | Path | None = None, max_words: int | None = None
) -> list[list[str]]:
    """Read a plain text as paragraphs (blank-line separated) of whitespace-split words.

    ``max_words`` keeps only the first that many words (for small test datasets).
    """
    path = default_text_path() if path is None else Path(path)
    if not path.is_file():
        raise BrainmisInputError(path, "text file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise BrainmisInputError(path, f"text is not UTF-8 ({error.reason})") from None
    paragraphs = [block.split() for block in text.split("\n\n")]
    paragraphs = [words for words in paragraphs if words]
    if max_words is not None:
        kept: list[list[str]] = []
        remaining = max_words
        for words in paragraphs:
            if remaining <= 0:
                break
            kept.append(words[:remaining])
            remaining -= len(kept[-1])
        paragraphs = kept
    if not paragraphs:
        raise BrainmisInputError(path, "text has no words")
    return paragraphs


def split_into_runs(
    paragraphs: list[list[str]], n_runs: int, source: str | Path | None = None
) -> list[list[list[str]]]:
    """Cut paragraphs into ``n_runs`` consecutive chunks of about equal word counts.

    Cuts fall on the paragraph boundary nearest to each equal-share point; where no boundary
    is available (very long paragraphs) a paragraph is cut between words. ``source`` (the
    text file) is named in errors.
    """
    words = [word for paragraph in paragraphs for word in paragraph]
    paragraph_of_word = np.repeat(np.arange(len(paragraphs)), [len(p) for p in paragraphs])
    n_words = len(words)
    if n_runs < 1 or n_words < 4 * n_runs:
        raise BrainmisInputError(source, f"{n_words} words are too few for {n_runs} runs")
    boundaries = np.flatnonzero(np.diff(paragraph_of_word)) + 1  # word index starting a paragraph
    cuts = [0]
    for k in range(1, n_runs):
        ideal = k * n_words / n_runs
        upper_limit = n_words - 2 * (n_runs - k)  # leave words for the remaining runs
        candidates = boundaries[(boundaries > cuts[-1] + 1) & (boundaries <= upper_limit)]
        tolerance = 0.25 * n_words / n_runs
        if candidates.size and np.min(np.abs(candidates - ideal)) <= tolerance:
            cuts.append(int(candidates[np.argmin(np.abs(candidates - ideal))]))
        else:
            cuts.append(int(min(max(round(ideal), cuts[-1] + 2), upper_limit)))
    cuts.append(n_words)
    runs = []
    for start, stop in zip(cuts[:-1], cuts[1:], strict=True):
        chunk: list[list[str]] = []
        for index in range(start, stop):
            if index == start or paragraph_of_word[index] != paragraph_of_word[index - 1]:
                chunk.append([])
            chunk[-1].append(words[index])
        runs.append(chunk)
    return runs


def _kept_trs(name: str, n_tr: int, trim_start: int, trim_end: int) -> np.ndarray:
    n_kept = n_tr - trim_start - trim_end
    if n_kept < 4:
        raise BrainmisInputError(
            None,
            f"run {name} has {n_tr} TRs, too few for trimming {trim_start}+{trim_end}; "
            "use more words per run or fewer runs",
        )
    return np.arange(trim_start, n_tr - trim_end, dtype=np.int64)


def rsvp_runs(
    chunks: list[list[list[str]]],
    rng: np.random.Generator,
    tr: float = 2.0,
    word_s: float = 0.5,
    lead_in_s: float = 20.0,
    tail_s: float = 20.0,
    trim_start: int = 20,
    trim_end: int = 15,
    italic_fraction: float = 0.02,
) -> list[StimulusRun]:
    """Harry Potter style RSVP timing on one clock that continues across runs.

    Each run starts with ``lead_in_s`` seconds of rest, shows one item every ``word_s``
    seconds (words, and a ``+`` before every paragraph but the run's first), and ends with
    ``tail_s`` seconds of rest. Run ``r``'s first TR is stamped one TR after run ``r-1``'s
    last, and the first TR of the first run at 0 s.
    """
    runs = []
    clock = 0.0
    for index, chunk in enumerate(chunks):
        name = f"run{index + 1}"
        tokens: list[str] = []
        is_word: list[bool] = []
        for paragraph_index, paragraph in enumerate(chunk):
            if paragraph_index > 0:
                tokens.append(PARAGRAPH_MARKER)
                is_word.append(False)
            for word in paragraph:
                italic = rng.random() < italic_fraction
                tokens.append(ITALIC_PREFIX + word if italic else word)
                is_word.append(True)
        n_tr = int(np.ceil((lead_in_s + len(tokens) * word_s + tail_s) / tr))
        tr_times = clock + np.arange(n_tr, dtype=np.float64) * tr
        onsets = clock + lead_in_s + np.arange(len(tokens), dtype=np.float64) * word_s
        runs.append(
            StimulusRun(
                name=name,
                tr_times=tr_times,
                kept_trs=_kept_trs(name, n_tr, trim_start, trim_end),
                tokens=tokens,
                onsets=onsets,
                durations=np.full(len(tokens), word_s),
                is_word=np.array(is_word, dtype=bool),
            )
        )
        clock = float(tr_times[-1]) + tr
    return runs


def spoken_runs(
    chunks: list[list[list[str]]],
    rng: np.random.Generator,
    run_names: list[str],
    tr: float,
    lead_in_s: float = 10.0,
    tail_s: float = 12.0,
    trim_start: int = 0,
    trim_end: int = 0,
    lowercase: bool = True,
) -> list[StimulusRun]:
    """Natural speech timing, each run on its own clock starting at 0 s.

    A word lasts ``0.13 + 0.055 * letters`` seconds plus jitter, clipped to 0.2-0.6 s. Words
    follow each other directly or after a short pause; clause ends add 0.1-0.3 s, sentence
    ends 0.25-0.7 s, paragraph ends 0.8-1.5 s. With ``lowercase`` words are written as a
    transcript would (lower case, no surrounding punctuation); otherwise as printed, minus
    double quotes. Tokens that are only punctuation are dropped.
    """
    runs = []
    for name, chunk in zip(run_names, chunks, strict=True):
        tokens: list[str] = []
        onsets: list[float] = []
        durations: list[float] = []
        clock = lead_in_s
        for paragraph in chunk:
            for position, word in enumerate(paragraph):
                if not normalize_word(word):
                    continue
                shown = normalize_word(word) if lowercase else word.replace('"', "")
                letters = sum(character.isalnum() for character in word)
                duration = float(np.clip(0.13 + 0.055 * letters + rng.normal(0, 0.04), 0.2, 0.6))
                tokens.append(shown)
                onsets.append(round(clock, 4))
                durations.append(round(duration, 4))
                clock = onsets[-1] + durations[-1]
                if position == len(paragraph) - 1:
                    clock += rng.uniform(0.8, 1.5)
                elif word.endswith(_SENTENCE_END):
                    clock += rng.uniform(0.25, 0.7)
                elif word.endswith(_CLAUSE_END):
                    clock += rng.uniform(0.1, 0.3)
                elif rng.random() < 0.2:
                    clock += rng.uniform(0.05, 0.2)
        n_tr = int(np.ceil((clock + tail_s) / tr))
        runs.append(
            StimulusRun(
                name=name,
                tr_times=np.arange(n_tr, dtype=np.float64) * tr,
                kept_trs=_kept_trs(name, n_tr, trim_start, trim_end),
                tokens=tokens,
                onsets=np.array(onsets, dtype=np.float64),
                durations=np.array(durations, dtype=np.float64),
                is_word=np.ones(len(tokens), dtype=bool),
            )
        )
    return runs
