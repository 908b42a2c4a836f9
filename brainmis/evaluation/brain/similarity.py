"""Alignment measured without a fitted encoder: RSA, linear CKA and Procrustes similarity.

All three compare a model's window features ``X`` ``(n, F)`` with the measured responses
``Y`` ``(n, V)`` of the same ``n`` held-out TRs (the test run), and all three point the same
way as the ridge's mean r: larger = more aligned, 1 = the same representation up to the
transform the measure ignores.

- ``rsa``: representational similarity analysis. Each side's representational dissimilarity
  matrix over TRs is ``1 - Pearson r`` between the TRs' patterns ``(n, n)``; the score is
  the Spearman correlation of the two matrices' upper triangles (``n (n - 1) / 2`` pairs,
  ties broken by order). Range ``[-1, 1]``, about 0 for unrelated representations.
- ``cka``: linear centred kernel alignment,
  ``||Xc^T Yc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` with columns centred over the ``n``
  TRs, computed from the ``(n, n)`` Gram matrices. Range ``[0, 1]``; invariant to
  orthogonal transforms and isotropic scaling of either side.
- ``procrustes``: orthogonal Procrustes similarity ``||Xn^T Yn||_*`` (nuclear norm), where
  ``Xn``, ``Yn`` are centred over TRs and scaled to unit Frobenius norm. It equals
  ``1 - d^2 / 2`` for the Procrustes distance ``d = min_Q ||Xn Q - Yn||_F`` over (semi-)
  orthogonal ``Q``, so a rotated copy scores 1 and the distance is ``sqrt(2 - 2 s)``.
  Range ``[0, 1]``.

On brain data (:func:`held_out_similarity`) the features are first standardised with the
training runs' column means and standard deviations (as the ridge does), and for
``procrustes`` reduced to their first ``k = min(n - 1, F, V)`` principal components fitted
on the training runs, so that an orthogonal map cannot match any ``n`` points merely because
``F`` is much larger than ``n``. Each measure is computed on all selected voxels and on each
ROI's voxels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from brainmis.errors import BrainmisInputError

SIMILARITY_METRICS = ("rsa", "cka", "procrustes")
"""The encoder-free measures, in the order they are written."""
ALL_METRICS = ("ridge", *SIMILARITY_METRICS)
"""What ``--metrics`` / the callback's ``metrics`` accept."""


def parse_metrics(values: str | Iterable[str], option: str = "--metrics") -> tuple[str, ...]:
    """The chosen metrics from a comma list (``"ridge,cka"``) or a sequence, deduplicated in
    :data:`ALL_METRICS` order. Raises ``BrainmisInputError`` naming ``option`` for an unknown
    name or an empty choice."""
    names = values.split(",") if isinstance(values, str) else list(values)
    names = [str(name).strip().lower() for name in names if str(name).strip()]
    unknown = sorted(set(names) - set(ALL_METRICS))
    if unknown or not names:
        given = ", ".join(unknown) if unknown else "nothing"
        raise BrainmisInputError(
            None, f"{option}: got {given}; choose a comma list from {', '.join(ALL_METRICS)}"
        )
    return tuple(name for name in ALL_METRICS if name in names)


def _tensor(values: np.ndarray | torch.Tensor, device: torch.device | str | None) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values), dtype=torch.float64, device=device)


def _centred(values: torch.Tensor) -> torch.Tensor:
    return values - values.mean(dim=0, keepdim=True)


def _upper_triangle_rdm(patterns: torch.Tensor) -> torch.Tensor:
    """``1 - r`` between the rows of ``patterns`` ``(n, D)``: upper triangle ``(n(n-1)/2,)``."""
    rows = patterns - patterns.mean(dim=1, keepdim=True)
    norms = rows.norm(dim=1, keepdim=True).clamp_min(torch.finfo(rows.dtype).tiny)
    rows = rows / norms
    dissimilarity = 1.0 - rows @ rows.T
    i, j = torch.triu_indices(len(rows), len(rows), offset=1, device=rows.device)
    return dissimilarity[i, j]


