"""Brain loss: negative mean Pearson correlation across voxels."""

from __future__ import annotations

import torch

EPS = 1e-8


def pearson_per_voxel(predicted: torch.Tensor, measured: torch.Tensor) -> torch.Tensor:
    """Pearson r of every column over the rows (samples).

    Args:
        predicted: ``(samples, voxels)``.
        measured: ``(samples, voxels)``.

    Returns:
        ``(voxels,)`` float32 correlations; a column with zero variance (in either input)
        gives 0, and the gradient stays finite.
    """
    predicted = predicted.float()
    measured = measured.float()
    pc = predicted - predicted.mean(dim=0, keepdim=True)
    mc = measured - measured.mean(dim=0, keepdim=True)
    covariance = (pc * mc).sum(dim=0)
    scale = torch.sqrt((pc * pc).sum(dim=0) * (mc * mc).sum(dim=0) + EPS)
    return covariance / scale


def pearson_loss(predicted: torch.Tensor, measured: torch.Tensor) -> torch.Tensor:
    """``-mean_v r_v`` over the batch: a scalar in [-1, 1], finite for constant voxels."""
    return -pearson_per_voxel(predicted, measured).mean()
