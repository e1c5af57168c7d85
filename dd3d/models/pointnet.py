"""PointNet without the T-Net, as used by DD3D (docs/reference-settings.md "Backbone").

Classification: Conv1d 3→64→128→1024 (kernel 1), each followed by InstanceNorm1d (no affine, no
running statistics), ReLU after the first two, max-pool over points, Linear(1024, C).
Segmentation: the same trunk with BatchNorm; per-point features [global 1024 ‖ category one-hot ‖
layer-1 64 ‖ layer-2 128] → Linear(1232, parts) for 16 categories and 50 parts.
Widths are ``WIDTHS`` at ``size='full'``; ``size='small'`` divides them by 4 (16, 32, 256).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dd3d.models.layers import scaled, width_divisor

WIDTHS = (64, 128, 1024)
#: (weight, layer input, layer output) of one weight layer
Tap = tuple[nn.Parameter, torch.Tensor, torch.Tensor]


class PointNet(nn.Module):
    """Shape classifier: points (B, P, 3) → logits (B, num_classes)."""

    def __init__(self, num_classes: int, size: str = "full") -> None:
        super().__init__()
        c1, c2, c3 = scaled(WIDTHS, width_divisor(size))
        self.conv1 = nn.Conv1d(3, c1, 1)
        self.conv2 = nn.Conv1d(c1, c2, 1)
        self.conv3 = nn.Conv1d(c2, c3, 1)
        self.fc = nn.Linear(c3, num_classes)

    def trunk(self, points: torch.Tensor) -> tuple[list[Tap], torch.Tensor]:
        """The convolutions' taps (weight, input, output; channels first) and the max-pooled global
        feature (B, 1024 at full size).

        The last InstanceNorm has no ReLU after it, so max_n((h_n − μ)/σ) = (max_n h_n − μ)/σ:
        the pooled value is computed from the raw max, mean and variance without materialising the
        normalised (B, 1024, P) tensor (same result as norm-then-pool; docs/reference-settings.md measured ≈1.15×
        faster on CPU).
        """
        x0 = points.transpose(1, 2)
        a1 = self.conv1(x0)
        x1 = F.relu(F.instance_norm(a1))
        a2 = self.conv2(x1)
        x2 = F.relu(F.instance_norm(a2))
        a3 = self.conv3(x2)
        var, mean = torch.var_mean(a3, dim=2, correction=0)
        pooled = (a3.amax(dim=2) - mean) * torch.rsqrt(var + 1e-5)
        return [(self.conv1.weight, x0, a1), (self.conv2.weight, x1, a2), (self.conv3.weight, x2, a3)], pooled

    def embed(self, points: torch.Tensor) -> torch.Tensor:
        """The max-pooled global feature (B, 1024 at full size); see :meth:`trunk`."""
        return self.trunk(points)[1]

    def trace(self, points: torch.Tensor) -> list[Tap]:
        """(weight, input, output) of every weight layer, the last output being the logits: what
        per-sample (and so per-class) weight gradients are computed from
        (:mod:`dd3d.distill.pointnet_gradients`)."""
        taps, pooled = self.trunk(points)
        return [*taps, (self.fc.weight, pooled, self.fc(pooled))]

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed(points))


class PointNetSeg(nn.Module):
    """Part segmenter: points (B, P, 3) and categories (B,) → per-point logits (B, P, num_parts)."""

    def __init__(self, num_parts: int, num_categories: int, size: str = "full") -> None:
        super().__init__()
        c1, c2, c3 = scaled(WIDTHS, width_divisor(size))
        self.num_categories = num_categories
        self.conv1, self.norm1 = nn.Conv1d(3, c1, 1), nn.BatchNorm1d(c1)
        self.conv2, self.norm2 = nn.Conv1d(c1, c2, 1), nn.BatchNorm1d(c2)
        self.conv3, self.norm3 = nn.Conv1d(c2, c3, 1), nn.BatchNorm1d(c3)
        self.head = nn.Conv1d(c3 + num_categories + c1 + c2, num_parts, 1)

    def forward(self, points: torch.Tensor, categories: torch.Tensor) -> torch.Tensor:
        """Computed channels-last, (B, P, C), with the 1×1 convolutions' weights as linear maps (the same
        parameters and function as the channels-first Conv1d form; CPU matrix products instead of
        convolutions, whose double backward for gradient matching is slow). The head is split by its
        input blocks: the global feature and the one-hot are the same for every point of a cloud, so
        their part of the 1×1 head is one (B, parts) term added to every point instead of a (B, P, 1232)
        concatenation."""
        f1 = F.relu(_normalised(points, self.conv1, self.norm1))
        f2 = F.relu(_normalised(f1, self.conv2, self.norm2))
        pooled = _normalised(f2, self.conv3, self.norm3).amax(dim=1)
        onehot = F.one_hot(categories, self.num_categories).to(points.dtype)
        blocks = [pooled.shape[1] + self.num_categories, f1.shape[2], f2.shape[2]]
        w_cloud, w1, w2 = self.head.weight[:, :, 0].split(blocks, dim=1)
        per_cloud = F.linear(torch.cat([pooled, onehot], dim=1), w_cloud, self.head.bias)
        return F.linear(f1, w1) + F.linear(f2, w2) + per_cloud[:, None, :]


def _normalised(x: torch.Tensor, conv: nn.Conv1d, norm: nn.BatchNorm1d) -> torch.Tensor:
    """BatchNorm(Conv1d 1×1(x)) on channels-last x (B, P, C_in) → (B, P, C_out): statistics per channel
    over all clouds and points, as BatchNorm1d on the channels-first (B, C, P) form."""
    y = F.linear(x, conv.weight[:, :, 0], conv.bias)
    return norm(y.reshape(-1, y.shape[-1])).view_as(y)
