"""SADM: semantically aligned distribution matching with learned orientations (Yim et al., NeurIPS 2025).

Per iteration a fresh randomly initialised PointNet (behind the rotator) is drawn and frozen, as in
DM. Its per-point features are the outputs of the last convolution and its norm, (B, C, N), before
max-pooling. *Semantic alignment* sorts every channel's values over the points in descending order
and flattens the result rank by rank, so two clouds are compared rank to rank whatever the order of
their points; the top rank of each channel is the max-pooled feature. The loss of class c between
``distill.sadm.real_clouds`` real clouds and the class's synthetic clouds is

    L_c = cpc · (λ1 · MMD(sorted features) + λ2 · MMD(max-pooled features)),   λ1 = 0.002, λ2 = 0.001,

with a Gaussian-kernel MMD² over five bandwidths (2^-2 … 2^2 × the mean squared pairwise distance),
summed over classes.

Every synthetic cloud also owns three Euler angles (init 0) and is seen as R·x with R = Rz·Ry·Rx;
the angles are learned jointly with the points by SGD (momentum ``distill.momentum``), the angle
about the up axis (``data.up_axis``; y in SADM's ModelNet release) with a 10× learning rate, the
angles' rates halved every 100 iterations, and the angles wrapped to [-π, π) after each step. The exported set is the rotated clouds. With a
rotator other than ``none`` the network's input no longer depends on the cloud's orientation, so
the angles stay at 0.

Differences from the paper: our PointNet normalises with InstanceNorm (per-cloud statistics; the
DD3D reference backbone), so there are no BatchNorm statistics to take from 8 real clouds and fix;
the step decay is applied to the angles only (decaying the points' rate ×0.5 every 100 of 1,500
iterations would stop them after a few hundred). The learning rates are not published: the points'
``distill.sadm.lr`` = 1.0 is the DM codebase's SGD rate on the data, and ``angle_lr`` = 0.1 was
chosen by a probe on ModelNet10 (cpc 1, 256 points, 30 iterations at point lr 10; mean loss on six
held-out random networks fell 24.9/25.6/26.3/17.4 % with angle lr 0/0.1/1/10). The points'
gradient is about 3× smaller at 1,024 points than at 256 (measured, cpc 1 and 10), so 1,500
iterations at 1,024 points and lr 1 move the points by the same order as the quick benchmark's 30
iterations at 256 points and lr 10 (point lr 1/10/100/1000 there: loss −7.5/−25.6/−31.4/−26.3 %,
mean point displacement 0.01/0.07/0.26/1.36 of the unit radius).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dd3d.config import resolve_up_axis
from dd3d.data.transforms import euler_to_matrix, rotate
from dd3d.distill.base import DistillContext, Stateful
from dd3d.distill.dm import DM
from dd3d.distill.tensors import export_clouds
from dd3d.errors import ConfigError
from dd3d.synthetic import SyntheticSet

#: Gaussian-kernel bandwidths as multiples of the mean squared pairwise distance (2^-2 … 2^2)
KERNEL_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)
#: the Euler angle axes in the order of ``euler_to_matrix``; the angle about the data's up axis
#: (``data.up_axis``: y in SADM's ModelNet release, z for clouds sampled from the .off meshes) is learned faster
EULER_AXES = ("x", "y", "z")


def point_features(backbone: nn.Module, points: torch.Tensor) -> torch.Tensor:
    """Per-point features (B, C, N) of our PointNet classifier: conv1 → norm → ReLU → conv2 → norm →
    ReLU → conv3 → norm, i.e. what :meth:`PointNet.embed` max-pools (computed from its layers here)."""
    x = F.relu(F.instance_norm(backbone.conv1(points.transpose(1, 2))))
    x = F.relu(F.instance_norm(backbone.conv2(x)))
    return F.instance_norm(backbone.conv3(x))


def sort_channels(features: torch.Tensor) -> torch.Tensor:
    """Every channel's values over the points in descending order, (B, C, N); differentiable.

    On the CPU the order comes from NumPy, whose SIMD sorts beat ``torch.sort`` there (measured on
    (8, 1024, 1024): values 0.07 s vs 0.53 s, argsort 0.21 s vs 0.48 s); elsewhere from torch.
    """
    if features.device.type != "cpu":
        return features.sort(dim=2, descending=True).values
    negated = -features.detach().numpy()
    if not features.requires_grad:
        return torch.from_numpy(-np.sort(negated, axis=2))
    return features.gather(2, torch.from_numpy(np.argsort(negated, axis=2)))


def aligned_features(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Semantically aligned features of per-point features (B, C, N).

    Returns the channel-wise descending sort flattened rank by rank, (B, N·C) — rank 1 of every
    channel, then rank 2, … — and the top rank, (B, C), which is the max-pooled feature.
    """
    ranked = sort_channels(features)
    return ranked.transpose(1, 2).flatten(1), ranked[:, :, 0]


