"""A closed-form adversary: the brain head re-fitted by ridge on recent features.

Trained by gradient steps, an adversarial head lags behind the backbone, and the backbone can
escape the reversed gradient by turning the head's correlation negative (flipping the sign of
the brain information) instead of removing it. Re-fitting the head in closed form every few
steps takes that way out: whatever linear code the recent features carry, the head reads it
with the right sign again.

``FeatureBuffer`` keeps the detached features and targets of the last ``capacity`` training
batches; ``ridge_head_weights`` solves the ridge on them (centred, so the bias is the
intercept). The penalty is relative: ``alpha = l2 * trace(Xc Xc^T) / n``, the mean squared
norm of the centred features times ``l2``, so one ``l2`` means the same shrinkage at any
feature scale. With fewer samples than features (the usual case: 8 batches of 16 against
5 x hidden features) the dual form is solved, ``W = Xc^T (Xc Xc^T + alpha I)^-1 Yc``;
otherwise the primal ``(Xc^T Xc + alpha I)^-1 Xc^T Yc``. Both are the same ridge.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import torch


class FeatureBuffer:
    """The last ``capacity`` batches of ``(features (B, F), targets (B, V))``, detached."""

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self.batches: deque[tuple[torch.Tensor, torch.Tensor]] = deque(maxlen=self.capacity)

    def __len__(self) -> int:
        return len(self.batches)

    def add(self, features: torch.Tensor, targets: torch.Tensor) -> None:
        self.batches.append((features.detach().float().clone(), targets.detach().float().clone()))

    def stacked(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """``(n, F)`` features and ``(n, V)`` targets of every buffered sample, on ``device``."""
        features = torch.cat([f.to(device) for f, _ in self.batches])
        targets = torch.cat([t.to(device) for _, t in self.batches])
        return features, targets

    def state_dict(self) -> dict[str, Any]:
        """CPU copies of the buffered batches (saved in the checkpoint for exact resume)."""
        return {
            "features": [f.cpu() for f, _ in self.batches],
            "targets": [t.cpu() for _, t in self.batches],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batches.clear()
        for features, targets in zip(state["features"], state["targets"], strict=True):
            self.batches.append((features, targets))


def ridge_head_weights(
    features: torch.Tensor, targets: torch.Tensor, l2: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ridge regression of ``targets`` on ``features`` with an intercept.

    Args:
        features: ``(n, F)``.
        targets: ``(n, V)``.
        l2: penalty relative to the mean squared norm of the centred features (> 0).

    Returns:
        ``weight (V, F)`` and ``bias (V,)`` in float32 (the layout of ``nn.Linear``),
        computed in float64.
    """
    x = features.double()
    y = targets.double()
    x_mean, y_mean = x.mean(dim=0), y.mean(dim=0)
    xc, yc = x - x_mean, y - y_mean
    n, n_features = xc.shape
    alpha = float(l2) * float((xc * xc).sum()) / max(n, 1)
    alpha = max(alpha, 1e-12)
    if n < n_features:
        gram = xc @ xc.T + alpha * torch.eye(n, dtype=x.dtype, device=x.device)
        coefficients = xc.T @ torch.linalg.solve(gram, yc)  # (F, V)
    else:
        covariance = xc.T @ xc + alpha * torch.eye(n_features, dtype=x.dtype, device=x.device)
        coefficients = torch.linalg.solve(covariance, xc.T @ yc)
    bias = y_mean - x_mean @ coefficients
    return coefficients.T.float().contiguous(), bias.float()
