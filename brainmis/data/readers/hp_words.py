"""Harry Potter words: markers and runs, shared by the array and the ``.mat`` readers.

The Wehbe et al. (2014) stimulus lists every RSVP item with its onset. Two markers are not
words of the text:

- ``+`` alone is a paragraph break (a fixation cross was shown): the entry is dropped.
- ``@`` before a word marks it as italic: the ``@`` is removed and the word kept.

Punctuation attached to words (``Dudley,``) is kept, as the models read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from brainmis.data.alignment import tr_of_words
from brainmis.errors import BrainmisInputError

PARAGRAPH_MARK = "+"
ITALIC_PREFIX = "@"


def clean_hp_words(words: np.ndarray, onsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop paragraph marks and strip italic prefixes.

    Args:
        words: ``(n_items,)`` str, the RSVP items.
        onsets: ``(n_items,)`` float seconds.

    Returns:
        ``(words, onsets)`` of the kept items: ``(n_words,)`` unicode and float64.
    """
    kept_words: list[str] = []
    kept_onsets: list[float] = []
    for word, onset in zip(words, onsets, strict=True):
        text = str(word).strip()
        if text == PARAGRAPH_MARK:
            continue
        text = text.removeprefix(ITALIC_PREFIX).strip()
        if not text:
            continue
        kept_words.append(text)
        kept_onsets.append(float(onset))
    return np.array(kept_words, dtype=str), np.array(kept_onsets, dtype=np.float64)


def split_words_by_run(
    path: Path,
    run_tr_times: Sequence[np.ndarray],
    tr: float,
    words: np.ndarray,
    onsets: np.ndarray,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Give each run the words whose onset lies in one of its TRs.

    HP time stamps run on one clock over the whole session, so a word belongs to the run
    whose span ``(tr_times[0] - tr, tr_times[-1]]`` contains its onset.

    Args:
        path: the words file, named in errors.
        run_tr_times: per run, ``(n_TR,)`` increasing seconds.
        tr: seconds.
        words: ``(n_words,)`` cleaned words; onsets ``(n_words,)`` non-decreasing seconds.

    Returns:
        Per run, ``(words, onsets)``. A word in no run raises ``BrainmisInputError``.
    """
    owner = np.full(len(onsets), -1, dtype=np.int64)
    for index, tr_times in enumerate(run_tr_times):
        inside = tr_of_words(tr_times, tr, onsets) >= 0
        owner[inside & (owner < 0)] = index
    orphans = np.flatnonzero(owner < 0)
    if orphans.size:
        i = int(orphans[0])
        raise BrainmisInputError(
            path,
            f"{orphans.size} word(s) lie outside every run, first {str(words[i])!r} at "
            f"{onsets[i]:g} s; check the word times against time_fmri/runs_fmri",
        )
    return [(words[owner == index], onsets[owner == index]) for index in range(len(run_tr_times))]