def mmd(x: torch.Tensor, y: torch.Tensor, scales: tuple[float, ...] = KERNEL_SCALES) -> torch.Tensor:
    """Biased squared MMD between the rows of ``x`` (n, d) and ``y`` (m, d) with a sum of Gaussian kernels.

    k(a, b) = Σ_s exp(−‖a − b‖² / (s · D)), D = the mean squared distance over distinct pairs of the
    union (detached; the bandwidth heuristic of the kernel two-sample test). MMD² = mean k(x, x') +
    mean k(y, y') − 2 mean k(x, y): zero for identical sets, positive otherwise.
    """
    z = torch.cat([x, y]).flatten(1)
    z = z - z.mean(dim=0).detach()  # distances are translation invariant; centring keeps the Gram form accurate
    norms = z.square().sum(dim=1)
    d2 = (norms[:, None] + norms[None, :] - 2 * z @ z.T).clamp_min(0)
    n = len(z)
    mean_d2 = (d2.detach().sum() / (n * n - n)).clamp_min(torch.finfo(z.dtype).tiny)
    k = sum(torch.exp(-d2 / (s * mean_d2)) for s in scales)
    m = len(x)
    return k[:m, :m].mean() + k[m:, m:].mean() - 2 * k[:m, m:].mean()


def wrap_angles(angles: torch.Tensor) -> torch.Tensor:
    """Angles mapped to [-π, π); those already there are returned exactly."""
    inside = (angles >= -math.pi) & (angles < math.pi)
    return torch.where(inside, angles, torch.remainder(angles + math.pi, 2 * math.pi) - math.pi)


class SADM(DM):
    """Free synthetic point tensors (from real clouds) and their Euler angles, matched by SADM's loss."""

    name = "sadm"

    def __init__(self, ctx: DistillContext, init: torch.Tensor | None = None) -> None:
        if ctx.cfg.model.name != "pointnet":
            raise ConfigError(f"model.name: 'sadm' matches PointNet's per-point features, got {ctx.cfg.model.name!r}")
        super().__init__(ctx, init)
        s = ctx.cfg.distill.sadm
        #: Euler angles (x, y, z) per synthetic cloud; learned only without a rotator (see module docstring)
        self.angles = nn.Parameter(torch.zeros(len(self.points), 3, device=ctx.device))
        self.learn_orientation = self.rotator.kind == "none"
        # per-axis learning rates as a gradient scale: exact for SGD without weight decay (the update,
        # momentum included, is linear in the gradient), and it keeps the angles one (M, 3) tensor
        axis_rates = torch.ones(3, device=ctx.device)
        axis_rates[EULER_AXES.index(resolve_up_axis(ctx.cfg.data))] = s.yaw_lr_factor
        self.angles.register_hook(lambda grad: grad * axis_rates)
        groups = [{"params": [self.points, *self.rotator.parameters()], "lr": s.lr}]
        if self.learn_orientation:
            groups.append({"params": [self.angles], "lr": s.angle_lr})
        self.optimizer = torch.optim.SGD(groups, momentum=ctx.cfg.distill.momentum)
        decay = [lambda _: 1.0] + [lambda it: s.angle_lr_gamma ** (it // s.angle_lr_step)] * (len(groups) - 1)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, decay)

    def learned_tensors(self) -> dict[str, torch.Tensor]:
        return {**super().learned_tensors(), "angles": self.angles}

    def stateful(self) -> dict[str, Stateful]:
        return {**super().stateful(), "scheduler": self.scheduler}

    def rotations(self, rows: slice = slice(None)) -> torch.Tensor:
        """R = Rz·Ry·Rx of the synthetic clouds ``rows``, (M, 3, 3)."""
        return euler_to_matrix(self.angles[rows])

    def synthetic_points(self, c: int) -> torch.Tensor:
        rows = slice(c * self.ctx.cpc, (c + 1) * self.ctx.cpc)
        return rotate(self.points[rows], self.rotations(rows))

    def synthetic(self, points: int, generator: torch.Generator | None = None) -> SyntheticSet:
        with torch.no_grad():
            oriented = rotate(self.points, self.rotations())
        clouds, _ = export_clouds(oriented, points, generator)
        return SyntheticSet(clouds, self.ctx.synthetic_labels().cpu().numpy())

    def parameter_bytes(self) -> int:
        return super().parameter_bytes() + self.angles.numel() * self.angles.element_size()

    def class_loss(self, net: nn.Module, c: int) -> torch.Tensor:
        """cpc·(λ1·MMD(sorted) + λ2·MMD(max-pooled)) between real and synthetic clouds of class ``c``."""
        s = self.ctx.cfg.distill.sadm
        real = self.ctx.real_batch(c, s.real_clouds)[0]
        with torch.no_grad():
            real_sorted, real_pooled = aligned_features(point_features(net.backbone, net.rotator(real)))
        syn_sorted, syn_pooled = aligned_features(point_features(net.backbone, net.rotator(self.synthetic_points(c))))
        return self.ctx.cpc * (s.sorted_weight * mmd(real_sorted, syn_sorted)
                               + s.pooled_weight * mmd(real_pooled, syn_pooled))

    def matching_loss(self, net: nn.Module) -> torch.Tensor:
        return sum((self.class_loss(net, c) for c in range(self.ctx.num_classes)), self.points.new_zeros(()))

    def update(self, net: nn.Module) -> float:
        loss = super().update(net)
        self.scheduler.step()
        with torch.no_grad():
            self.angles.copy_(wrap_angles(self.angles))
        return loss
