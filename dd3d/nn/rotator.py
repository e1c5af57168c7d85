"""The plug-and-play point cloud rotator r (paper §4.1, Eq. 7-9) and a backbone wrapper.

Kinds:

- ``none``: identity.
- ``pca``: centre and project on the principal axes, P̄U (Eq. 7). Rotation-invariant only up to
  the sign of each axis (8 ambiguous views).
- ``fixed``: the released parameter-free sign fix: s_j = sign(mean_n sin(ω x_nj)), x' = x ⊙ s.
- ``learned``: the paper's rotator (Eq. 8-9): Fourier features H_j = [sin(ω x_j), sin(2ω x_j), …,
  sin(tω x_j)] of each PCA coordinate (ω = 1 gives the paper's periods 1 … t), mean-pooled over
  points to (B, 3, t), decoded by a learnable w ∈ R^t without bias, s = Sign(h·w), x' = x ⊙ s.

Both sign fixes are exactly sign-invariant: sin is odd and pooling and the bias-free decoder are
linear, so flipping axis j flips h_j·w, hence s_j, and x_j s_j is unchanged (when h_j·w ≠ 0).

``learned`` initialises w = (1, 0, …, 0), i.e. it starts as the released ``fixed`` variant with the
same ω, and the matching loss moves it from there. Its Sign is straight-through, so the matching
loss reaches w; the forward value is the exact sign, so invariance is exact. The backward pass uses
the derivative of tanh (the released code uses torch.sign, whose zero gradient never trains w).

PCA eigenvectors are treated as constants (detached): gradients flow to the points through the
centring and the projection, not through ``torch.linalg.eigh``, whose backward divides by
eigenvalue gaps and is unstable for near-equal eigenvalues.
"""
from __future__ import annotations

import torch
from torch import nn

from dd3d.config import RotatorConfig
from dd3d.data.transforms import pca_frames

KINDS = ("none", "pca", "fixed", "learned")


def _hard_sign(z: torch.Tensor) -> torch.Tensor:
    """The exact sign of z with 0 -> +1 (so every axis gets a definite orientation)."""
    return torch.where(z >= 0, 1.0, -1.0).to(z.dtype)


class _StraightThroughSign(torch.autograd.Function):
    """Forward: :func:`_hard_sign`. Backward: the derivative of tanh, 1 − tanh²(z)."""

    @staticmethod
    def forward(ctx, z: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(z)
        return _hard_sign(z)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (z,) = ctx.saved_tensors
        return grad * (1 - torch.tanh(z).square())


class Rotator(nn.Module):
    """Point clouds (B, N, 3) -> canonically oriented clouds (B, N, 3); see the module docstring."""

    def __init__(self, kind: str, fourier: int = RotatorConfig.fourier, omega: float = RotatorConfig.omega) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"rotator kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self.kind = kind
        periods = fourier if kind == "learned" else 1
        self.register_buffer("freqs", omega * torch.arange(1.0, periods + 1), persistent=False)
        decoder = torch.zeros(periods)
        decoder[0] = 1.0
        if kind == "learned":
            self.weight = nn.Parameter(decoder)
        else:  # ``fixed`` decodes its single feature sin(ω x) with the constant w = (1,)
            self.register_buffer("weight", decoder, persistent=False)

    def align(self, points: torch.Tensor) -> torch.Tensor:
        """P̄U: centred points projected on their principal axes (Eq. 7), eigenvectors detached."""
        centre, axes = pca_frames(points)
        return (points - centre) @ axes.detach()

    def signs(self, aligned: torch.Tensor) -> torch.Tensor:
        """Per-axis signs (B, 3) of PCA-aligned clouds: Sign(Pool(H) w) (Eq. 8-9)."""
        pooled = torch.sin(aligned.unsqueeze(-1) * self.freqs).mean(dim=1)  # (B, 3, periods)
        z = pooled @ self.weight.to(pooled.dtype)
        return _StraightThroughSign.apply(z) if self.kind == "learned" else _hard_sign(z)

    def reflect(self, aligned: torch.Tensor) -> torch.Tensor:
        """Resolve the sign ambiguity of PCA-aligned clouds: x ⊙ s (Eq. 9); identity for ``none``/``pca``."""
        if self.kind in ("none", "pca"):
            return aligned
        return aligned * self.signs(aligned).unsqueeze(1)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        if self.kind == "none":
            return points
        return self.reflect(self.align(points))


class RotatedBackbone(nn.Module):
    """backbone(rotator(points), *args): works for PointNet(points) and PointNetSeg(points, categories)."""

    def __init__(self, rotator: Rotator, backbone: nn.Module) -> None:
        super().__init__()
        self.rotator = rotator
        self.backbone = backbone

    def forward(self, points: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.rotator(points), *args)