def _ranks(values: torch.Tensor) -> torch.Tensor:
    ranks = torch.empty_like(values)
    ranks[values.argsort()] = torch.arange(len(values), dtype=values.dtype, device=values.device)
    return ranks


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = (a.norm() * b.norm()).item()
    return float((a @ b).item() / denominator) if denominator > 0 else float("nan")


def rsa(
    features: np.ndarray | torch.Tensor,
    responses: np.ndarray | torch.Tensor,
    device: torch.device | str | None = None,
) -> float:
    """Spearman correlation of the two correlation-distance RDMs over TRs.

    Args:
        features: ``(n, F)`` one pattern per TR.
        responses: ``(n, V)`` the same n TRs.
    Returns: a correlation in ``[-1, 1]`` (NaN for fewer than 3 TRs).
    """
    x, y = _tensor(features, device), _tensor(responses, device)
    if len(x) < 3:
        return float("nan")
    return _pearson(_ranks(_upper_triangle_rdm(x)), _ranks(_upper_triangle_rdm(y)))


def linear_cka(
    features: np.ndarray | torch.Tensor,
    responses: np.ndarray | torch.Tensor,
    device: torch.device | str | None = None,
) -> float:
    """Linear CKA of ``features`` ``(n, F)`` and ``responses`` ``(n, V)``, in ``[0, 1]``.

    Computed from the centred Gram matrices ``K = Xc Xc^T``, ``L = Yc Yc^T`` ``(n, n)``:
    ``<K, L>_F / (||K||_F ||L||_F)``, which equals the feature-space formula and costs
    ``O(n^2 (F + V))``. NaN when either side is constant over TRs.
    """
    x, y = _centred(_tensor(features, device)), _centred(_tensor(responses, device))
    gram_x, gram_y = x @ x.T, y @ y.T
    denominator = (gram_x.norm() * gram_y.norm()).item()
    if denominator == 0:
        return float("nan")
    return float((gram_x * gram_y).sum().item() / denominator)


def procrustes_similarity(
    features: np.ndarray | torch.Tensor,
    responses: np.ndarray | torch.Tensor,
    device: torch.device | str | None = None,
) -> float:
    """Orthogonal Procrustes similarity ``||Xn^T Yn||_*`` in ``[0, 1]`` (module docstring).

    Args:
        features: ``(n, F)``; responses: ``(n, V)``; the widths may differ (the narrower side
            is in effect padded with zero columns).
    Returns: ``1 - d^2 / 2`` for the Procrustes distance ``d`` of the centred, unit-norm
        matrices; NaN when either side is constant over TRs.
    """
    x, y = _centred(_tensor(features, device)), _centred(_tensor(responses, device))
    x_norm, y_norm = x.norm().item(), y.norm().item()
    if x_norm == 0 or y_norm == 0:
        return float("nan")
    cross = (x / x_norm).T @ (y / y_norm)  # (F, V)
    small = cross @ cross.T if cross.shape[0] <= cross.shape[1] else cross.T @ cross
    eigenvalues = torch.linalg.eigvalsh(small).clamp_min(0.0)
    return float(eigenvalues.sqrt().sum().item())


def procrustes_distance(similarity: float) -> float:
    """The Procrustes distance ``sqrt(2 - 2 s)`` of a Procrustes similarity ``s``."""
    return float(np.sqrt(max(0.0, 2.0 - 2.0 * similarity)))


MEASURES: dict[str, Callable[..., float]] = {
    "rsa": rsa,
    "cka": linear_cka,
    "procrustes": procrustes_similarity,
}


@dataclass
class SimilarityScores:
    """One encoder-free measure on the held-out TRs.

    Attributes:
        all: the measure over every selected voxel.
        per_roi: ROI name -> the measure over that ROI's voxels (NaN for an empty ROI).
    """

    all: float
    per_roi: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        def plain(value: float) -> float | None:
            return None if not np.isfinite(value) else float(value)

        return {
            "all": plain(self.all),
            "per_roi": {name: plain(value) for name, value in self.per_roi.items()},
        }


