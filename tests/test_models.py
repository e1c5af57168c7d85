"""Backbones: output shapes, gradients, and the fused InstanceNorm/max-pool identity."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dd3d.errors import ConfigError
from dd3d.models import build_model
from dd3d.models.pointnet import PointNet


def test_pointnet_shapes_and_gradients() -> None:
    torch.manual_seed(0)
    model = build_model("pointnet", "classification", num_classes=7)
    x = torch.randn(3, 64, 3)
    logits = model(x)
    assert logits.shape == (3, 7)
    F.cross_entropy(logits, torch.tensor([0, 1, 2])).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_pointnet_is_permutation_invariant() -> None:
    torch.manual_seed(0)
    model = build_model("pointnet", "classification", num_classes=5)
    x = torch.randn(2, 50, 3)
    assert torch.allclose(model(x), model(x[:, torch.randperm(50)]), atol=1e-5)


def test_fused_pool_equals_norm_then_pool() -> None:
    torch.manual_seed(0)
    model = PointNet(4)
    x = torch.randn(5, 128, 3)
    h = F.relu(F.instance_norm(model.conv1(x.transpose(1, 2))))
    h = model.conv3(F.relu(F.instance_norm(model.conv2(h))))
    assert torch.allclose(F.instance_norm(h).amax(dim=2), model.embed(x), atol=1e-5)


def test_pointnet_seg_shapes_and_gradients() -> None:
    torch.manual_seed(0)
    model = build_model("pointnet", "segmentation", num_classes=3, num_parts=8)
    x = torch.randn(4, 32, 3)
    logits = model(x, torch.tensor([0, 2, 1, 0]))
    assert logits.shape == (4, 32, 8)
    F.cross_entropy(logits.reshape(-1, 8), torch.randint(8, (128,))).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_unknown_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="available: pointnet"):
        build_model("pointnet9", "classification", 3)
