"""Point-cloud transforms on batched torch tensors of shape (B, P, 3).

Everything here is batched and vectorised (no Python loops over points) so the same code prepares
datasets, augments training batches and post-processes generated clouds, on CPU or GPU.
"""
from __future__ import annotations

import torch

from dd3d.config import AugmentConfig


def normalize_unit_sphere(points: torch.Tensor) -> torch.Tensor:
    """Centre each cloud at its centroid and scale it so the farthest point has norm 1."""
    centred = points - points.mean(dim=1, keepdim=True)
    radius = centred.norm(dim=2).amax(dim=1).clamp_min(1e-12)
    return centred / radius[:, None, None]


def random_subset_indices(batch: int, total: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """(batch, n) indices: a random subset of ``total`` points per cloud (with replacement if n > total)."""
    if n <= total:
        return torch.rand(batch, total, generator=generator).argsort(dim=1)[:, :n]
    return torch.randint(total, (batch, n), generator=generator)


@torch.no_grad()
def farthest_point_indices(points: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, n) farthest-point-sampling indices, vectorised over the batch.

    Starts from a random point per cloud drawn on the generator's device (or point 0 without a
    generator, as the PointNet++ CUDA kernel) and repeatedly takes the point farthest from those
    chosen so far, so the indices are distinct when the points are. Loops over the n samples, never
    over points. Not differentiable (an index selection).
    """
    b, p, _ = points.shape
    if n > p:
        raise ValueError(f"farthest-point sampling needs n <= points per cloud, got {n} > {p}")
    chosen = torch.empty(b, n, dtype=torch.long, device=points.device)
    nearest = torch.full((b, p), float("inf"), dtype=points.dtype, device=points.device)
    if generator is None:
        current = torch.zeros(b, dtype=torch.long, device=points.device)
    else:
        current = torch.randint(p, (b,), generator=generator, device=generator.device).to(points.device)
    rows = torch.arange(b, device=points.device)
    for i in range(n):
        chosen[:, i] = current
        d = (points - points[rows, current][:, None, :]).square().sum(dim=2)
        nearest = torch.minimum(nearest, d)
        current = nearest.argmax(dim=1)
    return chosen


def gather_points(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Select points per cloud: values (B, P, ...) with index (B, n) -> (B, n, ...)."""
    rows = torch.arange(values.shape[0], device=values.device)[:, None]
    return values[rows, index]


def random_rotations(n: int, generator: torch.Generator, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(n, 3, 3) rotation matrices drawn uniformly from SO(3) (normalised Gaussian quaternions)."""
    q = torch.randn(n, 4, generator=generator, dtype=torch.float64)
    q = q / q.norm(dim=1, keepdim=True)
    return quaternion_to_matrix(q).to(dtype)


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternions (n, 4) as (w, x, y, z) -> rotation matrices (n, 3, 3)."""
    w, x, y, z = q.unbind(dim=1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
        ],
        dim=1,
    ).reshape(-1, 3, 3)


def euler_to_matrix(angles: torch.Tensor) -> torch.Tensor:
    """Angles (n, 3) about x, y, z -> R = Rz · Ry · Rx, shape (n, 3, 3); differentiable."""
    cx, cy, cz = angles.cos().unbind(dim=1)
    sx, sy, sz = angles.sin().unbind(dim=1)
    one, zero = torch.ones_like(cx), torch.zeros_like(cx)
    rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], dim=1).reshape(-1, 3, 3)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], dim=1).reshape(-1, 3, 3)
    rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], dim=1).reshape(-1, 3, 3)
    return rz @ ry @ rx


def rotate(points: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """Rotate row-vector points: (B, P, 3) @ (B, 3, 3)^T."""
    return points @ rotations.transpose(1, 2)


def pca_frames(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centroids (B, 1, 3) and principal axes (B, 3, 3) of each cloud (paper Eq. 7).

    Columns of the axes matrix are covariance eigenvectors in *descending* eigenvalue order (a
    deterministic order); their signs are whatever the eigen-solver returns — the sign ambiguity
    the rotator resolves. Computed in float64 for stable eigenvectors.
    """
    centre = points.mean(dim=1, keepdim=True)
    x = (points - centre).double()
    cov = x.transpose(1, 2) @ x / points.shape[1]
    _, vecs = torch.linalg.eigh(cov)
    return centre, vecs.flip(dims=(2,)).to(points.dtype)


def pca_canonicalize(points: torch.Tensor) -> torch.Tensor:
    """Project each centred cloud on its principal axes, P̄U (paper Eq. 7).

    Invariant to rotations of the input up to the sign of each output axis.
    """
    centre, axes = pca_frames(points)
    return (points - centre) @ axes


def augment(points: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Training augmentation: random isotropic scale, small rotation perturbation, clipped jitter.

    Scale ~ U(scale_low, scale_high) per cloud; rotation angles ~ N(0, rotate_sigma) clipped to
    ±rotate_clip per axis; jitter ~ N(0, jitter_sigma) clipped to ±jitter_clip per coordinate.
    ``generator`` must live on the CPU; random draws are moved to the points' device.
    """
    if not cfg.enabled:
        return points
    b = points.shape[0]
    dev, dt = points.device, points.dtype
    scale = torch.empty(b, 1, 1).uniform_(cfg.scale_low, cfg.scale_high, generator=generator)
    angles = (torch.randn(b, 3, generator=generator) * cfg.rotate_sigma).clamp(-cfg.rotate_clip, cfg.rotate_clip)
    jitter = (torch.randn(points.shape, generator=generator) * cfg.jitter_sigma).clamp(-cfg.jitter_clip, cfg.jitter_clip)
    out = rotate(points * scale.to(dev, dt), euler_to_matrix(angles).to(dev, dt))
    return out + jitter.to(dev, dt)

