"""In-memory records every reader produces and every consumer reads.

One ``BrainDataset`` holds subjects; a subject holds runs (HP runs, Moth stories, NIfTI runs).
Times are in seconds; a run's TR times and word onsets share one clock (the run start for
Moth and NIfTI, the session clock as distributed for Harry Potter). A TR's time is the time
stamp of that scan, and the words of TR ``t`` are those with
``tr_times[t] - tr < onset <= tr_times[t]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Run:
    """One run (or story) of one subject.

    Attributes:
        name: run identifier, e.g. ``"run1"`` or ``"story_03"``.
        tr_times: ``(n_TR,)`` float64 seconds, every TR of the run, trimmed ones included.
        responses: ``(n_kept, V)`` float32 BOLD responses of the kept TRs (may be a memmap).
        kept_trs: ``(n_kept,)`` int64 increasing indices into ``tr_times``: row ``i`` of
            ``responses`` was measured at ``tr_times[kept_trs[i]]``. Trimmed TRs have no row
            but their words still serve as context.
        words: ``(n_words,)`` unicode array of cleaned words (markers such as HP's ``+`` and
            ``@`` already handled by the reader).
        word_onsets: ``(n_words,)`` float64 seconds, non-decreasing.
        repeats: optional ``(n_repeats, n_kept, V)`` float32 responses to repeated presentations
            of this run (Moth validation story); ``responses`` is then their mean.
    """

    name: str
    tr_times: np.ndarray
    responses: np.ndarray
    kept_trs: np.ndarray
    words: np.ndarray
    word_onsets: np.ndarray
    repeats: np.ndarray | None = None

    @property
    def n_voxels(self) -> int:
        return int(self.responses.shape[1])


@dataclass
class Subject:
    """One subject: runs plus voxel metadata.

    Attributes:
        name: subject identifier, e.g. ``"F"`` or ``"01"``.
        runs: the subject's runs, in presentation order.
        roi_masks: ROI name -> ``(V,)`` bool mask over the subject's voxels.
        noise_ceiling: optional ``(V,)`` float per-voxel ceiling (correlation units).
        noise_ceiling_method: how ``noise_ceiling`` was obtained (e.g. ``"precomputed
            (noise_ceiling_subject_F.npy)"`` or ``"predictive inter-subject (PCA k=50, ridge,
            leave-one-run-out)"``); None when unknown or without a ceiling.
        voxel_coords: optional ``(V, 3)`` int voxel indices (i, j, k) in the volume.
        volume_shape: optional ``(X, Y, Z)`` shape of the volume the coordinates index.
        affine: optional ``(4, 4)`` voxel-to-world affine of that volume.
    """

    name: str
    runs: list[Run]
    roi_masks: dict[str, np.ndarray] = field(default_factory=dict)
    noise_ceiling: np.ndarray | None = None
    voxel_coords: np.ndarray | None = None
    volume_shape: tuple[int, int, int] | None = None
    affine: np.ndarray | None = None
    noise_ceiling_method: str | None = None

    @property
    def n_voxels(self) -> int:
        return self.runs[0].n_voxels


@dataclass
class BrainDataset:
    """A dataset: its name, the repetition time and its subjects (name -> Subject).

    ``notes``: what a reader accepted but the user should know (e.g. atlas labels without a
    name, files outside the source root), one line each; ``brainmis prepare`` prints them.
    Not stored in bundles.
    """

    name: str
    tr: float
    subjects: dict[str, Subject]
    notes: list[str] = field(default_factory=list)
