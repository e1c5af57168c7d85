"""PCC (ACM MM 2024, "Informative Point cloud Dataset Extraction for Classification via Gradient-based
Points Moving"), implemented as gradient matching (GM, :mod:`dd3d.distill.gm`) from its initialisation.

The synthetic set starts from, per class, the cpc real clouds whose features are nearest the class's
mean feature, then its points are moved by gradient matching with GM's schedule and optimiser
settings (``distill.optimizer``, ``distill.lr``). Features are those of the coresets: the max-pooled
embedding of a randomly initialised PointNet (:func:`dd3d.distill.coreset.embed_real`; no pretrained
weights can be downloaded). PCC's own refinements beyond this initialisation are not reproduced.
"""
from __future__ import annotations

import numpy as np
import torch

from dd3d.distill.base import DistillContext
from dd3d.distill.coreset import FeatureCoreset
from dd3d.distill.gm import GM
from dd3d.distill.tensors import require_classification


def nearest_mean_order(features: torch.Tensor, n: int) -> np.ndarray:
    """Indices of the ``n`` rows of ``features`` nearest their mean, nearest first."""
    distance = (features - features.mean(dim=0)).norm(dim=1)
    return distance.argsort(stable=True)[:n].numpy()


class NearestMean(FeatureCoreset):
    """The cpc clouds per class nearest the class's mean feature (PCC's initial set)."""

    name = "nearest-mean"
    order = staticmethod(nearest_mean_order)


class PCC(GM):
    """GM on point tensors initialised with :class:`NearestMean`."""

    name = "pcc"

    def __init__(self, ctx: DistillContext) -> None:
        require_classification(ctx, self.name)
        index = torch.from_numpy(NearestMean(ctx).indices).to(ctx.device)
        super().__init__(ctx, init=ctx.real_points[index])
