"""Ground-truth worlds: which property of the words drives the simulated brain.

A world decides the word features ``(F,)`` that the voxels of
``brainmis.data.synthetic.simulation`` respond to, and so which probing tasks a brain
manipulation should affect:

- ``semantic`` (the default): membership of the first ``n_features`` categories of
  ``CATEGORY_NAMES`` (emotion, motion, people, place, number, sensory).
- ``probed``: membership of the first ``n_features`` categories of ``PROBED_ORDER`` (the
  categories with the most words in the narrative first), each of which a built-in probing
  task tests (``word-category-<name>``). Removing the brain information should lower those
  tasks' scores and leave the others.
- ``unprobed``: membership of ``n_features`` groups of a seeded random partition of the
  vocabulary (every word in one of ``n_features + 1`` groups, the last silent). No probing
  task tests it and a language model has little use for it: removing it should lower brain
  alignment and no probing score.

``probing_task_groups`` names the tasks each world targets; ``brainmis compare --task-groups
ground_truth/truth.json`` tests them against the rest.
"""

from __future__ import annotations

import numpy as np

from brainmis.data.synthetic.word_categories import (
    CATEGORY_NAMES,
    category_task_name,
    category_vector,
)

WORLDS = ("semantic", "probed", "unprobed")
DEFAULT_FEATURES = {"semantic": 5, "probed": 3, "unprobed": 3}
"""The number of axes ``brainmis synth --world W`` uses when ``--features`` is not given."""
PROBED_ORDER = ("number", "people", "place", "sensory", "motion", "emotion")
"""Categories by their number of word tokens in the narrative (187, 144, 141, 122, 110, 63)."""
TARGETED, UNTARGETED = "targeted", "untargeted"


def world_axes(world: str, n_features: int) -> tuple[str, ...]:
    """The names of the ``n_features`` axes of a world, in feature order."""
    if world == "semantic":
        return CATEGORY_NAMES[:n_features]
    if world == "probed":
        return PROBED_ORDER[:n_features]
    if world == "unprobed":
        return tuple(f"random_group_{index + 1}" for index in range(n_features))
    raise ValueError(f"unknown world {world!r}; choose one of {WORLDS}")


def axis_values(
    world: str, vocabulary: list[str], n_features: int, rng: np.random.Generator
) -> np.ndarray:
    """``(len(vocabulary), n_features)`` 1/0 membership of every normalised word in every
    axis of the world. ``rng`` draws the random partition of ``unprobed``."""
    if world == "unprobed":
        groups = rng.integers(0, n_features + 1, size=len(vocabulary))
        return (groups[:, None] == np.arange(n_features)[None, :]).astype(float)
    axes = world_axes(world, n_features)
    return np.array([category_vector(word, axes) for word in vocabulary], dtype=float).reshape(
        len(vocabulary), n_features
    )


def probing_task_groups(world: str, n_features: int) -> dict:
    """``{"tasks": {task: group}, "default": group}``: the built-in tasks a world targets
    (``targeted``); every other task is ``untargeted``. ``unprobed`` targets none."""
    axes = () if world == "unprobed" else world_axes(world, n_features)
    return {"tasks": {category_task_name(axis): TARGETED for axis in axes}, "default": UNTARGETED}
