"""Voxel selection: usable voxels, inside the chosen ROIs, with a noise ceiling above a threshold.

A voxel is selected when it

1. has finite values and non-zero variance in every run (otherwise it is dropped and counted,
   never an error: per-run z-scoring would divide by zero),
2. lies in the union of the chosen ROI masks (all given masks when ``rois`` is None; every
   voxel when there are no masks at all), and
3. has ``ceiling > threshold`` (skipped when no ceiling is given).

An unknown or empty ROI, or nothing left after the threshold, raises ``BrainmisInputError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainmis.errors import BrainmisInputError


@dataclass
class VoxelSelection:
    """Which voxels are used and how many each criterion kept.

    Attributes:
        indices: ``(n_selected,)`` int64 increasing indices into the subject's voxels.
        mask: ``(V,)`` bool, True for selected voxels.
        counts: ``total`` (V), ``non_finite_dropped``, ``zero_variance_dropped`` (finite but
            constant in some run), ``in_roi`` (usable voxels in the ROIs), ``above_ceiling``
            (usable voxels with ceiling > threshold, or all usable ones without a ceiling),
            ``selected``.
        rois: names of the ROIs used (empty when the subject has no masks).
        threshold: the ceiling threshold, or None when no ceiling was used.
    """

    indices: np.ndarray
    mask: np.ndarray
    counts: dict[str, int]
    rois: list[str]
    threshold: float | None

    def restrict_masks(self, roi_masks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """ROI masks over the selected voxels only: name -> ``(n_selected,)`` bool."""
        return {
            name: np.asarray(mask, dtype=bool)[self.indices] for name, mask in roi_masks.items()
        }

    def summary(self) -> str:
        """One line for logs, e.g. ``400 voxels: 0 non-finite, 2 constant dropped; ...``."""
        c = self.counts
        ceiling = (
            "no ceiling"
            if self.threshold is None
            else f"ceiling > {self.threshold:g}: {c['above_ceiling']}"
        )
        rois = "+".join(self.rois) if self.rois else "all voxels"
        return (
            f"{c['total']} voxels: {c['non_finite_dropped']} non-finite, "
            f"{c['zero_variance_dropped']} constant dropped; in ROI ({rois}): {c['in_roi']}; "
            f"{ceiling}; selected {c['selected']}"
        )


def usable_voxels(responses_by_run: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(finite (V,), varying (V,))`` bool: finite everywhere; non-constant in every run."""
    finite = np.ones(responses_by_run[0].shape[1], dtype=bool)
    varying = np.ones_like(finite)
    for responses in responses_by_run:
        responses = np.asarray(responses)
        finite &= np.isfinite(responses).all(axis=0)
        with np.errstate(invalid="ignore"):  # NaN columns compare False; counted as non-finite
            varying &= responses.max(axis=0) > responses.min(axis=0)
    return finite, varying


def select_voxels(
    responses_by_run: list[np.ndarray],
    roi_masks: dict[str, np.ndarray],
    rois: list[str] | None = None,
    ceiling: np.ndarray | None = None,
    threshold: float = 0.05,
    source: str | Path | None = None,
) -> VoxelSelection:
    """Select voxels: usable AND in the ROIs AND ``ceiling > threshold``.

    Args:
        responses_by_run: one ``(T_run, V)`` array per run (memmaps are fine).
        roi_masks: ROI name -> ``(V,)`` bool mask.
        rois: names of the ROIs to use (their union); None = all masks given.
        ceiling: optional ``(V,)`` per-voxel noise ceiling (correlation units; NaN = not
            above any threshold).
        threshold: ceilings strictly above it pass.
        source: the file or dataset the data came from, named in error messages.

    Returns:
        A ``VoxelSelection``.

    Raises:
        BrainmisInputError: unknown ROI name, a mask or ceiling of the wrong length, an
            empty ROI, or no voxel left.
    """
    if not responses_by_run:
        raise BrainmisInputError(source, "no runs to select voxels from")
    n_voxels = int(np.shape(responses_by_run[0])[1])
    for responses in responses_by_run:
        if np.ndim(responses) != 2 or np.shape(responses)[1] != n_voxels:
            raise BrainmisInputError(
                source,
                f"runs disagree on the voxel count: {np.shape(responses)} vs {n_voxels} voxels",
            )
    finite, varying = usable_voxels(responses_by_run)
    usable = finite & varying

    chosen = sorted(roi_masks) if rois is None else list(rois)
    unknown = [name for name in chosen if name not in roi_masks]
    if unknown:
        available = ", ".join(sorted(roi_masks)) or "none"
        raise BrainmisInputError(source, f"unknown ROI {unknown[0]!r}; available ROIs: {available}")
    in_roi = np.zeros(n_voxels, dtype=bool) if chosen else np.ones(n_voxels, dtype=bool)
    for name in chosen:
        mask = np.asarray(roi_masks[name])
        if mask.shape != (n_voxels,):
            raise BrainmisInputError(
                source, f"ROI {name!r} mask has shape {mask.shape}, expected ({n_voxels},)"
            )
        mask = mask.astype(bool)
        if not (mask & usable).any():
            raise BrainmisInputError(
                source, f"ROI {name!r} has no usable voxel ({int(mask.sum())} in the mask)"
            )
        in_roi |= mask

    if ceiling is None:
        above = np.ones(n_voxels, dtype=bool)
    else:
        ceiling = np.asarray(ceiling, dtype=np.float64)
        if ceiling.shape != (n_voxels,):
            raise BrainmisInputError(
                source, f"noise ceiling has shape {ceiling.shape}, expected ({n_voxels},)"
            )
        with np.errstate(invalid="ignore"):
            above = np.nan_to_num(ceiling, nan=-np.inf) > threshold

    selected = usable & in_roi & above
    counts = {
        "total": n_voxels,
        "non_finite_dropped": int((~finite).sum()),
        "zero_variance_dropped": int((finite & ~varying).sum()),
        "in_roi": int((usable & in_roi).sum()),
        "above_ceiling": int((usable & above).sum()),
        "selected": int(selected.sum()),
    }
    if not selected.any():
        where = f"ROI(s) {', '.join(chosen)}" if chosen else "the data"
        raise BrainmisInputError(
            source,
            f"no voxel left: {counts['in_roi']} usable voxels in {where}, none with noise ceiling > "
            f"{threshold:g}; lower the threshold or choose other ROIs",
        )
    return VoxelSelection(
        indices=np.flatnonzero(selected).astype(np.int64),
        mask=selected,
        counts=counts,
        rois=chosen,
        threshold=None if ceiling is None else float(threshold),
    )
