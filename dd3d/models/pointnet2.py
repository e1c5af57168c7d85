"""PointNet++ with single-scale grouping (Qi et al., NeurIPS 2017, "PointNet++"), classification and part segmentation.

Configuration (the paper's SSG ModelNet40 / ShapeNet-part networks, ``pointnet2_cls_ssg`` and
``pointnet2_part_seg_ssg`` of the released code), at ``size='full'``:

- SA1: 512 FPS centres, ball radius 0.2, 32 neighbours, MLP 64-64-128 on local xyz;
- SA2: 128 centres, radius 0.4, 64 neighbours, MLP 128-128-256 on [local xyz ‖ features];
- SA3: group-all, MLP 256-512-1024 on [absolute xyz ‖ features], max-pooled → 1024-d global feature;
- classification head FC 512-256-C, BatchNorm, ReLU, dropout 0.5;
- segmentation: feature propagation FP3 256-256, FP2 256-128, FP1 128-128-128 (three-NN inverse
  distance interpolation + skip features), the category one-hot and xyz concatenated at FP1, then
  128 → dropout 0.5 → parts. There are no normals, so level-0 features are xyz once (the released
  code concatenates [one-hot, xyz, xyz] without normals).

``size='small'`` divides every width and the number of centres by 4 (radii and neighbour counts
unchanged). Centre and neighbour counts are clamped to the cloud size.

Not translation-invariant: SA1/SA2 see only local coordinates, but group-all sees absolute xyz.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dd3d.models.layers import ClassifierHead, mlp, scaled, shrink, width_divisor
from dd3d.models.ops import ball_group, interpolate, sample_centres

#: (centres, radius, neighbours, MLP widths) of SA1 and SA2.
SET_ABSTRACTIONS = ((512, 0.2, 32, (64, 64, 128)), (128, 0.4, 64, (128, 128, 256)))
GROUP_ALL = (256, 512, 1024)
HEAD = (512, 256)
PROPAGATIONS = ((256, 256), (256, 128), (128, 128, 128))
SEG_HEAD = (128,)


class SetAbstraction(nn.Module):
    """FPS centres → ball query → [local xyz ‖ neighbour features] → shared MLP → max over each ball."""

    def __init__(self, centres: int, radius: float, nsample: int, in_channels: int, widths: Sequence[int]) -> None:
        super().__init__()
        self.centres, self.radius, self.nsample = centres, radius, nsample
        self.mlp = mlp((in_channels + 3, *widths))

    def forward(self, points: torch.Tensor, features: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        _, centres = sample_centres(points, self.centres)
        grouped = ball_group(points, features, centres, self.radius, self.nsample)
        return centres, self.mlp(grouped).max(dim=2).values


class GroupAll(nn.Module):
    """Group-all abstraction: [absolute xyz ‖ features] of every point → shared MLP → max → (B, C)."""

    def __init__(self, in_channels: int, widths: Sequence[int]) -> None:
        super().__init__()
        self.mlp = mlp((in_channels + 3, *widths))

    def forward(self, points: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([points, features], dim=-1)).max(dim=1).values


class PointNet2Encoder(nn.Module):
    """SA1 → SA2 → group-all; returns every level's (xyz, features) and the global feature."""

    def __init__(self, divisor: int) -> None:
        super().__init__()
        layers, channels = [], 0
        for centres, radius, nsample, widths in SET_ABSTRACTIONS:
            widths = scaled(widths, divisor)
            layers.append(SetAbstraction(shrink(centres, divisor), radius, nsample, channels, widths))
            channels = widths[-1]
        self.abstractions = nn.ModuleList(layers)
        self.global_widths = scaled(GROUP_ALL, divisor)
        self.group_all = GroupAll(channels, self.global_widths)

    def forward(self, points: torch.Tensor) -> tuple[list[tuple[torch.Tensor, torch.Tensor | None]], torch.Tensor]:
        levels: list[tuple[torch.Tensor, torch.Tensor | None]] = [(points, None)]
        for layer in self.abstractions:
            levels.append(layer(*levels[-1]))
        return levels, self.group_all(*levels[-1])


class PointNet2(nn.Module):
    """PointNet++ SSG shape classifier: points (B, P, 3) → logits (B, num_classes)."""

    def __init__(self, num_classes: int, size: str = "full") -> None:
        super().__init__()
        divisor = width_divisor(size)
        self.encoder = PointNet2Encoder(divisor)
        self.head = ClassifierHead(self.encoder.global_widths[-1], scaled(HEAD, divisor), num_classes)

    def embed(self, points: torch.Tensor) -> torch.Tensor:
        """The group-all global feature (B, 1024 at full size)."""
        return self.encoder(points)[1]

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(points))


class PointNet2Seg(nn.Module):
    """PointNet++ SSG part segmenter: points (B, P, 3), categories (B,) → logits (B, P, num_parts)."""

    def __init__(self, num_parts: int, num_categories: int, size: str = "full") -> None:
        super().__init__()
        divisor = width_divisor(size)
        self.num_categories = num_categories
        self.encoder = PointNet2Encoder(divisor)
        fp3, fp2, fp1 = (scaled(w, divisor) for w in PROPAGATIONS)
        sa1, sa2 = (scaled(widths, divisor)[-1] for *_, widths in SET_ABSTRACTIONS)
        self.fp3 = mlp((sa2 + self.encoder.global_widths[-1], *fp3))
        self.fp2 = mlp((sa1 + fp3[-1], *fp2))
        self.fp1 = mlp((num_categories + 3 + fp2[-1], *fp1))
        self.head = ClassifierHead(fp1[-1], scaled(SEG_HEAD, divisor), num_parts)

    def forward(self, points: torch.Tensor, categories: torch.Tensor) -> torch.Tensor:
        levels, pooled = self.encoder(points)
        (xyz0, _), (xyz1, feat1), (xyz2, feat2) = levels
        x = self.fp3(torch.cat([feat2, pooled.unsqueeze(1).expand(-1, xyz2.shape[1], -1)], dim=-1))
        x = self.fp2(torch.cat([feat1, interpolate(xyz1, xyz2, x)], dim=-1))
        onehot = F.one_hot(categories, self.num_categories).to(points.dtype)
        level0 = [onehot.unsqueeze(1).expand(-1, xyz0.shape[1], -1), xyz0, interpolate(xyz0, xyz1, x)]
        return self.head(self.fp1(torch.cat(level0, dim=-1)))
