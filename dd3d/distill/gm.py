"""GM: gradient matching on synthetic point tensors initialised from real clouds (DC, Zhao et al. 2021)."""
from __future__ import annotations

import torch

from dd3d.distill.base import DistillContext, Stateful
from dd3d.distill.matching import GM_SCHEDULE, GradientMatching, nearest_schedule
from dd3d.distill.tensors import SyntheticTensors

SGD_LR = 0.1  # DC codebase: SGD lr 0.1, momentum 0.5 on the data (distill.optimizer: sgd)


class GM(SyntheticTensors, GradientMatching):
    """Synthetic clouds are free (K·cpc, P, 3) tensors, one optimiser step per outer step."""

    name = "gm"

    def __init__(self, ctx: DistillContext, init: torch.Tensor | None = None) -> None:
        super().__init__(ctx)
        self.init_points(init)
        self._optimizer = self.points_optimizer(SGD_LR, *self.rotator.parameters())

    def schedule(self) -> tuple[int, int]:
        return nearest_schedule(GM_SCHEDULE, self.ctx.cpc)

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self._optimizer

    def stateful(self) -> dict[str, Stateful]:
        return {"optimizer": self._optimizer, "rotator": self.rotator}
