"""Gradient matching (paper Eq. 13, the DC objective) and the outer/inner loop shared by GM and DD3D.

Per iteration: a fresh network; for each outer step the per-class layer-wise distance between the
gradient of the loss on real clouds (detached) and on the class's synthetic clouds (with
``create_graph``), summed over classes, drives one optimiser step on the synthetic representation;
between outer steps the network is trained for ``inner`` epochs on the regenerated synthetic set.
"""
from __future__ import annotations

import abc
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dd3d.distill.base import DistillContext, Method
from dd3d.data.transforms import normalize_unit_sphere

# (outer, inner) by cpc, REFERENCE.md. DD3D: canonicalised (PCA/rotator) vs raw/aligned data; GM: DC's.
DD3D_SCHEDULE = {"canonical": {1: (5, 5), 10: (20, 10), 50: (40, 5)},
                 "aligned": {1: (10, 1), 10: (20, 1), 50: (40, 5)}}
GM_SCHEDULE = {1: (1, 1), 10: (10, 50), 50: (50, 10)}


def nearest_schedule(table: dict[int, tuple[int, int]], cpc: int) -> tuple[int, int]:
    """The schedule entry of the closest tabulated cpc (the reference only tabulates 1/10/50)."""
    return table[min(table, key=lambda k: (abs(k - cpc), k))]


def layerwise_distance(g_real: Sequence[torch.Tensor], g_syn: Sequence[torch.Tensor]) -> torch.Tensor:
    """The DC layer-wise gradient distance.

    Every weight tensor is reshaped to (out_channels, rest); the distance is
    Σ_rows (1 − cos(g_real_row, g_syn_row)) with +1e-6 in the cosine's denominator. 1-D tensors
    (biases, norm affines) contribute 0. Summed over tensors.
    """
    total = g_syn[0].new_zeros(())
    for real, syn in zip(g_real, g_syn):
        if real.ndim == 1:
            continue
        real, syn = real.reshape(real.shape[0], -1), syn.reshape(syn.shape[0], -1)
        cos = (real * syn).sum(dim=1) / (real.norm(dim=1) * syn.norm(dim=1) + 1e-6)
        total = total + (1 - cos).sum()
    return total


def matched_parameters(net: nn.Module) -> list[nn.Parameter]:
    """The backbone weights whose gradients are matched (multi-dimensional only: 1-D ones add 0)."""
    backbone = getattr(net, "backbone", net)
    return [p for p in backbone.parameters() if p.ndim > 1]


def class_gradients(net: nn.Module, params: list[nn.Parameter], points: torch.Tensor, labels: torch.Tensor,
                    create_graph: bool) -> tuple[torch.Tensor, ...]:
    """Gradients of the mean cross-entropy of ``net`` on one class's clouds."""
    loss = F.cross_entropy(net(points), labels)
    return torch.autograd.grad(loss, params, create_graph=create_graph)


class GradientMatching(Method, abc.ABC):
    """The loop of Eq. 13 around any differentiable synthetic representation."""

    def __init__(self, ctx: DistillContext) -> None:
        super().__init__(ctx)
        self.rotator = ctx.make_rotator()
        self.outer, self.inner = self.schedule()
        d = ctx.cfg.distill
        self.outer = d.outer_loop if d.outer_loop is not None else self.outer
        self.inner = d.inner_loop if d.inner_loop is not None else self.inner

    @abc.abstractmethod
    def schedule(self) -> tuple[int, int]:
        """The method's reference (outer, inner) for this cpc and setting."""

    @abc.abstractmethod
    def synthetic_points(self, c: int) -> torch.Tensor:
        """Differentiable (cpc, P, 3) synthetic clouds of class ``c`` at ``distill.resolution``."""

    @property
    @abc.abstractmethod
    def optimizer(self) -> torch.optim.Optimizer:
        """The optimiser of the synthetic representation (and rotator)."""

    def matching_loss(self, net: nn.Module) -> torch.Tensor:
        """Σ_c D(∇L(real_c), ∇L(syn_c)) on the current network (Eq. 13)."""
        ctx = self.ctx
        params = matched_parameters(net)
        total = None
        for c in range(ctx.num_classes):
            real = ctx.real_batch(c)
            g_real = [g.detach() for g in class_gradients(net, params, real, self._labels(c, len(real)), False)]
            syn = self.synthetic_points(c)
            g_syn = class_gradients(net, params, syn, self._labels(c, len(syn)), True)
            distance = layerwise_distance(g_real, g_syn)
            total = distance if total is None else total + distance
        return total

    def _labels(self, c: int, n: int) -> torch.Tensor:
        return torch.full((n,), c, dtype=torch.long, device=self.ctx.device)

    def train_inner(self, net: nn.Module, net_optimizer: torch.optim.Optimizer) -> None:
        """``inner`` epochs of the network (and rotator) on the detached synthetic set."""
        ctx = self.ctx
        with torch.no_grad():
            points = normalize_unit_sphere(torch.cat([self.synthetic_points(c) for c in range(ctx.num_classes)]))
        labels = ctx.synthetic_labels()
        batch = ctx.cfg.distill.inner_batch
        for _ in range(self.inner):
            order = torch.randperm(len(points), generator=ctx.rng).to(ctx.device)
            for start in range(0, len(order), batch):
                index = order[start:start + batch]
                loss = F.cross_entropy(net(points[index]), labels[index])
                net_optimizer.zero_grad(set_to_none=True)
                loss.backward()
                net_optimizer.step()

    def step(self, iteration: int) -> float:
        net = self.ctx.new_network(self.rotator)
        net_optimizer = torch.optim.SGD(net.parameters(), lr=self.ctx.cfg.distill.net_lr)
        losses = []
        for outer in range(self.outer):
            loss = self.matching_loss(net)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            losses.append(float(loss.detach()))
            if outer < self.outer - 1 and self.inner > 0:
                self.train_inner(net, net_optimizer)
        self.after_iteration()
        loss = float(np.mean(losses)) / self.ctx.num_classes
        self.losses.append(loss)
        return loss

    def after_iteration(self) -> None:
        """Hook run after each iteration (e.g. a learning-rate schedule step)."""
