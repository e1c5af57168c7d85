"""Coreset baselines: Random, Herding (Welling 2009) and K-Center (Sener & Savarese 2018).

A coreset selects cpc real training clouds per class once, at construction; there is nothing to
iterate (``iterative = False``). The selected clouds are handed to evaluation from
``ctx.real_full`` (the same clouds at ``eval.resolution``), in class-block order: class c owns rows
c·cpc … c·cpc+cpc−1, like :meth:`DistillContext.synthetic_labels`.

Herding and K-Center select in a feature space: the 1024-d max-pooled embedding
``backbone.embed(rotator(points))`` of a *randomly initialised* PointNet drawn from the context, on
the clouds at ``distill.resolution``. No pretrained weights may be downloaded, so we use random
features; the DC codebase uses a trained ConvNet instead.

- Herding: greedy mean matching; pick i minimising ‖μ − (Σ_selected f + f_i)/(k+1)‖ (the DC
  codebase's herding).
- K-Center: greedy farthest-point selection (the k-center greedy 2-approximation), starting from
  the cloud closest to the class mean, so the selection is deterministic given the features.

When a class has fewer than cpc clouds, Random samples with replacement and the greedy methods
take every cloud once, then repeat their order cyclically.
"""
from __future__ import annotations

import abc
from typing import Any, Callable

import numpy as np
import torch

from dd3d.distill.base import DistillContext, Method, SyntheticSet
from dd3d.distill.tensors import export_clouds, require_classification

FEATURE_BATCH = 64  # clouds embedded at once (the (B, 1024, P) activation bounds memory)


@torch.no_grad()
def embed_real(ctx: DistillContext) -> torch.Tensor:
    """Features (N, 1024) of every training cloud from a fresh random network drawn from ``ctx``."""
    net = ctx.new_network(ctx.make_rotator()).eval()
    return torch.cat([net.backbone.embed(net.rotator(ctx.real_points[start:start + FEATURE_BATCH]))
                      for start in range(0, len(ctx.real_points), FEATURE_BATCH)])


def herding_order(features: torch.Tensor, n: int) -> np.ndarray:
    """Indices (n ≤ len(features)) chosen greedily so the running mean tracks the mean feature."""
    mean = features.mean(dim=0)
    chosen: list[int] = []
    total = torch.zeros_like(mean)
    available = torch.ones(len(features), dtype=torch.bool)
    for k in range(n):
        distance = (mean - (total + features) / (k + 1)).norm(dim=1)
        distance[~available] = float("inf")
        i = int(distance.argmin())
        chosen.append(i)
        total += features[i]
        available[i] = False
    return np.array(chosen, dtype=np.int64)


def kcenter_order(features: torch.Tensor, n: int) -> np.ndarray:
    """Indices (n ≤ len(features)): the cloud nearest the mean, then repeatedly the farthest from those chosen."""
    i = int((features - features.mean(dim=0)).norm(dim=1).argmin())
    chosen = [i]
    nearest = torch.full((len(features),), float("inf"))
    for _ in range(n - 1):
        nearest = torch.minimum(nearest, (features - features[i]).norm(dim=1))
        nearest[chosen] = -1.0  # never re-pick a chosen cloud, even among duplicates
        i = int(nearest.argmax())
        chosen.append(i)
    return np.array(chosen, dtype=np.int64)


class Coreset(Method):
    """Real training clouds selected once; ``self.indices`` index ``ctx.real``/``ctx.real_full``."""

    iterative = False

    def __init__(self, ctx: DistillContext) -> None:
        super().__init__(ctx)
        self.indices = np.concatenate(self.select())

    @abc.abstractmethod
    def select(self) -> list[np.ndarray]:
        """cpc training indices per class, class by class."""

    def step(self, iteration: int) -> float:
        raise RuntimeError("coresets select once; nothing to iterate")

    def synthetic(self, points: int, generator: torch.Generator | None = None) -> SyntheticSet:
        full = self.ctx.real_full
        parts = None if full.parts is None else torch.from_numpy(full.parts[self.indices])
        clouds, parts_out = export_clouds(torch.from_numpy(full.points[self.indices]), points, generator, parts)
        return SyntheticSet(clouds, full.labels[self.indices], parts_out)

    def parameter_bytes(self) -> int:
        return int(self.ctx.real.points[self.indices].nbytes)

    def state_dict(self) -> dict[str, Any]:
        return {"indices": torch.from_numpy(self.indices)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.indices = state["indices"].numpy().astype(np.int64)


class RandomCoreset(Coreset):
    """cpc random training clouds per class (``ctx.sample_indices``)."""

    name = "random"

    def select(self) -> list[np.ndarray]:
        return [self.ctx.sample_indices(c, self.ctx.cpc) for c in range(self.ctx.num_classes)]


class FeatureCoreset(Coreset):
    """Greedy selection per class in the random-PointNet feature space (see the module docstring)."""

    #: the greedy rule: (class features, n) -> indices into the features of the n clouds to keep
    order: Callable[[torch.Tensor, int], np.ndarray]

    def select(self) -> list[np.ndarray]:
        require_classification(self.ctx, self.name)
        features = embed_real(self.ctx).cpu()
        picks = []
        for pool in self.ctx.by_class:
            order = self.order(features[torch.from_numpy(pool)], min(self.ctx.cpc, len(pool)))
            picks.append(pool[np.resize(order, self.ctx.cpc)])
        return picks


class Herding(FeatureCoreset):
    """Greedy mean matching per class (Welling 2009)."""

    name = "herding"
    order = staticmethod(herding_order)


class KCenter(FeatureCoreset):
    """Greedy farthest-point (k-center) selection per class (Sener & Savarese 2018)."""

    name = "kcenter"
    order = staticmethod(kcenter_order)
