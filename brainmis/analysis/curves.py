"""Training curves from a run folder's TensorBoard event files.

Scalars of the "LightningModule" and "Run folder" contracts: ``train/lm_loss``,
``train/brain_loss``, ``train/brain_r``, ``val/lm_loss``, ``val/brain_r`` and
``brain_alignment/mean``. Lightning appends ``_step`` / ``_epoch`` to a name logged both per
step and per epoch; those names are accepted as well (the plain name first, then ``_step``,
then ``_epoch``). A step logged twice (a resumed run) keeps its last value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainmis.errors import BrainmisInputError
from brainmis.run_folder.layout import EVENT_FILE_PREFIX

CURVE_TAGS = (
    "train/lm_loss",
    "train/brain_loss",
    "train/brain_r",
    "val/lm_loss",
    "val/brain_r",
    "brain_alignment/mean",
)
_SUFFIXES = ("", "_step", "_epoch")


@dataclass(frozen=True)
class Curve:
    """One scalar over training: ``steps (N,)`` global steps, ``values (N,)``."""

    steps: np.ndarray
    values: np.ndarray


def read_curves(run_dir: Path, tags: tuple[str, ...] = CURVE_TAGS) -> dict[str, Curve]:
    """The curves of ``tags`` found in the event files directly inside ``run_dir``.

    Tags that were never logged are absent from the result; a folder without event files
    gives an empty dict. A corrupt event file is an input error naming the folder.
    """
    if not any(path.name.startswith(EVENT_FILE_PREFIX) for path in run_dir.iterdir()):
        return {}
    from tensorboard.backend.event_processing.event_accumulator import (
        SCALARS,
        EventAccumulator,
    )

    accumulator = EventAccumulator(str(run_dir), size_guidance={SCALARS: 0})
    try:
        accumulator.Reload()
    except Exception as error:  # tensorboard raises several types for a damaged file
        raise BrainmisInputError(run_dir, f"TensorBoard event files unreadable ({error})") from None
    available = set(accumulator.Tags().get("scalars", []))
    curves = {}
    for tag in tags:
        name = next((tag + suffix for suffix in _SUFFIXES if tag + suffix in available), None)
        if name is None:
            continue
        by_step = {event.step: event.value for event in accumulator.Scalars(name)}
        steps = np.array(sorted(by_step), dtype=np.int64)
        values = np.array([by_step[step] for step in steps], dtype=np.float64)
        curves[tag] = Curve(steps, values)
    return curves


def average_curves(curves: list[Curve]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and s.e.m. across runs on the union of their steps.

    Each run is linearly interpolated at the steps inside its own logged range (never
    extrapolated); at every step the mean and s.e.m. are over the runs that cover it.
    Returns ``steps (M,)``, ``mean (M,)``, ``sem (M,)`` (sem NaN where one run covers it).
    """
    if not curves:
        empty = np.zeros(0)
        return empty.astype(np.int64), empty, empty
    steps = np.unique(np.concatenate([curve.steps for curve in curves]))
    stacked = np.full((len(curves), steps.size), np.nan)
    for row, curve in enumerate(curves):
        finite = np.isfinite(curve.values)
        if not finite.any():
            continue
        inside = (steps >= curve.steps[finite].min()) & (steps <= curve.steps[finite].max())
        stacked[row, inside] = np.interp(steps[inside], curve.steps[finite], curve.values[finite])
    counts = np.isfinite(stacked).sum(axis=0)
    keep = counts > 0
    stacked, counts, steps = stacked[:, keep], counts[keep], steps[keep]
    mean = np.nansum(stacked, axis=0) / counts
    deviations = np.where(np.isfinite(stacked), (stacked - mean) ** 2, 0.0).sum(axis=0)
    sem = np.full(mean.shape, math.nan)
    several = counts > 1
    sem[several] = np.sqrt(deviations[several] / (counts[several] - 1) / counts[several])
    return steps, mean, sem
