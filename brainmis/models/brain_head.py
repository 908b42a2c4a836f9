"""The linear brain head: window features -> voxel responses, with its own L2 penalty."""

from __future__ import annotations

import torch
from torch import nn


class BrainHead(nn.Module):
    """``(batch, in_features) -> (batch, n_voxels)`` linear map.

    ``penalty()`` is ``l2 * ||W||^2`` (weights only, no bias): the ridge term of the head,
    added to the loss unscaled by the brain-loss weight.
    """

    def __init__(self, in_features: int, n_voxels: int, l2: float = 1e-3):
        super().__init__()
        self.linear = nn.Linear(in_features, n_voxels)
        self.l2 = float(l2)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features.to(self.linear.weight.dtype))

    def penalty(self) -> torch.Tensor:
        return self.l2 * self.linear.weight.pow(2).sum()
