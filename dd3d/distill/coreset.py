"""Coreset baselines: Random, Herding (Welling 2009) and K-Center (Sener & Savarese 2018).

A coreset selects cpc real training clouds per class once, at construction; there is nothing to
iterate (``iterative = False``). The selected clouds are handed to evaluation from
``ctx.real_full`` (the same clouds at ``eval.resolution``), in class-block order: class c owns rows
c·cpc … c·cpc+cpc−1, like :meth:`DistillContext.synthetic_labels`.

Herding and K-Center select in the random-PointNet feature space of :mod:`dd3d.distill.selection`
(for segmentation: per category, with the classification variant of the backbone; the selected clouds
keep their part labels):

- Herding: greedy mean matching; pick i minimising ‖μ − (Σ_selected f + f_i)/(k+1)‖ (the DC
  codebase's herding).
- K-Center: greedy farthest-point selection (the k-center greedy 2-approximation), starting from
  the cloud closest to the class mean, so the selection is deterministic given the features.

When a class has fewer than cpc clouds, Random samples with replacement and the greedy methods
take every cloud once, then repeat their order cyclically.
"""
from __future__ import annotations

import abc
from typing import Any

import numpy as np
import torch

from dd3d.distill.base import DistillContext, Method
from dd3d.distill.selection import Order, herding_order, kcenter_order, select_per_class
from dd3d.distill.tensors import export_clouds
from dd3d.synthetic import SyntheticSet

class Coreset(Method):
    """Real training clouds selected once; ``self.indices`` index ``ctx.real``/``ctx.real_full``."""

    iterative = False

    def __init__(self, ctx: DistillContext) -> None:
        super().__init__(ctx)
        self.indices = self.select()

    @abc.abstractmethod
    def select(self) -> np.ndarray:
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

    def select(self) -> np.ndarray:
        return np.concatenate([self.ctx.sample_indices(c, self.ctx.cpc) for c in range(self.ctx.num_classes)])


class FeatureCoreset(Coreset):
    """Greedy selection per class in the random-PointNet feature space (:func:`select_per_class`)."""

    order: Order

    def select(self) -> np.ndarray:
        return select_per_class(self.ctx, self.order)


class Herding(FeatureCoreset):
    """Greedy mean matching per class (Welling 2009)."""

    name = "herding"
    order = staticmethod(herding_order)


class KCenter(FeatureCoreset):
    """Greedy farthest-point (k-center) selection per class (Sener & Savarese 2018)."""

    name = "kcenter"
    order = staticmethod(kcenter_order)
