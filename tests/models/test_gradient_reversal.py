import math

import pytest
import torch

from brainmis.models.gradient_reversal import grl_strength, reverse_gradient


def test_forward_is_identity_and_backward_is_scaled_and_reversed():
    x = torch.randn(4, 3, requires_grad=True)
    y = reverse_gradient(x, 0.7)
    assert torch.equal(y, x)
    weights = torch.randn(4, 3)
    (y * weights).sum().backward()
    assert torch.allclose(x.grad, -0.7 * weights)


def test_zero_strength_blocks_the_gradient():
    x = torch.randn(5, requires_grad=True)
    reverse_gradient(x, 0.0).sum().backward()
    assert torch.all(x.grad == 0)


def test_dann_ramp_rises_from_zero_to_lambda_max():
    values = [grl_strength(p, 2.0, "dann", gamma=10.0) for p in (0.0, 0.1, 0.5, 1.0)]
    assert values[0] == 0.0
    assert values == sorted(values)
    assert values[1] == pytest.approx(2.0 * (2 / (1 + math.exp(-1.0)) - 1))
    assert values[-1] == pytest.approx(2.0, abs=1e-3)
    assert grl_strength(5.0, 2.0, "dann") == values[-1]  # progress is clipped to [0, 1]


def test_constant_schedule_and_unknown_schedule():
    assert grl_strength(0.0, 0.3, "constant") == 0.3
    with pytest.raises(ValueError, match="unknown GRL schedule"):
        grl_strength(0.5, 1.0, "linear")
