"""DGCNN (Wang et al., ACM TOG 2019, "Dynamic Graph CNN for Learning on Point Clouds").

Shape classification and part segmentation.

EdgeConv: for every point i, the k nearest neighbours j in the current feature space (the graph
is recomputed at every layer; the first layer's kNN is in xyz and includes the point itself),
edge features [x_j − x_i ‖ x_i] → shared MLP (BatchNorm, LeakyReLU 0.2) → max over the k edges.

Configuration of the released code (``DGCNN_cls`` / ``DGCNN_partseg``) at ``size='full'``:

- classification: k = 20, EdgeConv 64-64-128-256, concatenated (512) → 1024 embedding, max ‖ avg
  pooling (2048) → FC 512-256-C with BatchNorm, LeakyReLU 0.2 and dropout 0.5;
- segmentation: k = 40, EdgeConv (64, 64)-(64, 64)-(64), concatenated (192) → 1024, max-pooled,
  ‖ category one-hot → 64 (the label branch), broadcast to every point ‖ the three EdgeConv
  outputs (1280) → 256 → dropout 0.5 → 256 → dropout 0.5 → 128 → parts (no bias). The spatial
  transform network of the released segmenter is left out, as DD3D's PointNet drops its T-Net.

``size='small'`` divides every width by 4 (k unchanged; it is clamped to the cloud size).
Not translation-invariant: the first EdgeConv sees absolute coordinates x_i.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dd3d.models.layers import ClassifierHead, Unit, mlp, scaled, shrink, width_divisor
from dd3d.models.ops import edge_features, knn

K_CLASSIFICATION = 20
K_SEGMENTATION = 40
EDGE_CLS = ((64,), (64,), (128,), (256,))
EDGE_SEG = ((64, 64), (64, 64), (64,))
EMBEDDING = 1024
HEAD = (512, 256)
LABEL = 64
SEG_HEAD = (256, 256, 128)


class EdgeConv(nn.Module):
    """kNN graph in feature space → [x_j − x_i ‖ x_i] → shared MLP → max over the k neighbours."""

    def __init__(self, in_channels: int, widths: Sequence[int], k: int) -> None:
        super().__init__()
        self.k = k
        self.mlp = mlp((2 * in_channels, *widths), act="leaky")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(edge_features(x, x, knn(x, x, self.k))).max(dim=2).values


class EdgeConvStack(nn.ModuleList):
    """Consecutive EdgeConvs from xyz; ``forward`` returns every layer's per-point output."""

    def __init__(self, widths: Sequence[Sequence[int]], k: int) -> None:
        ins = (3, *(w[-1] for w in widths[:-1]))
        super().__init__(EdgeConv(cin, w, k) for cin, w in zip(ins, widths))
        self.out_channels = sum(w[-1] for w in widths)

    def forward(self, points: torch.Tensor) -> list[torch.Tensor]:
        outputs, x = [], points
        for layer in self:
            x = layer(x)
            outputs.append(x)
        return outputs


class DGCNN(nn.Module):
    """DGCNN shape classifier: points (B, P, 3) → logits (B, num_classes)."""

    def __init__(self, num_classes: int, size: str = "full") -> None:
        super().__init__()
        divisor = width_divisor(size)
        self.edges = EdgeConvStack([scaled(w, divisor) for w in EDGE_CLS], K_CLASSIFICATION)
        embedding = shrink(EMBEDDING, divisor)
        self.fuse = Unit(self.edges.out_channels, embedding, "leaky")
        self.head = ClassifierHead(2 * embedding, scaled(HEAD, divisor), num_classes, "leaky")

    def embed(self, points: torch.Tensor) -> torch.Tensor:
        """Max- and average-pooled embedding, concatenated (B, 2048 at full size)."""
        h = self.fuse(torch.cat(self.edges(points), dim=-1))
        return torch.cat([h.max(dim=1).values, h.mean(dim=1)], dim=-1)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(points))


class DGCNNSeg(nn.Module):
    """DGCNN part segmenter: points (B, P, 3), categories (B,) → logits (B, P, num_parts)."""

    def __init__(self, num_parts: int, num_categories: int, size: str = "full") -> None:
        super().__init__()
        divisor = width_divisor(size)
        self.num_categories = num_categories
        self.edges = EdgeConvStack([scaled(w, divisor) for w in EDGE_SEG], K_SEGMENTATION)
        embedding, label = shrink(EMBEDDING, divisor), shrink(LABEL, divisor)
        self.fuse = Unit(self.edges.out_channels, embedding, "leaky")
        self.label = Unit(num_categories, label, "leaky")
        h1, h2, h3 = scaled(SEG_HEAD, divisor)
        self.head = nn.Sequential(
            Unit(embedding + label + self.edges.out_channels, h1, "leaky"), nn.Dropout(0.5),
            Unit(h1, h2, "leaky"), nn.Dropout(0.5), Unit(h2, h3, "leaky"), nn.Linear(h3, num_parts, bias=False))

    def forward(self, points: torch.Tensor, categories: torch.Tensor) -> torch.Tensor:
        local = torch.cat(self.edges(points), dim=-1)
        pooled = self.fuse(local).max(dim=1).values
        label = self.label(F.one_hot(categories, self.num_categories).to(points.dtype))
        context = torch.cat([pooled, label], dim=-1).unsqueeze(1).expand(-1, points.shape[1], -1)
        return self.head(torch.cat([context, local], dim=-1))
