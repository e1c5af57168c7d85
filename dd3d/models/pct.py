"""PCT, the full "Point Cloud Transformer" (Guo et al., Computational Visual Media 2021), classification.

Configuration (the paper's PCT variant — neighbour embedding and four offset-attention layers — as
in the released code's ``Pct``) at ``size='full'``:

- input embedding: two LBR units 3 → 64 → 64 (Linear, BatchNorm, ReLU);
- neighbour embedding: two sample-and-group (SG) layers, 512 then 256 FPS centres, k = 32 nearest
  neighbours in xyz, [f_j − f_i ‖ f_i] → two LBR units (128 then 256 channels) → max over k;
- two LBR units 256 → 256, then four offset-attention layers of 256 channels: shared query/key
  projection to 64, value 256, softmax over keys then ℓ1 normalisation over queries,
  x + LBR(x − attention(x));
- the four attention outputs ‖ the neighbour embedding (1280) → 1024 (BatchNorm, LeakyReLU 0.2),
  max-pooled (the released code's global feature; the paper text also mentions average pooling),
  FC 512-256-C with BatchNorm, LeakyReLU 0.2 and dropout 0.5.

``size='small'`` divides every width and the number of centres by 4 (k unchanged; clamped to the
cloud size). Not translation-invariant: the input embedding sees absolute coordinates.
"""
from __future__ import annotations

import torch
from torch import nn

from dd3d.models.layers import ClassifierHead, Unit, mlp, scaled, shrink, width_divisor
from dd3d.models.ops import edge_features, gather, knn, sample_centres

INPUT_EMBEDDING = (64, 64)
#: (centres, output channels) of the two sample-and-group layers.
NEIGHBOUR_EMBEDDING = ((512, 128), (256, 256))
NEIGHBOURS = 32
ATTENTION_LAYERS = 4
FUSE = 1024
HEAD = (512, 256)


class SampleGroup(nn.Module):
    """PCT's SG layer: FPS centres, kNN in xyz, [f_j − f_i ‖ f_i] → two LBR units → max over neighbours."""

    def __init__(self, centres: int, in_channels: int, out_channels: int, k: int) -> None:
        super().__init__()
        self.centres, self.k = centres, k
        self.mlp = mlp((2 * in_channels, out_channels, out_channels))

    def forward(self, points: torch.Tensor, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        index, centres = sample_centres(points, self.centres)
        grouped = edge_features(features, gather(features, index), knn(centres, points, self.k))
        return centres, self.mlp(grouped).max(dim=2).values


class OffsetAttention(nn.Module):
    """Offset attention: x + LBR(x − A·V) with A = softmax(QQᵀ) rows, then ℓ1-normalised columns.

    Query and key share one bias-free projection to C/4 channels, as in the released code.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.query_key = nn.Linear(channels, shrink(channels, 4), bias=False)
        self.value = nn.Linear(channels, channels)
        self.transform = Unit(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.query_key(x)
        attention = torch.softmax(q @ q.transpose(1, 2), dim=-1)
        attention = attention / (1e-9 + attention.sum(dim=1, keepdim=True))
        return x + self.transform(x - attention.transpose(1, 2) @ self.value(x))


class PCT(nn.Module):
    """PCT shape classifier: points (B, P, 3) → logits (B, num_classes)."""

    def __init__(self, num_classes: int, size: str = "full") -> None:
        super().__init__()
        divisor = width_divisor(size)
        widths = scaled(INPUT_EMBEDDING, divisor)
        self.embedding = mlp((3, *widths))
        layers, channels = [], widths[-1]
        for centres, out in NEIGHBOUR_EMBEDDING:
            out = shrink(out, divisor)
            layers.append(SampleGroup(shrink(centres, divisor), channels, out, NEIGHBOURS))
            channels = out
        self.neighbours = nn.ModuleList(layers)
        self.pre = mlp((channels, channels, channels))
        self.attention = nn.ModuleList(OffsetAttention(channels) for _ in range(ATTENTION_LAYERS))
        fuse = shrink(FUSE, divisor)
        self.fuse = Unit((ATTENTION_LAYERS + 1) * channels, fuse, "leaky")
        self.head = ClassifierHead(fuse, scaled(HEAD, divisor), num_classes, "leaky")

    def embed(self, points: torch.Tensor) -> torch.Tensor:
        """The max-pooled fused feature (B, 1024 at full size)."""
        xyz, x = points, self.embedding(points)
        for layer in self.neighbours:
            xyz, x = layer(xyz, x)
        outputs, h = [], self.pre(x)
        for layer in self.attention:
            h = layer(h)
            outputs.append(h)
        return self.fuse(torch.cat([*outputs, x], dim=-1)).max(dim=1).values

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(points))
