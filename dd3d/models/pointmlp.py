"""PointMLP-elite (Ma et al., ICLR 2022, "Rethinking Network Design and Local Geometry in Point
Cloud: A Simple Residual MLP Framework"), shape classification.

Configuration of the released ``pointMLPElite`` at ``size='full'``: embedding 3 → 32 (Linear,
BatchNorm, ReLU), then four stages with 512, 256, 128, 64 FPS anchors, k = 24 nearest neighbours
in xyz, output channels 64, 128, 256, 256 (dim expansion 2-2-2-1), pre-blocks 1-1-2-1 and
pos-blocks 1-1-2-1, residual bottleneck expansion 0.25, ReLU, no xyz concatenation
(``use_xyz=False``), "anchor" geometric affine normalisation:
neighbours' offsets from their anchor feature, divided by their standard deviation over the
whole cloud, scaled by α and shifted by β (learned, per channel), ‖ the anchor feature.
Each stage: transfer unit 2C → C', pre-blocks on every neighbour, max over the neighbours,
pos-blocks on the anchors. Global max pooling, then FC 512-256-C with BatchNorm, ReLU, dropout 0.5.

``size='small'`` divides every width and the number of anchors by 4 (k unchanged; anchors and k
are clamped to the cloud size). Not translation-invariant: the embedding sees absolute coordinates.
"""
from __future__ import annotations

import torch
from torch import nn

from dd3d.models.layers import ClassifierHead, Unit, scaled, shrink, width_divisor
from dd3d.models.ops import gather, knn, sample_centres

EMBEDDING = 32
#: (anchors, output channels, pre-blocks, pos-blocks) per stage.
STAGES = ((512, 64, 1, 1), (256, 128, 1, 1), (128, 256, 2, 2), (64, 256, 1, 1))
NEIGHBOURS = 24
RES_EXPANSION = 0.25
HEAD = (512, 256)


class ResidualBlock(nn.Module):
    """ReLU(x + BN(Linear(ReLU(BN(Linear(x)))))) with a bottleneck of ``expansion`` × channels."""

    def __init__(self, channels: int, expansion: float) -> None:
        super().__init__()
        hidden = max(1, int(channels * expansion))
        self.body = nn.Sequential(Unit(channels, hidden), Unit(hidden, channels, "none"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + x)


class Stage(nn.Module):
    """FPS anchors, kNN grouping with geometric affine normalisation, pre-blocks, max, pos-blocks."""

    def __init__(self, anchors: int, k: int, in_channels: int, out_channels: int, pre: int, pos: int) -> None:
        super().__init__()
        self.anchors, self.k = anchors, k
        self.alpha = nn.Parameter(torch.ones(in_channels))
        self.beta = nn.Parameter(torch.zeros(in_channels))
        self.transfer = Unit(2 * in_channels, out_channels)
        self.pre = nn.Sequential(*(ResidualBlock(out_channels, RES_EXPANSION) for _ in range(pre)))
        self.pos = nn.Sequential(*(ResidualBlock(out_channels, RES_EXPANSION) for _ in range(pos)))

    def forward(self, points: torch.Tensor, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        index, centres = sample_centres(points, self.anchors)
        anchor = gather(features, index).unsqueeze(2)
        offsets = gather(features, knn(centres, points, self.k)) - anchor
        spread = offsets.reshape(offsets.shape[0], -1).std(dim=-1).view(-1, 1, 1, 1)
        grouped = torch.cat([self.alpha * offsets / (spread + 1e-5) + self.beta, anchor.expand_as(offsets)], dim=-1)
        return centres, self.pos(self.pre(self.transfer(grouped)).max(dim=2).values)


class PointMLP(nn.Module):
    """PointMLP-elite shape classifier: points (B, P, 3) → logits (B, num_classes)."""

    def __init__(self, num_classes: int, size: str = "full") -> None:
        super().__init__()
        divisor = width_divisor(size)
        channels = shrink(EMBEDDING, divisor)
        self.embedding = Unit(3, channels)
        stages = []
        for anchors, out, pre, pos in STAGES:
            out = shrink(out, divisor)
            stages.append(Stage(shrink(anchors, divisor), NEIGHBOURS, channels, out, pre, pos))
            channels = out
        self.stages = nn.ModuleList(stages)
        self.head = ClassifierHead(channels, scaled(HEAD, divisor), num_classes)

    def embed(self, points: torch.Tensor) -> torch.Tensor:
        """The max-pooled last-stage feature (B, 256 at full size)."""
        xyz, x = points, self.embedding(points)
        for stage in self.stages:
            xyz, x = stage(xyz, x)
        return x.max(dim=1).values

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(points))
