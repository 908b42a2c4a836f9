"""Brain alignment of a set of features: cross-validated voxelwise ridge, scored per voxel.

Outer folds hold out whole runs: every run in turn (leave-one-run-out) or the given held-out
run(s), e.g. the datamodule's fold. Inside each outer training set, each voxel's penalty is
chosen by leave-one-run-out cross-validation (:mod:`brainmis.ridge`); features
and responses are z-scored with the outer training statistics. A voxel's score is the
Pearson r between predicted and measured responses on the held-out run, averaged over outer
folds. With :class:`~brainmis.evaluation.brain.significance.PermutationTestOptions`, each
voxel also gets a block-permutation p of that r and a Benjamini-Hochberg q-value
(:mod:`brainmis.evaluation.brain.significance`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from brainmis.errors import BrainmisInputError
from brainmis.evaluation.brain.significance import (
    PermutationTestOptions,
    VoxelSignificance,
    voxel_significance,
)
from brainmis.ridge import DEFAULT_ALPHAS, pearson_per_column, ridge_cv_held_out

INNER_BLOCKS_SINGLE_RUN = 3
"""With one training run only, inner folds are this many contiguous blocks of it."""


@dataclass
class RegionScore:
    """Summary of per-voxel r over a set of voxels (an ROI or all of them)."""

    n_voxels: int
    mean: float
    median: float
    nc_normalized: float | None
    nc_ratio_of_means: float | None = None
    nc_median: float | None = None


@dataclass
class BrainAlignmentResult:
    """Brain alignment of one feature set.

    Attributes:
        r: ``(V,)`` float64 Pearson r per voxel on the held-out run(s), mean over outer folds.
        best_alphas: ``(n_folds, V)`` float64 penalty chosen per outer fold and voxel.
        r_per_fold: ``(n_folds, V)`` float64 r per outer fold.
        test_runs: the held-out run of each outer fold.
        mean, median: over voxels of ``r``.
        nc_normalized: mean over voxels with ceiling > 0 of ``r / ceiling``; None without a
            ceiling (or no voxel with ceiling > 0).
        nc_ratio_of_means: ``mean(r) / mean(ceiling)`` over those voxels (less swayed by
            voxels with a tiny ceiling than the mean of ratios).
        nc_median: median over those voxels of ``r / ceiling``.
        per_roi: ROI name -> :class:`RegionScore`.
        alphas: the penalty grid.
        significance: the permutation test of ``r`` (p and q per voxel), None when off.
    """

    r: np.ndarray
    best_alphas: np.ndarray
    r_per_fold: np.ndarray
    test_runs: list[int]
    mean: float
    median: float
    nc_normalized: float | None
    per_roi: dict[str, RegionScore] = field(default_factory=dict)
    alphas: list[float] = field(default_factory=list)
    nc_ratio_of_means: float | None = None
    nc_median: float | None = None
    significance: VoxelSignificance | None = None

    @property
    def n_voxels(self) -> int:
        return int(self.r.shape[0])

    def to_json(self) -> dict:
        """JSON-ready summary (no per-voxel arrays), the run folder's
        ``brain_alignment.json`` fields ``mean, median, nc_normalized, n_voxels, per_roi``."""
        return {
            "mean": self.mean,
            "median": self.median,
            "nc_normalized": self.nc_normalized,
            "nc_ratio_of_means": self.nc_ratio_of_means,
            "nc_median": self.nc_median,
            "n_voxels": self.n_voxels,
            "per_roi": {name: asdict(score) for name, score in self.per_roi.items()},
            "test_runs": list(self.test_runs),
            "alphas": list(self.alphas),
            "median_best_alpha": float(np.median(self.best_alphas)),
            "significance": None if self.significance is None else self.significance.to_json(),
        }


def summarize_voxels(r: np.ndarray, ceiling: np.ndarray | None) -> RegionScore:
    """Mean, median and ceiling-normalised scores of per-voxel ``r`` ``(V,)``.

    ``ceiling``: ``(V,)`` noise ceiling in correlation units, or None. The normalised scores
    (mean and median of ``r / ceiling``, and ``mean(r) / mean(ceiling)``) use the voxels with
    ``ceiling > 0``; all three are None without such a voxel.
    """
    r = np.asarray(r, dtype=np.float64)
    if r.size == 0:
        return RegionScore(0, math.nan, math.nan, None)
    score = RegionScore(int(r.size), float(np.mean(r)), float(np.median(r)), None)
    if ceiling is not None:
        ceiling = np.asarray(ceiling, dtype=np.float64)
        positive = ceiling > 0
        if positive.any():
            ratios = r[positive] / ceiling[positive]
            score.nc_normalized = float(np.mean(ratios))
            score.nc_median = float(np.median(ratios))
            score.nc_ratio_of_means = float(np.mean(r[positive]) / np.mean(ceiling[positive]))
    return score


def inner_groups(train_runs: np.ndarray) -> np.ndarray:
    """Inner-fold labels ``(n_train,)`` for the training TRs: their run, or, when they all
    come from one run, :data:`INNER_BLOCKS_SINGLE_RUN` contiguous blocks."""
    train_runs = np.asarray(train_runs)
    if len(np.unique(train_runs)) >= 2:
        return train_runs
    blocks = min(INNER_BLOCKS_SINGLE_RUN, len(train_runs))
    return np.minimum(np.arange(len(train_runs)) * blocks // len(train_runs), blocks - 1)


def outer_test_runs(runs: np.ndarray, test_runs: int | Sequence[int] | None) -> list[int]:
    """The held-out run of each outer fold: every run, or the given ones (validated)."""
    present = [int(run) for run in np.unique(runs)]
    if len(present) < 2:
        raise BrainmisInputError(None, f"brain alignment needs at least 2 runs, got {present}")
    if test_runs is None:
        return present
    chosen = [int(test_runs)] if np.isscalar(test_runs) else [int(run) for run in test_runs]
    missing = sorted(set(chosen) - set(present))
    if missing or not chosen:
        raise BrainmisInputError(None, f"test runs {chosen} not among the runs {present}")
    return chosen


def evaluate_brain_alignment(
    features: np.ndarray | torch.Tensor,
    responses: np.ndarray | torch.Tensor,
    runs: np.ndarray,
    test_runs: int | Sequence[int] | None = None,
    alphas: np.ndarray | Sequence[float] | None = None,
    noise_ceiling: np.ndarray | None = None,
    roi_masks: dict[str, np.ndarray] | None = None,
    device: str | torch.device | None = None,
    significance: PermutationTestOptions | None = None,
) -> BrainAlignmentResult:
    """Cross-validated voxelwise ridge from features to responses, scored per voxel.

    Args:
        features: ``(N, F)`` features of N TRs (e.g. ``(N, context_trs * hidden)`` windows).
        responses: ``(N, V)`` measured responses of the same TRs (true, never shuffled).
        runs: ``(N,)`` int run index of every TR.
        test_runs: held-out run(s); None = leave-one-run-out over all runs.
        alphas: penalty grid (default ``np.logspace(-2, 9, 12)``).
        noise_ceiling: optional ``(V,)`` ceiling (correlation units) for normalised scores.
        roi_masks: optional ROI name -> ``(V,)`` bool mask.
        device: where the ridge runs (default CPU).
        significance: options of the per-voxel permutation test (None: no test); it runs on
            ``device`` on every fold's held-out predictions.

    Returns:
        :class:`BrainAlignmentResult`.
    """
    features = torch.as_tensor(np.asarray(features, dtype=np.float32))
    responses = torch.as_tensor(np.asarray(responses, dtype=np.float32))
    runs = np.asarray(runs)
    n_samples = features.shape[0]
    if features.ndim != 2 or responses.ndim != 2:
        raise BrainmisInputError(None, "features and responses must be 2-D (TRs, values)")
    if responses.shape[0] != n_samples or runs.shape != (n_samples,):
        raise BrainmisInputError(
            None,
            f"features {tuple(features.shape)}, responses {tuple(responses.shape)} and runs "
            f"{runs.shape} disagree on the number of TRs",
        )
    if not (torch.isfinite(features).all() and torch.isfinite(responses).all()):
        raise BrainmisInputError(None, "features or responses contain NaN or infinite values")
    alphas = DEFAULT_ALPHAS if alphas is None else np.asarray(alphas, dtype=np.float64)
    folds = outer_test_runs(runs, test_runs)
    r_per_fold, alphas_per_fold, held_out = [], [], []
    for test_run in folds:
        test = torch.as_tensor(runs == test_run)
        fit = ridge_cv_held_out(
            features[~test],
            responses[~test],
            features[test],
            responses[test],
            inner_groups(runs[~test.numpy()]),
            alphas,
            device=device or "cpu",
        )
        r_per_fold.append(pearson_per_column(fit.predictions, fit.targets).cpu().numpy())
        alphas_per_fold.append(fit.best_alphas.cpu().numpy())
        if significance is not None:
            held_out.append((fit.predictions, fit.targets))
    r_mean = np.mean(r_per_fold, axis=0)
    tested = None
    if significance is not None:
        tested = voxel_significance(held_out, significance, roi_masks)
    overall = summarize_voxels(r_mean, noise_ceiling)
    per_roi = {}
    for name, mask in (roi_masks or {}).items():
        mask = np.asarray(mask, dtype=bool)
        ceiling = None if noise_ceiling is None else np.asarray(noise_ceiling)[mask]
        per_roi[name] = summarize_voxels(r_mean[mask], ceiling)
    return BrainAlignmentResult(
        r=r_mean,
        best_alphas=np.stack(alphas_per_fold),
        r_per_fold=np.stack(r_per_fold),
        test_runs=folds,
        mean=overall.mean,
        median=overall.median,
        nc_normalized=overall.nc_normalized,
        per_roi=per_roi,
        alphas=[float(alpha) for alpha in alphas],
        nc_ratio_of_means=overall.nc_ratio_of_means,
        nc_median=overall.nc_median,
        significance=tested,
    )
