"""Choosing real training clouds by their features: the greedy rules of the coresets (Herding,
K-Center, nearest-to-mean) and the per-class selection every method that starts from real clouds uses
(the coresets, PCC's initial set, ``distill.init_clouds: herding``, DD3D's ``generator.init: real``).

Features are the 1024-d max-pooled embedding ``backbone.embed(rotator(points))`` of a *randomly
initialised* classifier of ``model.name`` drawn from the context (a segmentation run embeds with the
classification variant of its backbone), on the clouds at ``distill.resolution``. No pretrained
weights may be downloaded, so the features are random; the DC codebase uses a trained ConvNet.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from dd3d.distill.base import DistillContext

FEATURE_BATCH = 64  # clouds embedded at once (the (B, 1024, P) activation bounds memory)

#: a greedy rule: (features of one class's clouds, n) -> indices into them of the n clouds to keep
Order = Callable[[torch.Tensor, int], np.ndarray]


@torch.no_grad()
def embed_real(ctx: DistillContext) -> torch.Tensor:
    """Features (N, 1024) of every training cloud from a fresh random classifier drawn from ``ctx``."""
    net = ctx.new_network(ctx.make_rotator(), kind="classification").eval()
    return torch.cat([net.backbone.embed(net.rotator(ctx.real_points[start:start + FEATURE_BATCH]))
                      for start in range(0, len(ctx.real_points), FEATURE_BATCH)])


def herding_order(features: torch.Tensor, n: int) -> np.ndarray:
    """Indices (n ≤ len(features)) chosen greedily so the running mean tracks the mean feature
    (Welling 2009; the DC codebase's herding)."""
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
    """Indices (n ≤ len(features)): the cloud nearest the mean, then repeatedly the farthest from those
    chosen (the k-center greedy 2-approximation, Sener & Savarese 2018)."""
    i = int((features - features.mean(dim=0)).norm(dim=1).argmin())
    chosen = [i]
    nearest = torch.full((len(features),), float("inf"))
    for _ in range(n - 1):
        nearest = torch.minimum(nearest, (features - features[i]).norm(dim=1))
        nearest[chosen] = -1.0  # never re-pick a chosen cloud, even among duplicates
        i = int(nearest.argmax())
        chosen.append(i)
    return np.array(chosen, dtype=np.int64)


def nearest_mean_order(features: torch.Tensor, n: int) -> np.ndarray:
    """Indices of the ``n`` rows of ``features`` nearest their mean, nearest first (PCC's initial set)."""
    distance = (features - features.mean(dim=0)).norm(dim=1)
    return distance.argsort(stable=True)[:n].numpy()


def select_per_class(ctx: DistillContext, order: Order) -> np.ndarray:
    """cpc training indices per class in class-block order (class c owns rows c·cpc … c·cpc+cpc−1),
    chosen by ``order`` in the feature space of :func:`embed_real`. A class with fewer than cpc clouds
    gives every cloud once, then repeats its order cyclically."""
    features = embed_real(ctx).cpu()
    picks = []
    for pool in ctx.by_class:
        chosen = order(features[torch.from_numpy(pool)], min(ctx.cpc, len(pool)))
        picks.append(pool[np.resize(chosen, ctx.cpc)])
    return np.concatenate(picks)
