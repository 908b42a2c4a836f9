"""Small semantic lexicons: which words belong to which broad meaning category.

The synthetic brain of ``brainmis.data.synthetic.simulation`` responds to a few semantic
axes of the words it reads (one axis per category below), so that the brain signal is a
low-dimensional property of words that a language model can keep or drop without losing
word identity.
The lexicons cover the vocabulary of the project's narrative (``narrative.txt``); words are
matched after ``normalize_word`` (lower case, surrounding punctuation and markers removed).
"""

from __future__ import annotations

import re

CATEGORY_LEXICONS: dict[str, frozenset[str]] = {
    "emotion": frozenset(
        """
        afraid ashamed calm cried crying enormous frightened furious happy
        hungry joke joking laughed laughing proud restless sadness seriously
        shy smile smiled smiling sore strange tired worried wild wrong gentle gently good
        heart hearts quiet strict busy soft felt feel feeling
        """.split()
    ),
    "motion": frozenset(
        """
        climb climbed crept falling flew following jumped knelt move moving
        pull pulled pulling push pushed pushing ran running rising rocking rolled rolling
        run rubbed shook swinging swung thrown turn turned turning walk walked waving waved
        wave waves carry carried grabbed raised pressed came come went arrive arrived
        reached stood sat stand standing sit sitting tied wound started start
        """.split()
    ),
    "people": frozenset(
        """
        mara tobias quill pell dunmore odile marsh fenwick jory col harlan brothers brother
        grandfather father mother boy woman man men people passengers fishermen fisherman
        sailors sellers schoolteacher keeper ferryman master somebody someone anybody
        anyone everyone nobody crowd figure figures miss biscuit dog
        """.split()
    ),
    "place": frozenset(
        """
        harbor town wrenmouth lighthouse bakery market bridge stream hill workshop kitchen
        house room dock wall sea bay rocks water garden school stairs steps step floor door
        doors window roofs north mouth countries cities capital rivers mountains sky home
        top bottom beyond inside
        """.split()
    ),
    "number": frozenset(
        """
        one two three four five six seven eight ten eleven twelve seventeen twenty thirty
        forty fifty sixty ninety hundred fifty-one ninety-two first second third fourth
        once twice hour hours minute minutes day days o'clock noon monday wednesday friday
        november years time times dawn morning evening afternoon tomorrow today late
        """.split()
    ),
    "sensory": frozenset(
        """
        bell bells rang ring ringing rings sound notes song barking whisper ticking hear
        heard listened listening silence loud grey green red blue yellow black brown white
        silver golden brass shone lamp lamps smelled smells look looked looking saw
        see seen watched watch cold wet
        """.split()
    ),
}
"""Category name -> set of normalised words. A word may belong to more than one category."""

CATEGORY_NAMES: tuple[str, ...] = tuple(CATEGORY_LEXICONS)

_EDGE_PUNCTUATION = re.compile(r"^[^\w']+|[^\w']+$")


def normalize_word(word: str) -> str:
    """Lower-case a presented word and strip markers and punctuation around it.

    ``"@Dudley,"`` -> ``"dudley"``; ``"'Then"`` -> ``"then"``; ``"o'clock."`` -> ``"o'clock"``.
    """
    stripped = _EDGE_PUNCTUATION.sub("", word.lstrip("@").lower())
    return stripped.strip("'")


def category_vector(word: str, categories: tuple[str, ...] = CATEGORY_NAMES) -> list[float]:
    """1.0 / 0.0 per category in ``categories``: does the (normalised) word belong to it."""
    key = normalize_word(word)
    return [1.0 if key in CATEGORY_LEXICONS[name] else 0.0 for name in categories]


CATEGORY_TASK_PREFIX = "word-category-"


def category_task_name(category: str) -> str:
    """The built-in probing task that tests membership of ``category``:
    ``"people"`` -> ``"word-category-people"`` (``brainmis.evaluation.probing.builtin``)."""
    return f"{CATEGORY_TASK_PREFIX}{category}"