def standardised_features(
    features: np.ndarray, train: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """``features`` ``(N, F)`` z-scored per column with the mean and s.d. of the ``train``
    rows (``(N,)`` bool); constant columns become 0. Returns ``(train rows, other rows)``."""
    x = torch.as_tensor(np.asarray(features), dtype=torch.float64)
    mask = torch.as_tensor(np.asarray(train, dtype=bool))
    mean, scale = x[mask].mean(dim=0), x[mask].std(dim=0)
    z = (x - mean) / torch.where(scale > 0, scale, torch.ones_like(scale))
    z[:, scale == 0] = 0.0
    return z[mask], z[~mask]


def principal_projection(train: torch.Tensor, dims: int) -> torch.Tensor:
    """``(F, dims)`` the first ``dims`` principal axes of the (already centred) ``train``
    rows ``(n_train, F)``, from the eigenvectors of the smaller Gram matrix (``n_train x
    n_train`` or ``F x F``; far faster than an SVD on CPU). Axes of zero variance are dropped,
    so the result may have fewer than ``dims`` columns."""
    x = _centred(train)
    if x.shape[0] < x.shape[1]:
        eigenvalues, vectors = torch.linalg.eigh(x @ x.T)  # ascending
        order = eigenvalues.flip(0)[:dims]
        keep = order > order[0] * 1e-10
        axes = x.T @ vectors.flip(1)[:, :dims][:, keep]
        return axes / order[keep].sqrt()
    eigenvalues, vectors = torch.linalg.eigh(x.T @ x)
    order = eigenvalues.flip(0)[:dims]
    return vectors.flip(1)[:, :dims][:, order > order[0] * 1e-10]


def held_out_similarity(
    features: np.ndarray,
    responses: np.ndarray,
    window_runs: np.ndarray,
    test_run: int,
    metrics: Sequence[str] = SIMILARITY_METRICS,
    roi_masks: dict[str, np.ndarray] | None = None,
    device: torch.device | str | None = None,
) -> dict[str, SimilarityScores]:
    """Each encoder-free measure of ``metrics`` on the windows of ``test_run``.

    Args:
        features: ``(N, F)`` window features in table order.
        responses: ``(N, V)`` the true (z-scored) responses of the same windows.
        window_runs: ``(N,)`` run of each window; the other runs' windows give the feature
            standardisation and the Procrustes principal axes.
        test_run: the held-out run scored.
        metrics: names from :data:`SIMILARITY_METRICS` (``"ridge"`` is ignored here).
        roi_masks: ROI name -> ``(V,)`` bool.
    Returns: metric name -> :class:`SimilarityScores`.
    """
    window_runs = np.asarray(window_runs)
    test = window_runs == test_run
    if test.sum() < 3 or (~test).sum() < 2:
        raise ValueError(f"run {test_run} needs >= 3 windows and the other runs >= 2")
    train_x, test_x = standardised_features(features, ~test)
    test_y = torch.as_tensor(np.asarray(responses)[test], dtype=torch.float64)
    if device is not None:
        train_x, test_x, test_y = train_x.to(device), test_x.to(device), test_y.to(device)
    roi_masks = {name: np.asarray(mask, dtype=bool) for name, mask in (roi_masks or {}).items()}
    voxel_sets = [(None, np.ones(test_y.shape[1], dtype=bool)), *roi_masks.items()]
    axes = None
    if "procrustes" in metrics:
        axes = principal_projection(train_x, min(len(test_x) - 1, test_x.shape[1]))
    scores: dict[str, SimilarityScores] = {}
    for metric in metrics:
        if metric == "ridge":
            continue
        everything, per_roi = float("nan"), {}
        for name, mask in voxel_sets:
            value = float("nan")
            if mask.any():
                y = test_y[:, torch.as_tensor(mask, device=test_y.device)]
                x = test_x
                if metric == "procrustes":
                    x = test_x @ axes[:, : min(axes.shape[1], y.shape[1])]
                value = MEASURES[metric](x, y)
            if name is None:
                everything = value
            else:
                per_roi[name] = value
        scores[metric] = SimilarityScores(all=everything, per_roi=per_roi)
    return scores
