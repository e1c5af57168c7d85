"""GM: gradient matching on synthetic point tensors initialised from real clouds (DC, Zhao et al. 2021)."""
from __future__ import annotations

import torch

from dd3d.config import LoopSchedule
from dd3d.distill.base import DistillContext, Stateful
from dd3d.distill.matching import GradientMatching
from dd3d.distill.tensors import SyntheticTensors


class GM(SyntheticTensors, GradientMatching):
    """Synthetic clouds are free (K·cpc, P, 3) tensors, one optimiser step per outer step."""

    name = "gm"

    def __init__(self, ctx: DistillContext, init: torch.Tensor | None = None) -> None:
        super().__init__(ctx)
        self.init_points(init)
        self._optimizer = self.points_optimizer(ctx.cfg.distill.sgd_lr.gm, *self.rotator.parameters())

    def schedule(self) -> LoopSchedule:
        return self.ctx.cfg.distill.schedule.gm

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self._optimizer

    def stateful(self) -> dict[str, Stateful]:
        return {"optimizer": self._optimizer, "rotator": self.rotator}
