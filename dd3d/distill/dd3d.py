"""DD3D: a class/sample-conditioned point-wise generator (+ rotator) trained by gradient matching.

Classification objective, paper Eq. 13:
    min_g Σ_k D(∇θ L(f_θ ∘ r ∘ g(ε, k), Y_k^S), ∇θ L(f_θ ∘ r(B_k^T), Y_k^T)),
with ε ~ U(0, 1) resampled at every call, so the same weights produce clouds of any resolution.
Segmentation (Eq. 14): every point's part label is the segment of [0, 1] its noise falls in
(:class:`dd3d.nn.partition.NoisePartition`, proportions from the training split).
Optimiser: Adam (lr ``distill.adam_lr`` 1e-3, wd 5e-4, Table 7; after a warm start ``generator.warm_lr``,
beyond the paper) on generator and rotator, StepLR ×``lr_gamma`` every
``lr_step`` iterations (null: once, at half of ``distill.iterations``, as the authors' release).
"""
from __future__ import annotations

import copy
import time
from typing import Any

import torch

from dd3d.config import GeneratorConfig, LoopSchedule
from dd3d.distill.base import DistillContext, Stateful
from dd3d.distill.matching import WARM_START, GradientMatching, half
from dd3d.distill.tensors import adam_lr
from dd3d.distill.warm_start import fit_to_clouds, herding_targets
from dd3d.nn.generator import PointGenerator
from dd3d.nn.partition import NoisePartition, generate_labelled
from dd3d.nn.rotator import Rotator
from dd3d.previews import GeneratedClouds
from dd3d.synthetic import GENERATOR_FILE, GENERATOR_FORMAT, SyntheticSet, generated_set


def build_generator(num_classes: int, cpc: int, g: GeneratorConfig) -> PointGenerator:
    """The generator for ``num_classes × cpc`` synthetic samples, sized by ``g``."""
    return PointGenerator(num_classes * cpc, width=g.width, layers=g.layers, omega0=g.omega0, noise_dim=g.noise_dim,
                          noise=g.noise)


def warm_starts(g: GeneratorConfig) -> bool:
    """Whether the generator is fitted to real clouds before matching (``init: real`` with fitting steps)."""
    return g.init == "real" and g.init_steps > 0


class DD3D(GradientMatching):
    """Generator-parameterised synthetic set; regenerated with fresh noise at every use."""

    name = "dd3d"
    regenerates = True

    def __init__(self, ctx: DistillContext) -> None:
        super().__init__(ctx)
        d = ctx.cfg.distill
        g = d.generator
        self.generator = build_generator(ctx.num_classes, ctx.cpc, g).to(ctx.device)
        lr = g.warm_lr if warm_starts(g) and d.lr is None else adam_lr(d)
        self._optimizer = torch.optim.Adam([*self.generator.parameters(), *self.rotator.parameters()], lr=lr,
                                           weight_decay=d.weight_decay)
        step = d.lr_step if d.lr_step is not None else half(d.iterations)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self._optimizer, step_size=step, gamma=d.lr_gamma)
        #: segmentation: the noise interval of each part, from the training split's part proportions
        self.partition = NoisePartition.from_data(ctx.real) if ctx.task.kind == "segmentation" else None
        #: what ``generator.init: real`` did (for distill.json; kept in checkpoints, so a resumed run reports it)
        self.warm_start: dict[str, Any] = {}

    def start(self, progress: bool = False) -> None:
        """``generator.init: real``: fit the generator to the herding clouds before matching (keyed
        draws, so every torchrun process fits the same generator)."""
        g = self.ctx.cfg.distill.generator
        if not warm_starts(g):
            return
        began = time.perf_counter()
        with self.ctx.drawing(WARM_START):
            targets, parts, indices = herding_targets(self.ctx)
            curve = fit_to_clouds(self.generator, self.partition, targets, parts, self.ctx.cpc, g.init_steps,
                                  g.init_lr, self.ctx.cfg.distill.resolution, self.ctx.rng, progress=progress)
        names = self.ctx.real.names
        # init_seconds: the fit's wall time, not part of distill.json's wall_time_s (the iterations)
        self.warm_start = {"init_steps": g.init_steps, "init_seconds": round(time.perf_counter() - began, 2),
                           "init_chamfer_first": round(curve[0], 6), "init_chamfer_last": round(curve[-1], 6),
                           "init_clouds": [names[i] if names is not None else int(i) for i in indices]}

    def report(self) -> dict[str, Any]:
        """How the generator started (``generator.init``) and, for segmentation, the noise partition."""
        return {"generator_init": "real" if self.warm_start else "noise", **self.warm_start,
                "part_partition": None if self.partition is None else self.partition.to_payload()}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "warm_start": dict(self.warm_start)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.warm_start = dict(state.get("warm_start", {}))

    def schedule(self) -> LoopSchedule:
        tables = self.ctx.cfg.distill.schedule
        canonical = self.rotator.kind != "none" or self.ctx.cfg.data.canonical == "pca"
        return tables.dd3d_canonical if canonical else tables.dd3d_aligned

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self._optimizer

    def samples_of(self, c: int) -> torch.Tensor:
        cpc = self.ctx.cpc
        return torch.arange(c * cpc, (c + 1) * cpc, device=self.ctx.device)

    def synthetic_batch(self, c: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.generate(self.samples_of(c), self.ctx.cfg.distill.resolution, self.ctx.rng)

    def generate(self, samples: torch.Tensor, points: int,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Clouds of ``samples`` from fresh noise, with part labels from the noise partition (segmentation)."""
        return generate_labelled(self.generator, self.partition, samples, self.ctx.cpc, points, generator)

    def after_iteration(self) -> None:
        self.scheduler.step()

    def synthetic(self, points: int, generator: torch.Generator | None = None) -> SyntheticSet:
        return generated_set(self.generator, self.partition, self.ctx.num_classes, self.ctx.cpc, points,
                             generator or self.ctx.rng)

    def preview(self) -> GeneratedClouds:
        """A CPU copy of the generator (another thread regenerates clouds at any resolution from it)."""
        generator = copy.deepcopy(self.generator).requires_grad_(False).cpu().eval()
        return GeneratedClouds(generator, self.partition, self.ctx.num_classes, self.ctx.cpc)

    def trained_rotator(self) -> Rotator:
        return self.rotator

    def artefacts(self) -> dict[str, dict[str, Any]]:
        """``generator.pt``: the weights plus everything needed to rebuild and regenerate
        (:class:`dd3d.synthetic.LoadedGenerator` reads it)."""
        ctx = self.ctx
        g = ctx.cfg.distill.generator
        return {GENERATOR_FILE: {
            "format": GENERATOR_FORMAT,
            "generator": self.generator.state_dict(),
            "rotator": self.rotator.state_dict(),
            "rotator_kind": self.rotator.kind,
            "rotator_fourier": ctx.cfg.model.rotator.fourier,
            "rotator_omega": ctx.cfg.model.rotator.omega,
            "num_classes": ctx.num_classes,
            "cpc": ctx.cpc,
            "width": g.width,
            "layers": g.layers,
            "omega0": g.omega0,
            "noise_dim": g.noise_dim,
            "noise": g.noise,
            "class_names": list(ctx.real.class_names),
            "task": ctx.task.kind,
            "partition": None if self.partition is None else self.partition.to_payload(),
            "part_names": ctx.real.part_names,
        }}

    def parameter_bytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.generator.parameters())

    def stateful(self) -> dict[str, Stateful]:
        return {"generator": self.generator, "optimizer": self._optimizer, "scheduler": self.scheduler,
                "rotator": self.rotator}
