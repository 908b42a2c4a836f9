"""Gradient reversal (Ganin & Lempitsky 2015): identity forward, ``-strength * grad`` backward."""

from __future__ import annotations

import math

import torch

GRL_SCHEDULES = ("constant", "dann")


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inputs: torch.Tensor, strength: float) -> torch.Tensor:  # noqa: ANN001
        ctx.strength = strength
        return inputs.view_as(inputs)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: ANN001
        return -ctx.strength * grad_output, None


def reverse_gradient(inputs: torch.Tensor, strength: float) -> torch.Tensor:
    """``inputs`` unchanged; the gradient flowing back through it is multiplied by
    ``-strength``."""
    return _ReverseGradient.apply(inputs, float(strength))


def grl_strength(
    progress: float, lambda_max: float, schedule: str = "dann", gamma: float = 10.0
) -> float:
    """Reversal strength at training ``progress`` in [0, 1].

    ``constant``: ``lambda_max``. ``dann``: ``lambda_max * (2 / (1 + exp(-gamma * p)) - 1)``,
    rising from 0 at the start to ~``lambda_max`` (the DANN ramp).
    """
    if schedule == "constant":
        return float(lambda_max)
    if schedule == "dann":
        p = min(max(float(progress), 0.0), 1.0)
        return float(lambda_max * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0))
    raise ValueError(f"unknown GRL schedule {schedule!r}; use one of {GRL_SCHEDULES}")
