"""TM: matching training trajectories (MTT, Cazenavette et al. 2022) on synthetic point tensors.

Experts: ``distill.tm.experts`` PointNets (behind a fixed rotator from the context, never trained)
are trained on the full real training set at ``distill.resolution`` (``distill.real_sampling``) with plain SGD (lr
``tm.expert_lr``, no momentum, no weight decay, batch ``tm.expert_batch``, the configured augmentation); the flat
parameter vector is recorded at initialisation and after each of ``tm.expert_epochs`` epochs. Each
expert is cached in its own file ``<cache_dir>/tm-<dataset>-<hash>-<i>.pt``, where the hash covers
every setting that changes the trajectory (data, model, rotator, augmentation, seed, expert
training), so a changed config never reuses stale experts and adding experts reuses the old ones.
Experts depend on ``cfg.seed`` only (not on the context's seed): they are shared by repeated
distillations, as in MTT.

Step: an expert and a start epoch s < ``tm.max_start_epoch`` (and ≤ expert_epochs − M) are drawn;
the student starts from θ*_s and takes N = ``tm.student_steps`` differentiable SGD steps on random
minibatches of the synthetic set with a learnable step size (init ``tm.expert_lr``; SGD lr
``tm.lr_lr``, momentum ``tm.lr_momentum``), and

    L = ‖θ_N − θ*_{s+M}‖² / ‖θ*_s − θ*_{s+M}‖²,   M = ``tm.target_epochs``.

The unrolled graph keeps all N steps, so memory grows linearly with N (the paper's out-of-memory
cells); this is inherent to the method and deliberately not worked around.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from tqdm import tqdm

from dd3d.config import Config, TrainConfig, rotator_kind
from dd3d.distill.base import DistillContext, Method, Stateful
from dd3d.distill.tensors import SyntheticTensors, require_classification
from dd3d.errors import ConfigError, DD3DError
from dd3d.io import load_checkpoint, save_checkpoint
from dd3d.models import build_model
from dd3d.nn.rotator import RotatedBackbone, Rotator
from dd3d.train import TrainingRun, make_optimizer, train_epoch

CACHE_VERSION = 1  # bump when expert training changes, to invalidate old caches


def flat_parameters(module: nn.Module) -> torch.Tensor:
    """All parameters of ``module`` as one detached vector (``named_parameters`` order)."""
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()])


def expert_settings(cfg: Config) -> dict[str, Any]:
    """Every setting that determines an expert trajectory (hashed into the cache file name)."""
    tm = cfg.distill.tm
    return {"version": CACHE_VERSION, "task": cfg.task, "data": dataclasses.asdict(cfg.data),
            "distill_resolution": cfg.distill.resolution, "real_sampling": cfg.distill.real_sampling,
            "model": dataclasses.asdict(cfg.model),
            "rotator": rotator_kind(cfg), "augment": dataclasses.asdict(cfg.augment), "seed": cfg.seed,
            "epochs": tm.expert_epochs, "lr": tm.expert_lr, "batch": tm.expert_batch}


def expert_path(cfg: Config, cache_dir: Path, index: int) -> Path:
    digest = hashlib.sha256(json.dumps(expert_settings(cfg), sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir / f"tm-{cfg.data.name}-{digest}-{index}.pt"


def expert_training(cfg: Config) -> TrainConfig:
    """The experts' optimisation as a training config: plain SGD, no momentum or weight decay."""
    tm = cfg.distill.tm
    return TrainConfig(epochs=tm.expert_epochs, batch_size=tm.expert_batch, optimizer="sgd", lr=tm.expert_lr,
                       momentum=0.0, weight_decay=0.0, scheduler="none")


def train_expert(ctx: DistillContext, rotator: Rotator, index: int, bar: tqdm | None = None) -> torch.Tensor:
    """Train expert ``index`` on the real training split (:meth:`DistillContext.real_epoch`: fresh points
    every epoch with ``distill.real_sampling: fresh``); its trajectory (expert_epochs + 1, n_params) on the CPU."""
    cfg = ctx.cfg
    seed = cfg.seed * 1_000_003 + index
    torch.manual_seed(seed)
    backbone = build_model(cfg.model.name, ctx.task.kind, ctx.num_classes, size=cfg.model.size).to(ctx.device)
    train = expert_training(cfg)
    run = TrainingRun(RotatedBackbone(rotator, backbone), make_optimizer(backbone.parameters(), train), None,
                      torch.Generator().manual_seed(seed))
    snapshots = [flat_parameters(backbone).cpu()]
    for _ in range(train.epochs):
        train_epoch(run, ctx.task, ctx.real_epoch(run.generator), train, cfg.augment, ctx.device)
        snapshots.append(flat_parameters(backbone).cpu())
        if bar is not None:
            bar.update()
    return torch.stack(snapshots)


