"""PCC (ACM MM 2024, "Informative Point cloud Dataset Extraction for Classification via Gradient-based
Points Moving"), implemented as gradient matching (GM, :mod:`dd3d.distill.gm`) from its initialisation.

The synthetic set starts from, per class, the cpc real clouds whose features are nearest the class's
mean feature, then its points are moved by gradient matching with GM's schedule and optimiser
settings (``distill.optimizer``, ``distill.lr``). Features are those of the coresets: the max-pooled
embedding of a randomly initialised PointNet (:func:`dd3d.distill.selection.embed_real`; no pretrained
weights can be downloaded). PCC's own refinements beyond this initialisation are not reproduced.
"""
from __future__ import annotations

import torch

from dd3d.distill.base import DistillContext
from dd3d.distill.gm import GM
from dd3d.distill.selection import nearest_mean_order, select_per_class
from dd3d.distill.tensors import require_classification


class PCC(GM):
    """GM on point tensors initialised with the cpc clouds per class nearest the class's mean feature."""

    name = "pcc"

    def __init__(self, ctx: DistillContext) -> None:
        require_classification(ctx, self.name)
        index = torch.from_numpy(select_per_class(ctx, nearest_mean_order)).to(ctx.device)
        super().__init__(ctx, init=ctx.real_points[index])
