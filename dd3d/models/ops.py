"""Point-set operators shared by the hierarchical backbones, in plain PyTorch (CPU and CUDA).

All tensors are channels-last and batched: clouds ``(B, P, 3)``, features ``(B, P, C)``, index
tensors ``(B, S)`` or ``(B, S, k)`` into the P points of each cloud. Nothing loops over points or
clouds; farthest-point sampling loops over the number of samples only.

Index selection (FPS, kNN, ball query, the three nearest sources of an interpolation) is not
differentiable, as in the original CUDA operators: gradients reach coordinates and features through
:func:`gather` and the arithmetic on the gathered values.

Requested counts larger than a cloud (centres, neighbours) are clamped to the number of points, so
every operator works on clouds smaller than a backbone's configuration.
"""
from __future__ import annotations

import torch

from dd3d.data.transforms import farthest_point_indices


def clamp_count(requested: int, available: int) -> int:
    """``requested`` limited to ``[1, available]``: how many centres/neighbours a small cloud can give."""
    return max(1, min(requested, available))


def gather(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values`` (B, P, C) at ``index`` (B, *S) → (B, *S, C); differentiable w.r.t. ``values``."""
    batch, channels = values.shape[0], values.shape[-1]
    flat = index.reshape(batch, -1, 1).expand(-1, -1, channels)
    return torch.gather(values, 1, flat).reshape(*index.shape, channels)


def farthest_point_sample(points: torch.Tensor, count: int,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices (B, count) of farthest-point samples of each cloud in ``points`` (B, P, 3), ``count``
    clamped to P (:func:`dd3d.data.transforms.farthest_point_indices`: from point 0, or a random start
    with a ``generator``)."""
    return farthest_point_indices(points, clamp_count(count, points.shape[1]), generator)


def sample_centres(points: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """FPS indices (B, S) and coordinates (B, S, 3) of ``count`` centres (clamped to P), starting at point 0."""
    index = farthest_point_sample(points, count)
    return index, gather(points, index)


@torch.no_grad()
def knn(queries: torch.Tensor, support: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (B, S, k) of the k nearest ``support`` (B, P, C) rows to each query (B, S, C), nearest first.

    Works on coordinates and on feature vectors (DGCNN's dynamic graph); a query that is also a
    support row finds itself first. ``k`` is clamped to P.
    """
    k = clamp_count(k, support.shape[1])
    return torch.cdist(queries, support).topk(k, dim=-1, largest=False).indices


@torch.no_grad()
def ball_query(centres: torch.Tensor, points: torch.Tensor, radius: float, nsample: int) -> torch.Tensor:
    """Indices (B, S, nsample) of points within ``radius`` of each centre, PointNet++ style.

    As ``query_ball_point``: the first ``nsample`` points in storage order with squared distance
    ≤ radius², padded by repeating the first one found. A centre with an empty ball (impossible when
    the centres are sampled from the points) gets its nearest point. ``nsample`` is clamped to P.
    """
    size = points.shape[1]
    nsample = clamp_count(nsample, size)
    dist2 = torch.cdist(centres, points).square()
    inside = (dist2 <= radius * radius) | (dist2 == dist2.amin(dim=-1, keepdim=True))
    order = torch.arange(size, device=points.device).expand_as(dist2)
    first = torch.where(inside, order, size).topk(nsample, dim=-1, largest=False).values
    return torch.where(first == size, first[..., :1], first)


def interpolate(targets: torch.Tensor, sources: torch.Tensor, features: torch.Tensor, k: int = 3) -> torch.Tensor:
    """Features (B, N, C) at ``targets`` (B, N, 3) from ``features`` (B, S, C) at ``sources`` (B, S, 3).

    PointNet++ feature propagation: the inverse-squared-distance weighted mean of the k = 3 nearest
    sources (k clamped to S; one source is simply broadcast). The weights are constants, as in the
    original ``three_nn`` (no gradient), and the squared distances are recomputed from the gathered
    coordinates, so a target that coincides with a source receives that source's feature.
    """
    with torch.no_grad():
        index = knn(targets, sources, k)
        dist2 = (gather(sources, index) - targets.unsqueeze(2)).square().sum(dim=-1)
        weights = 1.0 / (dist2 + 1e-8)
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return (gather(features, index) * weights.unsqueeze(-1)).sum(dim=2)


def local_coordinates(points: torch.Tensor, centres: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Neighbour coordinates relative to their centre: ``points[index] − centre`` → (B, S, k, 3)."""
    return gather(points, index) - centres.unsqueeze(2)


def ball_group(points: torch.Tensor, features: torch.Tensor | None, centres: torch.Tensor, radius: float,
               nsample: int, normalise: bool = False) -> torch.Tensor:
    """[neighbour xyz − centre (÷ radius when ``normalise``) ‖ neighbour features] per ball → (B, S, k, 3 + C).

    The grouping of PointNet++'s set abstraction (``normalise=False``) and PointNeXt's
    (``normalise_dp``); ``features`` None groups coordinates only.
    """
    index = ball_query(centres, points, radius, nsample)
    offsets = local_coordinates(points, centres, index)
    if normalise:
        offsets = offsets / radius
    return offsets if features is None else torch.cat([offsets, gather(features, index)], dim=-1)


def edge_features(features: torch.Tensor, centre_features: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """[x_j − x_i ‖ x_i] for the neighbours j = ``index`` (B, S, k) of each centre i → (B, S, k, 2C).

    DGCNN's EdgeConv input and PCT's neighbour-embedding input (``sample_and_group``).
    """
    centre = centre_features.unsqueeze(2)
    neighbours = gather(features, index)
    return torch.cat([neighbours - centre, centre.expand_as(neighbours)], dim=-1)
