"""PointNeXt-S (Qian et al., NeurIPS 2022, "PointNeXt: Revisiting PointNet++ with Improved Training
and Scaling Strategies"), shape classification.

Configuration of the released ``pointnext-s.yaml`` (ModelNet40: width 32, blocks 1-1-1-1-1-1,
strides 1-2-2-2-2-1, two layers per set abstraction with a residual, radius 0.15 × 1.5 per
downsampling, 32 neighbours, ``dp_fj`` grouping with ``normalize_dp``, max reduction,
BatchNorm, ReLU, head 512-256) at ``size='full'``:

- stem: Linear 3 → 32 on xyz (no norm, no activation);
- four residual set abstractions, each halving the points by FPS (P/2, P/4, P/8, P/16), ball radius
  0.15, 0.225, 0.3375, 0.50625, 32 neighbours, [(xyz_j − xyz_i)/r ‖ f_j] → MLP C'/2 (BN, ReLU) →
  C' (BN) → max, plus a Linear skip of the centre's feature, then ReLU; channels 64-128-256-512
  (blocks of 1 mean no inverted-residual MLPs);
- group-all abstraction: [absolute xyz ‖ f] → 512 → 512 (BN, ReLU) → max;
- head FC 512-256-C with BatchNorm, ReLU and dropout 0.5.

``size='small'`` divides every width by 4 and samples 4× fewer centres (P/8 … P/64); radii and
neighbour counts are unchanged and clamped to the cloud size. Not translation-invariant: the stem
sees absolute coordinates.
"""
from __future__ import annotations

import torch
from torch import nn

from dd3d.models.layers import ClassifierHead, mlp, scaled, shrink, width_divisor
from dd3d.models.ops import ball_group, gather, sample_centres
from dd3d.models.pointnet2 import GroupAll

WIDTH = 32
#: output channels of the four downsampling abstractions (stride 2 each) and of group-all.
CHANNELS = (64, 128, 256, 512)
GLOBAL = (512, 512)
RADIUS, RADIUS_SCALING = 0.15, 1.5
NEIGHBOURS = 32
HEAD = (512, 256)


class ResidualAbstraction(nn.Module):
    """PointNeXt set abstraction: FPS to P/stride, ball group with dp/r, two-layer MLP, max, + skip, ReLU."""

    def __init__(self, stride: int, radius: float, nsample: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.stride, self.radius, self.nsample = stride, radius, nsample
        self.mlp = mlp((in_channels + 3, shrink(out_channels, 2), out_channels), last_act=False)
        self.skip = nn.Linear(in_channels, out_channels) if in_channels != out_channels else nn.Identity()

    def forward(self, points: torch.Tensor, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        index, centres = sample_centres(points, points.shape[1] // self.stride)
        grouped = ball_group(points, features, centres, self.radius, self.nsample, normalise=True)
        return centres, torch.relu(self.mlp(grouped).max(dim=2).values + self.skip(gather(features, index)))


class PointNeXt(nn.Module):
    """PointNeXt-S shape classifier: points (B, P, 3) → logits (B, num_classes)."""

    def __init__(self, num_classes: int, size: str = "full") -> None:
        super().__init__()
        divisor = width_divisor(size)
        channels = shrink(WIDTH, divisor)
        self.stem = nn.Linear(3, channels)
        layers, radius = [], RADIUS
        for i, out in enumerate(scaled(CHANNELS, divisor)):
            layers.append(ResidualAbstraction(2 * divisor if i == 0 else 2, radius, NEIGHBOURS, channels, out))
            channels, radius = out, radius * RADIUS_SCALING
        self.abstractions = nn.ModuleList(layers)
        widths = scaled(GLOBAL, divisor)
        self.group_all = GroupAll(channels, widths)
        self.head = ClassifierHead(widths[-1], scaled(HEAD, divisor), num_classes)

    def embed(self, points: torch.Tensor) -> torch.Tensor:
        """The group-all global feature (B, 512 at full size)."""
        xyz, x = points, self.stem(points)
        for layer in self.abstractions:
            xyz, x = layer(xyz, x)
        return self.group_all(xyz, x)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(points))
