"""Pieces shared by the baseline methods: exporting clouds, and free synthetic point tensors.

:class:`SyntheticTensors` is the mixin of every method whose synthetic set is one learnable tensor
``points`` of shape (K·cpc, P, 3), initialised from real clouds (the DC initialisation); class
``c`` owns rows c·cpc … c·cpc+cpc−1, like :meth:`DistillContext.synthetic_labels`. It provides
``synthetic_points``, ``synthetic_batch``, ``synthetic``, ``parameter_bytes`` and the tensors saved by
value (:meth:`Method.learned_tensors`); a method adds the stateful objects (optimisers, rotator) it
owns (:meth:`Method.stateful`), and :class:`Method` saves and restores both.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dd3d.config import DistillConfig
from dd3d.data.prepare import resample
from dd3d.data.transforms import normalize_unit_sphere
from dd3d.distill.base import DistillContext
from dd3d.distill.selection import herding_order, select_per_class
from dd3d.errors import ConfigError
from dd3d.synthetic import SyntheticSet

#: generator used by ``synthetic`` when none is given, so exports are reproducible
EXPORT_SEED = 0


def adam_lr(d: DistillConfig) -> float:
    """The Adam rate of the synthetic data (point tensors, the dd3d generator): ``distill.lr``, else
    ``distill.adam_lr`` (paper Table 7)."""
    return d.lr if d.lr is not None else d.adam_lr


def require_classification(ctx: DistillContext, method: str) -> None:
    """Refuse segmentation for methods built on the classifier's global feature or logits."""
    if ctx.task.kind != "classification":
        raise ConfigError(f"distill.method: {method!r} supports task 'classification' only, "
                          f"got task {ctx.task.kind!r}")


def export_clouds(points: torch.Tensor, n: int, generator: torch.Generator | None = None,
                  parts: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Unit-sphere normalised clouds at ``n`` points each (random subset, repeats to upsample).

    Part labels, when given, follow their points. Without ``generator`` a fixed seed is used.
    """
    clouds = normalize_unit_sphere(points.detach()).cpu()
    parts = None if parts is None else parts.cpu()
    clouds, parts = resample(clouds, parts, n, "random", generator or torch.Generator().manual_seed(EXPORT_SEED))
    return clouds.numpy().astype(np.float32), None if parts is None else parts.numpy()


class SyntheticTensors:
    """Mixin for methods whose synthetic set is the free tensor ``self.points`` (K·cpc, P, 3)."""

    ctx: DistillContext
    losses: list[float]
    points: nn.Parameter

    def init_points(self, init: torch.Tensor | None = None) -> None:
        """``self.points`` from ``init`` or cpc real clouds per class (``ctx.initial_real``): random ones,
        or with ``distill.init_clouds: herding`` the herding coreset's choice.

        For segmentation the real clouds' part labels become ``self.parts`` (fixed; only the
        coordinates are learned, as GM on ShapeNet-part in the paper's Table 2).
        """
        self.parts: torch.Tensor | None = None
        if init is not None:
            points = init
        else:
            herding = self.ctx.cfg.distill.init_clouds == "herding"
            chosen = select_per_class(self.ctx, herding_order) if herding else None
            points, index = self.ctx.initial_real(chosen)
            if self.ctx.real_parts is not None:
                self.parts = self.ctx.real_parts[torch.from_numpy(index).to(self.ctx.device)].clone()
        self.points = nn.Parameter(points.detach().clone())

    def points_optimizer(self, sgd_lr: float, *extra: nn.Parameter) -> torch.optim.Optimizer:
        """The optimiser of the points (and ``extra``) named by ``distill.optimizer``.

        Adam (paper Table 7): lr :func:`adam_lr`. SGD (image codebases): lr ``distill.lr`` or the
        method's ``sgd_lr`` (``distill.sgd_lr``), momentum ``distill.momentum``.
        """
        d = self.ctx.cfg.distill
        if d.optimizer == "adam":
            return torch.optim.Adam([self.points, *extra], lr=adam_lr(d))
        return torch.optim.SGD([self.points, *extra], lr=d.lr if d.lr is not None else sgd_lr, momentum=d.momentum)

    def learned_tensors(self) -> dict[str, torch.Tensor]:
        """Tensors saved by value in the state (``points``, part labels, e.g. a learnable step size)."""
        return {"points": self.points} if self.parts is None else {"points": self.points, "parts": self.parts}

    def synthetic_points(self, c: int) -> torch.Tensor:
        cpc = self.ctx.cpc
        return self.points[c * cpc:(c + 1) * cpc]

    def synthetic_batch(self, c: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Class ``c``'s clouds and their part labels (None for classification)."""
        cpc = self.ctx.cpc
        return self.synthetic_points(c), None if self.parts is None else self.parts[c * cpc:(c + 1) * cpc]

    def synthetic(self, points: int, generator: torch.Generator | None = None) -> SyntheticSet:
        clouds, parts = export_clouds(self.points, points, generator, self.parts)
        return SyntheticSet(clouds, self.ctx.synthetic_labels().cpu().numpy(), parts)

    def parameter_bytes(self) -> int:
        return self.points.numel() * self.points.element_size()
