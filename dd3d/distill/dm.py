"""DM: distribution matching of mean embeddings on synthetic point tensors (Zhao & Bilen, WACV 2023).

Per iteration a fresh randomly initialised network (wrapped by the rotator) is drawn and frozen,
and one SGD step on the synthetic clouds minimises

    L = Σ_c ‖mean_i embed(real_c,i) − mean_j embed(syn_c,j)‖²,

with embed = the backbone's max-pooled 1024-d feature of the rotated clouds and the real embeddings
detached. No inner loop, no network training. The learned rotator (when used) is optimised with the
points, as in GM; only the backbone is frozen.
"""
from __future__ import annotations

import torch
from torch import nn

from dd3d.distill.base import DistillContext, Method, Stateful
from dd3d.distill.tensors import SyntheticTensors, require_classification


def embed(net: nn.Module, points: torch.Tensor) -> torch.Tensor:
    """The backbone's global feature of the rotated clouds, (B, 1024)."""
    return net.backbone.embed(net.rotator(points))


class DM(SyntheticTensors, Method):
    """Synthetic clouds are free (K·cpc, P, 3) tensors initialised from real clouds."""

    name = "dm"

    def __init__(self, ctx: DistillContext, init: torch.Tensor | None = None) -> None:
        require_classification(ctx, self.name)
        super().__init__(ctx)
        self.rotator = ctx.make_rotator()
        self.init_points(init)
        self.optimizer = self.points_optimizer(ctx.cfg.distill.sgd_lr.dm, *self.rotator.parameters())

    def stateful(self) -> dict[str, Stateful]:
        return {"optimizer": self.optimizer, "rotator": self.rotator}

    def new_network(self) -> nn.Module:
        """A fresh random network around the method's rotator, backbone frozen."""
        net = self.ctx.new_network(self.rotator)
        net.backbone.requires_grad_(False)
        return net

    def matching_loss(self, net: nn.Module) -> torch.Tensor:
        """Σ_c ‖mean embed(real_c) − mean embed(syn_c)‖² for ``net`` (real batches from the context)."""
        total = self.points.new_zeros(())
        for c in range(self.ctx.num_classes):
            real = embed(net, self.ctx.real_batch(c)[0]).detach().mean(dim=0)
            syn = embed(net, self.synthetic_points(c)).mean(dim=0)
            total = total + (real - syn).square().sum()
        return total

    def update(self, net: nn.Module) -> float:
        """One optimiser step on the matching loss of ``net``; returns the loss per class."""
        loss = self.matching_loss(net)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach()) / self.ctx.num_classes

    def step(self, iteration: int) -> float:
        loss = self.update(self.new_network())
        self.losses.append(loss)
        return loss
