import numpy as np
import torch

from brainmis.models.brain_head import BrainHead
from brainmis.models.losses import pearson_loss, pearson_per_voxel


def test_pearson_matches_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 32, 5))
    r = pearson_per_voxel(torch.tensor(a), torch.tensor(b)).numpy()
    expected = [np.corrcoef(a[:, v], b[:, v])[0, 1] for v in range(5)]
    np.testing.assert_allclose(r, expected, atol=1e-5)
    loss = pearson_loss(torch.tensor(a), torch.tensor(b))
    assert torch.isclose(loss, -torch.tensor(expected).float().mean(), atol=1e-5)


def test_perfect_and_anti_correlation():
    x = torch.randn(16, 3)
    assert torch.isclose(pearson_loss(2 * x + 1, x), torch.tensor(-1.0), atol=1e-5)
    assert torch.isclose(pearson_loss(-x, x), torch.tensor(1.0), atol=1e-5)


def test_zero_variance_voxels_give_finite_loss_and_gradient():
    predicted = torch.randn(8, 4, requires_grad=True)
    measured = torch.randn(8, 4)
    measured[:, 1] = 3.0  # a constant voxel
    loss = pearson_loss(predicted, measured)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(predicted.grad).all()
    assert pearson_per_voxel(predicted.detach(), measured)[1] == 0
    constant_prediction = torch.zeros(8, 4, requires_grad=True)
    loss = pearson_loss(constant_prediction, measured)
    loss.backward()
    assert loss == 0 and torch.isfinite(constant_prediction.grad).all()


def test_head_shapes_and_penalty():
    head = BrainHead(in_features=10, n_voxels=3, l2=0.5)
    assert head(torch.randn(4, 10)).shape == (4, 3)
    expected = 0.5 * head.linear.weight.pow(2).sum()
    assert torch.isclose(head.penalty(), expected)
