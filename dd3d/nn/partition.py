"""Part labels of generated points from their noise (paper §4.2 "Noise Distribution", §4.3, Figure 2).

For segmentation every generated point needs a part label before it exists. The generator's input
is one scalar u ~ U(0, 1) per point, so the interval [0, 1] is cut into consecutive segments, one
per part of the category, with lengths equal to the part's share of the category's points in the
training split (e.g. an airplane: u < 0.45 fuselage, then wings, …). A point's label is the segment
its noise falls in; with uniform noise the expected part sizes follow the real proportions.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dd3d.data.base import PointCloudSet
from dd3d.nn.generator import PointGenerator


class NoisePartition:
    """Per category: its global part ids and the noise interval of each (cumulative proportions)."""

    def __init__(self, part_ids: list[list[int]], proportions: list[list[float]]) -> None:
        if len(part_ids) != len(proportions) or any(len(i) != len(p) for i, p in zip(part_ids, proportions)):
            raise ValueError("part_ids and proportions must have the same shape")
        self.part_ids = [list(map(int, ids)) for ids in part_ids]
        self.proportions = [list(map(float, p)) for p in proportions]
        width = max(len(ids) for ids in self.part_ids)
        # (K, width-1) upper edges of every segment but the last, padded with +inf; (K, width) ids
        edges = torch.full((len(part_ids), max(width - 1, 0)), float("inf"), dtype=torch.float64)
        ids = torch.full((len(part_ids), width), -1, dtype=torch.long)
        for k, (part, share) in enumerate(zip(self.part_ids, self.proportions)):
            cumulative = np.cumsum(share) / max(sum(share), 1e-12)
            edges[k, :len(part) - 1] = torch.from_numpy(cumulative[:-1])
            ids[k, :len(part)] = torch.tensor(part)
        self.edges, self.ids = edges, ids

    @classmethod
    def from_data(cls, data: PointCloudSet) -> "NoisePartition":
        """Proportions of every category's parts among its points in ``data`` (the training split)."""
        if data.parts is None or data.category_parts is None:
            raise ValueError(f"{data.source}: no part labels to take proportions from")
        part_ids, proportions = [], []
        for k in range(data.num_classes):
            ids = list(data.category_parts[k])
            counts = np.bincount(data.parts[data.labels == k].reshape(-1), minlength=max(ids) + 1)[ids]
            part_ids.append(ids)
            proportions.append((counts / max(counts.sum(), 1)).tolist())
        return cls(part_ids, proportions)

    def labels(self, noise: torch.Tensor, categories: torch.Tensor) -> torch.Tensor:
        """Global part id (B, N) of each noise value (B, N) of clouds of ``categories`` (B,)."""
        edges = self.edges.to(noise.device)[categories]  # (B, width-1)
        slot = (noise.to(edges.dtype).unsqueeze(-1) >= edges.unsqueeze(1)).sum(dim=-1)
        return torch.gather(self.ids.to(noise.device)[categories], 1, slot)

    def to_payload(self) -> dict[str, Any]:
        """Plain lists for run files (``generator.pt``, ``distill.json``)."""
        return {"part_ids": self.part_ids, "proportions": self.proportions}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> "NoisePartition":
        return cls(payload["part_ids"], payload["proportions"])


def generate_labelled(generator: PointGenerator, partition: NoisePartition | None, samples: torch.Tensor, cpc: int,
                      points: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Clouds (B, points, 3) of synthetic ``samples`` (B,) from fresh noise, and with a ``partition``
    their part labels (B, points) (sample s belongs to category s // cpc), else None. Parts are intervals of
    the first noise coordinate (the paper's scalar noise when ``generator.noise_dim`` is 1)."""
    noise = generator.sample_noise(len(samples), points, rng)
    clouds = generator(noise, samples)
    return clouds, None if partition is None else partition.labels(noise[..., 0], samples // cpc)
