"""Backbone registry: ``build_model(name, task, num_classes, num_parts)``.

Later backbones register themselves in ``CLASSIFIERS`` / ``SEGMENTERS`` with the same constructor
arguments, so the CLI, training and evaluation code never name a model class directly.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from dd3d.errors import ConfigError
from dd3d.models.pointnet import PointNet, PointNetSeg
from dd3d.nn.rotator import RotatedBackbone, Rotator

CLASSIFIERS: dict[str, Callable[[int], nn.Module]] = {"pointnet": PointNet}
SEGMENTERS: dict[str, Callable[[int, int], nn.Module]] = {"pointnet": PointNetSeg}


def build_model(name: str, task: str, num_classes: int, num_parts: int = 0) -> nn.Module:
    """A freshly initialised backbone for ``task`` ('classification' or 'segmentation')."""
    table = CLASSIFIERS if task == "classification" else SEGMENTERS
    if name not in table:
        raise ConfigError(f"model.name: {name!r} has no {task} variant (available: {', '.join(table)})")
    if task == "classification":
        return table[name](num_classes)
    return table[name](num_parts, num_classes)


def build_network(name: str, task: str, num_classes: int, rotator: Rotator, num_parts: int = 0) -> RotatedBackbone:
    """A fresh backbone behind ``rotator`` (f_θ ∘ r, paper §4.1); ``Rotator('none')`` is the identity."""
    return RotatedBackbone(rotator, build_model(name, task, num_classes, num_parts))
