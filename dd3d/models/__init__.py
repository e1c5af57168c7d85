"""Backbone registry: ``build_model(name, task, num_classes, num_parts, size=...)``.

Backbones register themselves in ``CLASSIFIERS`` (``ctor(num_classes, size)``) / ``SEGMENTERS``
(``ctor(num_parts, num_categories, size)``), so the CLI, training and evaluation code never name a
model class directly. ``size`` is 'full' (the original papers' configuration) or 'small' (widths and
sampled centres divided by 4, for CPU runs); see :mod:`dd3d.models.layers`.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from dd3d.errors import ConfigError
from dd3d.models.dgcnn import DGCNN, DGCNNSeg
from dd3d.models.pct import PCT
from dd3d.models.pointmlp import PointMLP
from dd3d.models.pointnet import PointNet, PointNetSeg
from dd3d.models.pointnet2 import PointNet2, PointNet2Seg
from dd3d.models.pointnext import PointNeXt
from dd3d.nn.rotator import RotatedBackbone, Rotator

CLASSIFIERS: dict[str, Callable[..., nn.Module]] = {
    "pointnet": PointNet, "pointnet2": PointNet2, "dgcnn": DGCNN, "pct": PCT, "pointmlp": PointMLP,
    "pointnext": PointNeXt,
}
SEGMENTERS: dict[str, Callable[..., nn.Module]] = {
    "pointnet": PointNetSeg, "pointnet2": PointNet2Seg, "dgcnn": DGCNNSeg,
}


def build_model(name: str, task: str, num_classes: int, num_parts: int = 0, size: str = "full") -> nn.Module:
    """A freshly initialised backbone for ``task`` ('classification' or 'segmentation') at ``size``."""
    table = CLASSIFIERS if task == "classification" else SEGMENTERS
    if name not in table:
        raise ConfigError(f"model.name: {name!r} has no {task} variant (available: {', '.join(table)})")
    if task == "classification":
        return table[name](num_classes, size=size)
    return table[name](num_parts, num_classes, size=size)


def build_network(name: str, task: str, num_classes: int, rotator: Rotator, num_parts: int = 0,
                  size: str = "full") -> RotatedBackbone:
    """A fresh backbone behind ``rotator`` (f_θ ∘ r, paper §4.1); ``Rotator('none')`` is the identity."""
    return RotatedBackbone(rotator, build_model(name, task, num_classes, num_parts, size))
