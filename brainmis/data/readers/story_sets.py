"""Which stories each subject's runs are, for layouts where subjects heard different stories.

Narratives and LeBel subjects did not all hear the same stories. ``choose_stories`` picks them:

- ``shared`` (default): only the stories every chosen subject has, the same runs in the same
  order for all, so subjects share one stimulus timeline (what the predictive inter-subject
  noise ceiling of ``brainmis prepare`` and the cross-subject comparisons need);
- ``each``: every subject keeps all of its own stories (then prepare with
  ``--no-noise-ceiling`` or give ceiling files: the timelines differ).

``stories`` (a comma-separated option) restricts both to the named stories. Stories are in
natural order (``story2`` before ``story10``); fold ``k`` holds out the ``k``-th.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from brainmis.data.readers.file_names import natural_key
from brainmis.errors import BrainmisInputError

STORY_SETS = ("shared", "each")


def parse_story_list(value: str | None, source: Path | str | None) -> list[str] | None:
    """The ``stories`` option, ``"pieman, tunnel"`` -> ``["pieman", "tunnel"]`` (None: all)."""
    if value is None:
        return None
    stories = [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
    if not stories:
        raise BrainmisInputError(source, "option stories names no story")
    if len(set(stories)) != len(stories):
        raise BrainmisInputError(source, f"option stories repeats a story: {stories}")
    return stories


def choose_stories(
    available: Mapping[str, Sequence[str]],
    story_set: str,
    wanted: list[str] | None,
    source: Path | str | None,
) -> tuple[dict[str, list[str]], list[str]]:
    """Subject -> its stories (natural order), and notes on what was left out.

    Args:
        available: subject -> the stories with a response file (after any exclusions).
        story_set: ``shared`` or ``each`` (module docstring).
        wanted: only these stories (None: all).
        source: named in errors (the manifest or the source folder).
    """
    if story_set not in STORY_SETS:
        raise BrainmisInputError(
            source, f"option story_set must be one of {', '.join(STORY_SETS)}, got {story_set!r}"
        )
    everywhere = {story for stories in available.values() for story in stories}
    if wanted is not None:
        missing = [story for story in wanted if story not in everywhere]
        if missing:
            raise BrainmisInputError(
                source,
                f"option stories names {missing}, which no chosen subject has "
                f"(stories here: {sorted(everywhere, key=natural_key)})",
            )
    chosen: dict[str, list[str]] = {}
    notes: list[str] = []
    if story_set == "each":
        for subject, stories in available.items():
            kept = [story for story in stories if wanted is None or story in wanted]
            if not kept:
                raise BrainmisInputError(
                    source, f"subject {subject} has none of the chosen stories ({wanted})"
                )
            chosen[subject] = sorted(kept, key=natural_key)
        return chosen, notes
    shared = set.intersection(*(set(stories) for stories in available.values()))
    if wanted is not None:
        shared &= set(wanted)
    if not shared:
        per_subject = {subject: len(stories) for subject, stories in available.items()}
        raise BrainmisInputError(
            source,
            f"no story is shared by every chosen subject (stories per subject: {per_subject}); "
            "choose subjects that heard the same stories (--subjects), or set option "
            "story_set: each",
        )
    order = sorted(shared, key=natural_key)
    for subject, stories in available.items():
        candidates = set(stories) if wanted is None else set(stories) & set(wanted)
        left_out = sorted(candidates - shared, key=natural_key)
        if left_out:
            notes.append(
                f"subject {subject}: {len(left_out)} story(ies) not shared by every subject "
                f"left out ({', '.join(left_out)}); option story_set: each keeps them"
            )
        chosen[subject] = list(order)
    return chosen, notes
