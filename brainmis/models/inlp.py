"""Iterative nullspace projection (INLP) of the brain-predictive directions of one layer.

On the frozen feature layer's window features of the TRAINING runs (never the test run),
repeat: fit a ridge read-out (``brainmis.models.head_refit.ridge_head_weights``) from the
current projected features ``(N, C * hidden)`` to the voxels; reshape its weight to
``(V, C, hidden)`` and stack it to ``(C * V, hidden)``; project out its top
``rank_per_step`` right singular vectors (per token, the same for every TR group);
then score a fresh ridge (``brainmis.ridge.ridge_cv_score``) leaving one training run out
in turn; stop when its mean r falls below ``target_r`` or after ``max_steps``. The composed
orthogonal projection is installed by ``brainmis.models.erasure.ProjectionHook``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from brainmis.errors import BrainmisInputError
from brainmis.models.head_refit import ridge_head_weights
from brainmis.ridge import ridge_cv_score


def project_features(features: np.ndarray, projection: np.ndarray, context_trs: int) -> np.ndarray:
    """Apply ``projection (hidden, hidden)`` to each group of ``features (N, C * hidden)``."""
    n = features.shape[0]
    groups = features.reshape(n, context_trs, -1) @ projection.T
    return groups.reshape(n, -1)


def cross_validated_r(features: np.ndarray, targets: np.ndarray, runs: np.ndarray) -> float:
    """Mean over voxels and folds of a fresh ridge's r, leaving one training run out."""
    scores = []
    for run in np.unique(runs):
        test = runs == run
        r, _ = ridge_cv_score(
            torch.from_numpy(features[~test]).double(),
            torch.from_numpy(targets[~test]).double(),
            torch.from_numpy(features[test]).double(),
            torch.from_numpy(targets[test]).double(),
            runs[~test],
        )
        scores.append(float(torch.nan_to_num(r).mean()))
    return float(np.mean(scores))


def inlp_projection(
    features: np.ndarray,
    targets: np.ndarray,
    runs: np.ndarray,
    context_trs: int,
    rank_per_step: int = 1,
    target_r: float = 0.02,
    max_steps: int = 20,
    l2: float = 1.0,
    log: Callable[[int, float], None] | None = None,
) -> tuple[np.ndarray, list[float]]:
    """The composed INLP projection.

    Args:
        features: ``(N, C * hidden)`` training windows' features; targets ``(N, V)``;
            runs ``(N,)`` run of each window (>= 2 distinct runs).
        log: called with ``(step, mean r)`` after every step (step 0 = before any).

    Returns:
        ``(P (hidden, hidden) float64, [mean r before step 1, after step 1, ...])``.
    """
    if rank_per_step < 1 or max_steps < 0:
        raise BrainmisInputError(
            None, f"need model.inlp_rank_per_step >= 1 and model.inlp_max_steps >= 0, got {rank_per_step}, {max_steps}"
        )
    if len(np.unique(runs)) < 2:
        raise BrainmisInputError(None, "inlp cross-validates across training runs: need >= 2 of them")
    hidden = features.shape[1] // context_trs
    removed = np.zeros((hidden, 0))  # orthonormal basis of the directions projected out

    def kept_basis() -> np.ndarray:
        """(hidden, hidden - removed) orthonormal basis of what is left. The ridge reads the
        features in this basis: projected-out coordinates would hold only rounding noise,
        which the ridge's z-scoring would blow back up to unit variance."""
        u, _, _ = np.linalg.svd(np.eye(hidden) - removed @ removed.T)
        return u[:, : hidden - removed.shape[1]]

    def score(basis: np.ndarray) -> float:
        if basis.shape[1] == 0:
            return 0.0
        return cross_validated_r(project_features(features, basis.T, context_trs), targets, runs)

    basis = np.eye(hidden)
    history = [score(basis)]
    if log is not None:
        log(0, history[0])
    for step in range(1, max_steps + 1):
        if history[-1] < target_r or basis.shape[1] == 0:
            break
        current = project_features(features, basis.T, context_trs)  # (N, C * kept)
        weight, _ = ridge_head_weights(
            torch.from_numpy(current), torch.from_numpy(targets.astype(np.float64)), l2
        )
        stacked = weight.double().numpy().reshape(-1, basis.shape[1])  # (V * C, kept)
        _, _, vt = np.linalg.svd(stacked, full_matrices=False)
        directions = basis @ vt[:rank_per_step].T  # (hidden, k), inside the kept space
        removed, _ = np.linalg.qr(np.concatenate([removed, directions], axis=1))
        basis = kept_basis()
        history.append(score(basis))
        if log is not None:
            log(step, history[-1])
    projection = np.eye(hidden) - removed @ removed.T
    return projection, history
