"""GM: gradient matching on synthetic point tensors initialised from real clouds (DC, Zhao et al. 2021)."""
from __future__ import annotations

from typing import Any

import torch

from dd3d.distill.base import DistillContext, SyntheticSet, resample_set
from dd3d.distill.matching import GM_SCHEDULE, GradientMatching, nearest_schedule

DEFAULT_LR = 0.1  # DC: SGD lr 0.1, momentum 0.5 on the data


class GM(GradientMatching):
    """Synthetic clouds are free (K·cpc, P, 3) tensors, one optimiser step per outer step."""

    name = "gm"

    def __init__(self, ctx: DistillContext, init: torch.Tensor | None = None) -> None:
        super().__init__(ctx)
        points = init if init is not None else ctx.initial_real()[0]
        self.points = torch.nn.Parameter(points.detach().clone())
        lr = ctx.cfg.distill.lr if ctx.cfg.distill.lr is not None else DEFAULT_LR
        self._optimizer = torch.optim.SGD([self.points, *self.rotator.parameters()], lr=lr,
                                          momentum=ctx.cfg.distill.momentum)

    def schedule(self) -> tuple[int, int]:
        return nearest_schedule(GM_SCHEDULE, self.ctx.cpc)

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self._optimizer

    def synthetic_points(self, c: int) -> torch.Tensor:
        cpc = self.ctx.cpc
        return self.points[c * cpc:(c + 1) * cpc]

    def synthetic(self, points: int, generator: torch.Generator | None = None) -> SyntheticSet:
        clouds = self.normalised(self.points)
        if clouds.shape[1] != points:
            clouds = resample_set(clouds, points, generator or torch.Generator().manual_seed(0))
        return SyntheticSet(clouds, self.ctx.synthetic_labels().cpu().numpy())

    def parameter_bytes(self) -> int:
        return self.points.numel() * self.points.element_size()

    def state_dict(self) -> dict[str, Any]:
        return {"points": self.points.detach().cpu(), "optimizer": self._optimizer.state_dict(),
                "rotator": self.rotator.state_dict(), "losses": list(self.losses)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.points.copy_(state["points"])
        self._optimizer.load_state_dict(state["optimizer"])
        self.rotator.load_state_dict(state["rotator"])
        self.losses = list(state["losses"])
