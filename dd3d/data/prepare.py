"""Turn a loaded split into the clouds a model sees (paper §5, "Data Preparation").

Order: resample to ``data.resolution`` → unit-sphere normalisation → (rotated setting) one random
SO(3) rotation per cloud, fixed by ``data.rotation_seed`` and the split → (``canonical: pca``)
projection on the principal axes.
"""
from __future__ import annotations

import zlib

import numpy as np
import torch

from dd3d.config import DataConfig
from dd3d.data.base import PointCloudSet
from dd3d.data.transforms import (
    farthest_point_indices,
    gather_points,
    normalize_unit_sphere,
    pca_canonicalize,
    random_rotations,
    random_subset_indices,
    rotate,
)

CHUNK = 2048  # clouds processed at once, bounding peak memory on large datasets


def split_generator(seed: int, split: str, purpose: str) -> torch.Generator:
    """A CPU generator determined by (seed, split, purpose) only."""
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(f"{split}/{purpose}".encode()))


def resample(points: torch.Tensor, parts: torch.Tensor | None, n: int, method: str,
             generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Resample every cloud to ``n`` points by random subset or farthest-point sampling (the indices are
    drawn with ``generator``, a CPU generator, and moved to the points' device)."""
    total = points.shape[1]
    if n == total:
        return points, parts
    if method == "fps" and n < total:
        index = farthest_point_indices(points, n, generator)
    else:
        index = random_subset_indices(points.shape[0], total, n, generator).to(points.device)
    return gather_points(points, index), None if parts is None else gather_points(parts, index)


def prepare_split(data: PointCloudSet, cfg: DataConfig, split: str) -> PointCloudSet:
    """Apply the configured preparation to one split; deterministic for a given config."""
    pick = split_generator(cfg.rotation_seed, split, "resample")
    turn = split_generator(cfg.rotation_seed, split, "rotate")
    out_points, out_parts = [], []
    for start in range(0, len(data), CHUNK):
        pts = torch.from_numpy(data.points[start:start + CHUNK])
        parts = None if data.parts is None else torch.from_numpy(data.parts[start:start + CHUNK])
        pts, parts = resample(pts, parts, cfg.resolution, cfg.sampling, pick)
        pts = normalize_unit_sphere(pts)
        if cfg.setting == "rotated":
            pts = rotate(pts, random_rotations(pts.shape[0], turn))
        if cfg.canonical == "pca":
            pts = pca_canonicalize(pts)
        out_points.append(pts.numpy())
        if parts is not None:
            out_parts.append(parts.numpy())
    points = np.concatenate(out_points) if out_points else np.zeros((0, cfg.resolution, 3), np.float32)
    parts = None
    if data.parts is not None:
        parts = np.concatenate(out_parts) if out_parts else np.zeros((0, cfg.resolution), np.int64)
    return data.with_points(points, parts)