def load_experts(ctx: DistillContext, rotator: Rotator, cache_dir: Path, n_params: int,
                 progress: bool = True) -> list[torch.Tensor]:
    """The ``tm.experts`` trajectories, loaded from ``cache_dir`` or trained (and cached) when missing."""
    cfg = ctx.cfg
    tm = cfg.distill.tm
    paths = [expert_path(cfg, cache_dir, i) for i in range(tm.experts)]
    missing = [i for i, path in enumerate(paths) if not path.is_file()]
    if missing:
        with tqdm(total=len(missing) * tm.expert_epochs, desc="TM experts", unit="epoch",
                  disable=not progress, leave=False) as bar:
            for i in missing:
                save_checkpoint(paths[i], {"trajectory": train_expert(ctx, rotator, i, bar),
                                           "settings": json.dumps(expert_settings(cfg), sort_keys=True)})
    trajectories = []
    for path in paths:
        trajectory = load_checkpoint(path, "TM expert trajectory").get("trajectory")
        expected = (tm.expert_epochs + 1, n_params)
        if not isinstance(trajectory, torch.Tensor) or tuple(trajectory.shape) != expected:
            raise DD3DError(f"{path}: not a TM expert trajectory of shape {expected}; delete it to retrain")
        trajectories.append(trajectory.to(ctx.device))
    return trajectories


class TM(SyntheticTensors, Method):
    """Synthetic clouds are free (K·cpc, P, 3) tensors initialised from real clouds."""

    name = "tm"

    def __init__(self, ctx: DistillContext, cache_dir: Path | None = None, init: torch.Tensor | None = None,
                 progress: bool = True) -> None:
        require_classification(ctx, self.name)
        tm = ctx.cfg.distill.tm
        if tm.target_epochs > tm.expert_epochs:
            raise ConfigError(f"distill.tm.target_epochs ({tm.target_epochs}) must be <= "
                              f"distill.tm.expert_epochs ({tm.expert_epochs})")
        super().__init__(ctx)
        self.rotator = ctx.make_rotator().requires_grad_(False)
        self.backbone = build_model(ctx.cfg.model.name, ctx.task.kind, ctx.num_classes, size=ctx.cfg.model.size).to(ctx.device)
        self.backbone.requires_grad_(False)  # a template: functional_call supplies the parameters
        self.shapes = {name: p.shape for name, p in self.backbone.named_parameters()}
        self.numels = [shape.numel() for shape in self.shapes.values()]
        cache_dir = cache_dir if cache_dir is not None else Path(ctx.cfg.out) / "experts"
        self.trajectories = load_experts(ctx, self.rotator, cache_dir, sum(self.numels), progress)
        #: start epochs are drawn from 0 … start_epochs − 1
        self.start_epochs = max(1, min(tm.max_start_epoch, tm.expert_epochs - tm.target_epochs + 1))
        self.init_points(init)
        self.syn_lr = nn.Parameter(torch.tensor(tm.expert_lr, device=ctx.device))
        self.optimizer = self.points_optimizer(ctx.cfg.distill.sgd_lr.tm)
        self.lr_optimizer = torch.optim.SGD([self.syn_lr], lr=tm.lr_lr, momentum=tm.lr_momentum)

    def learned_tensors(self) -> dict[str, torch.Tensor]:
        return {"points": self.points, "syn_lr": self.syn_lr}

    def stateful(self) -> dict[str, Stateful]:
        return {"optimizer": self.optimizer, "lr_optimizer": self.lr_optimizer}

    def logits(self, theta: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """The backbone with flat parameters ``theta`` on the rotated ``points``."""
        params = {name: t.view(shape) for (name, shape), t in zip(self.shapes.items(), theta.split(self.numels))}
        return functional_call(self.backbone, params, (self.rotator(points),))

    def minibatches(self, steps: int) -> Iterator[torch.Tensor]:
        """``steps`` index batches of ≤ ``distill.inner_batch`` synthetic clouds, cycling through permutations."""
        chunks: list[torch.Tensor] = []
        for _ in range(steps):
            if not chunks:
                order = torch.randperm(len(self.points), generator=self.ctx.rng).to(self.ctx.device)
                chunks = list(order.split(self.ctx.cfg.distill.inner_batch))
            yield chunks.pop()

    def step(self, iteration: int) -> float:
        ctx, tm = self.ctx, self.ctx.cfg.distill.tm
        trajectory = self.trajectories[int(torch.randint(len(self.trajectories), (1,), generator=ctx.rng))]
        s = int(torch.randint(self.start_epochs, (1,), generator=ctx.rng))
        start, target = trajectory[s], trajectory[s + tm.target_epochs]
        theta = start.clone().requires_grad_(True)
        labels = ctx.synthetic_labels()
        for index in self.minibatches(tm.student_steps):
            loss = F.cross_entropy(self.logits(theta, self.points[index]), labels[index])
            (grad,) = torch.autograd.grad(loss, theta, create_graph=True)
            theta = theta - self.syn_lr * grad
        loss = (theta - target).square().sum() / (start - target).square().sum()
        if not torch.isfinite(loss):
            raise DD3DError(f"TM diverged at iteration {iteration} (loss {float(loss.detach())}, step size "
                            f"{float(self.syn_lr.detach())}); lower distill.lr or distill.tm.lr_lr")
        self.optimizer.zero_grad(set_to_none=True)
        self.lr_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.lr_optimizer.step()
        with torch.no_grad():  # a negative or zero student step size would make the unroll meaningless
            self.syn_lr.clamp_(min=tm.min_student_lr)
        self.losses.append(float(loss.detach()))
        return self.losses[-1]
