"""Noise ceilings for a whole dataset without repeats: the predictive inter-subject ceiling.

``brainmis prepare`` and the synthetic default (``synthetic_bundle``) both call
``add_predictive_ceilings``: every subject that has neither a ceiling of its own (a
precomputed file, which keeps its method name) nor a run with repeats (whose Schoppe ceiling
the datamodule computes) gets the ceiling of
``brainmis.data.noise_ceiling.predictive_inter_subject_ceiling``, predicted from all the other
subjects, with ``Subject.noise_ceiling_method`` naming the method. That needs at least two
subjects on one stimulus timeline: the same runs, in the same order, with the same kept TRs
(Harry Potter: 1211 TRs in 4 runs for every subject); voxel counts may differ.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from brainmis.data.noise_ceiling import (
    DEFAULT_CEILING_COMPONENTS,
    predictive_ceiling_method,
    predictive_inter_subject_ceiling,
)
from brainmis.data.records import BrainDataset, Subject


def has_repeats(subject: Subject) -> bool:
    """True when a run of the subject holds repeated presentations (a Schoppe ceiling)."""
    return any(run.repeats is not None and len(run.repeats) >= 2 for run in subject.runs)


def subjects_without_ceiling(dataset: BrainDataset) -> list[str]:
    """Subjects with neither a noise ceiling of their own nor a run with repeats."""
    return [
        name
        for name, subject in dataset.subjects.items()
        if subject.noise_ceiling is None and not has_repeats(subject)
    ]


def timeline_mismatch(dataset: BrainDataset) -> str | None:
    """The first difference between the subjects' stimulus timelines, or None when they share
    one: run names and order, kept TRs (``kept_trs``) and TR times of every run."""
    subjects = list(dataset.subjects.values())
    if not subjects:
        return None
    first = subjects[0]
    for other in subjects[1:]:
        pair = f"subjects {first.name} and {other.name}"
        names = [run.name for run in first.runs]
        other_names = [run.name for run in other.runs]
        if names != other_names:
            return f"{pair} have different runs ({', '.join(names)} vs {', '.join(other_names)})"
        for run, other_run in zip(first.runs, other.runs, strict=True):
            kept, other_kept = np.asarray(run.kept_trs), np.asarray(other_run.kept_trs)
            if kept.shape != other_kept.shape:
                return f"{pair}: run {run.name} has {kept.size} vs {other_kept.size} kept TRs"
            if not np.array_equal(kept, other_kept):
                return f"{pair}: run {run.name} keeps different TRs"
            times, other_times = np.asarray(run.tr_times), np.asarray(other_run.tr_times)
            if times.shape != other_times.shape or not np.allclose(times, other_times, atol=1e-3):
                return f"{pair}: run {run.name} has different TR times"
    return None


def stacked_responses(subject: Subject) -> tuple[np.ndarray, np.ndarray]:
    """``(T, V)`` responses of all kept TRs, runs one after the other, and ``(T,)`` run index."""
    responses = np.concatenate([np.asarray(run.responses) for run in subject.runs])
    runs = np.concatenate(
        [np.full(run.responses.shape[0], index) for index, run in enumerate(subject.runs)]
    )
    return responses, runs


def add_predictive_ceilings(
    dataset: BrainDataset,
    n_components: int = DEFAULT_CEILING_COMPONENTS,
    device: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Give every subject of ``subjects_without_ceiling`` the predictive inter-subject ceiling.

    Every subject of the dataset predicts (with or without a ceiling of its own). Sets
    ``noise_ceiling`` ``(V,)`` float32 and ``noise_ceiling_method`` of those subjects in place.

    Args:
        dataset: the dataset; its subjects must share the stimulus timeline
            (``timeline_mismatch``) when a ceiling is computed.
        n_components: principal components of the other subjects' responses.
        device: torch device of the ridge (default CPU).
        progress: called with one line per subject (name, voxels, seconds).

    Returns:
        Names of the subjects given a ceiling; empty when none needs one or there are fewer
        than 2 subjects.

    Raises:
        ValueError: the subjects do not share the stimulus timeline (check
            ``timeline_mismatch`` first to report it).
    """
    targets = subjects_without_ceiling(dataset)
    if not targets or len(dataset.subjects) < 2:
        return []
    mismatch = timeline_mismatch(dataset)
    if mismatch is not None:
        raise ValueError(mismatch)
    names = list(dataset.subjects)
    stacked = [stacked_responses(dataset.subjects[name]) for name in names]
    runs = stacked[0][1]
    n_training_runs = len(dataset.subjects[names[0]].runs) - 1
    method = predictive_ceiling_method(
        n_components, "leave-one-run-out" if n_training_runs >= 2 else "leave-one-TR-out"
    )
    done = [0]

    def report(index: int, seconds: float) -> None:
        done[0] += 1
        if progress is not None:
            subject = dataset.subjects[names[index]]
            progress(
                f"noise ceiling: subject {subject.name} ({done[0]}/{len(targets)}), "
                f"{subject.n_voxels} voxels, {seconds:.1f} s"
            )

    ceilings = predictive_inter_subject_ceiling(
        [responses for responses, _ in stacked],
        runs,
        n_components=n_components,
        targets=[names.index(name) for name in targets],
        device=device,
        on_subject=report,
    )
    for name, ceiling in zip(names, ceilings, strict=True):
        if ceiling is not None:
            subject = dataset.subjects[name]
            subject.noise_ceiling = ceiling.astype(np.float32)
            subject.noise_ceiling_method = method
    return targets
