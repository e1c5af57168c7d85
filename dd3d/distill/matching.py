"""Gradient matching (paper Eq. 13, the DC objective) and the outer/inner loop shared by GM and DD3D.

Per iteration: a fresh network; for each outer step the per-class layer-wise distance between the
gradient of the loss on real clouds (detached) and on the class's synthetic clouds (with
``create_graph``), summed over classes, drives one optimiser step on the synthetic representation;
between outer steps the network is trained for ``inner`` epochs on the regenerated synthetic set (SGD
``distill.net_lr``, ×``net_lr_gamma`` every ``net_lr_step`` epochs; null: once, at half of outer × inner).

Segmentation (Eq. 14, Algorithm 1): the loss is the per-point cross-entropy of PointNetSeg given
the category; per-part outer steps match, for every part of the class, the gradient of the loss
restricted to that part's points, and BatchNorm statistics come from real clouds, frozen while
matching (:meth:`DistillContext.freeze_batchnorm`).

Randomness is keyed, not sequential (:meth:`DistillContext.drawing`): the fresh network by
(iteration), the BatchNorm clouds and the inner loop by (iteration, outer step), and each class's real
batch, augmentation and synthetic noise by (iteration, outer step, class). Under torchrun each process
matches its own block of classes and the gradients are summed (:mod:`dd3d.distill.distributed`); the
keys, and summing the per-class gradients in float64, make that the result of one process.
"""
from __future__ import annotations

import abc
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from dd3d.config import LoopSchedule
from dd3d.data.transforms import normalize_unit_sphere
from dd3d.device import tf32
from dd3d.distill import distributed
from dd3d.distill.base import DistillContext, Method
from dd3d.distill.pointnet_gradients import analytic_gradients, applies, grouped_gradients
from dd3d.train import Task

# first element of the random-stream keys (DistillContext.drawing)
NETWORK, BATCHNORM, CLASS, INNER, WARM_START = range(5)


def half(steps: int) -> int:
    """The step size of a StepLR that decays once, at half of ``steps`` (the release's schedules)."""
    return max(steps // 2, 1)


def nearest_schedule(table: LoopSchedule, cpc: int) -> tuple[int, int]:
    """The (outer, inner) of the closest tabulated cpc, the smaller on a tie (the reference only tabulates
    1/10/50)."""
    return table[min(table, key=lambda k: (abs(k - cpc), k))]


def layerwise_distance(g_real: Sequence[torch.Tensor], g_syn: Sequence[torch.Tensor]) -> torch.Tensor:
    """The DC layer-wise gradient distance.

    Every weight tensor is reshaped to (out_channels, rest); the distance is
    Σ_rows (1 − cos(g_real_row, g_syn_row)) with +1e-6 in the cosine's denominator. 1-D tensors
    (biases, norm affines) contribute 0. Summed over tensors.
    """
    total = g_syn[0].new_zeros(())
    for real, syn in zip(g_real, g_syn):
        if real.ndim == 1:
            continue
        real, syn = real.reshape(real.shape[0], -1), syn.reshape(syn.shape[0], -1)
        cos = (real * syn).sum(dim=1) / (real.norm(dim=1) * syn.norm(dim=1) + 1e-6)
        total = total + (1 - cos).sum()
    return total


def matched_parameters(net: nn.Module) -> list[nn.Parameter]:
    """The backbone weights whose gradients are matched (multi-dimensional only: 1-D ones add 0)."""
    backbone = getattr(net, "backbone", net)
    return [p for p in backbone.parameters() if p.ndim > 1]


def term_gradients(task: Task, net: nn.Module, params: list[nn.Parameter], points: torch.Tensor, c: int,
                   parts: torch.Tensor | None, terms: Sequence[int | None],
                   create_graph: bool) -> list[tuple[torch.Tensor, ...] | None]:
    """Gradients of the loss of ``net`` on clouds of class ``c``, one forward pass, per term.

    A term ``None`` is the mean loss over the whole clouds; a part id ``p`` the loss over the points
    labelled ``p`` only (the part mask M_p of Eq. 14), giving None when no point has that label.
    """
    labels = torch.full((len(points),), c, dtype=torch.long, device=points.device)
    logits = task.logits(net, points, labels)
    losses = [task.loss(logits, labels, parts, part) for part in terms]
    last = max((i for i, loss in enumerate(losses) if loss is not None), default=-1)
    return [None if loss is None else
            torch.autograd.grad(loss, params, create_graph=create_graph, retain_graph=create_graph or i < last)
            for i, loss in enumerate(losses)]


def real_gradients(task: Task, net: nn.Module, params: list[nn.Parameter], points: torch.Tensor, c: int,
                   parts: torch.Tensor | None, terms: Sequence[int | None],
                   method: str = "autograd") -> list[tuple[torch.Tensor, ...] | None]:
    """:func:`term_gradients` of the real clouds, detached; with ``method`` 'analytic' the whole-cloud
    term of the classification PointNet is written out instead
    (:func:`dd3d.distill.pointnet_gradients.analytic_gradients`, ``distill.real_grad``)."""
    if method == "analytic" and list(terms) == [None] and applies(task, net):
        labels = torch.full((len(points),), c, dtype=torch.long, device=points.device)
        grads = analytic_gradients(net, points, labels)
        return [tuple(grads[p][0] for p in params)]
    grads = term_gradients(task, net, params, points, c, parts, terms, create_graph=False)
    return [None if g is None else tuple(t.detach() for t in g) for g in grads]


def class_distance(task: Task, net: nn.Module, params: list[nn.Parameter], c: int,
                   real: tuple[torch.Tensor, torch.Tensor | None], syn: tuple[torch.Tensor, torch.Tensor | None],
                   terms: Sequence[int | None] = (None,), real_grad: str = "autograd") -> torch.Tensor:
    """Σ_terms D(∇L(real), ∇L(syn)) for class ``c`` (Eq. 13; per part, Eq. 14); real gradients are
    detached (computed as ``real_grad`` says, :func:`real_gradients`), and a term is skipped when either
    side has no points of its part."""
    g_real = real_gradients(task, net, params, real[0], c, real[1], terms, real_grad)
    kept = [(term, g) for term, g in zip(terms, g_real) if g is not None]
    g_syn = term_gradients(task, net, params, syn[0], c, syn[1], [term for term, _ in kept], create_graph=True)
    total = syn[0].new_zeros(())
    for (_, real_grads), syn_grads in zip(kept, g_syn):
        if syn_grads is not None:
            total = total + layerwise_distance(real_grads, syn_grads)
    return total


def batched_distance(net: nn.Module, params: list[nn.Parameter], classes: Sequence[int], real: list[torch.Tensor],
                     syn: list[torch.Tensor], real_grad: str = "autograd") -> torch.Tensor:
    """Σ_c D(∇L(real_c), ∇L(syn_c)) over ``classes`` (Eq. 13) with every class's gradients from one
    forward/backward per side (:mod:`dd3d.distill.pointnet_gradients`; classification PointNet only):
    the same value as summing :func:`class_distance` over the classes, to float rounding. ``real`` and
    ``syn`` hold each class's clouds (equal counts per side)."""
    def labels(clouds: list[torch.Tensor]) -> torch.Tensor:
        return torch.tensor(list(classes), device=clouds[0].device).repeat_interleave(len(clouds[0]))

    real_points = torch.cat(real)
    if real_grad == "analytic":
        g_real = analytic_gradients(net, real_points, labels(real), len(classes))
    else:
        g_real = grouped_gradients(net, real_points, labels(real), len(classes), create_graph=False)
    g_syn = grouped_gradients(net, torch.cat(syn), labels(syn), len(classes), create_graph=True)
    # rows of different classes are independent in the distance: stack the classes as more rows
    return layerwise_distance([g_real[p].flatten(0, 1) for p in params], [g_syn[p].flatten(0, 1) for p in params])


class GradientMatching(Method, abc.ABC):
    """The loop of Eq. 13 around any differentiable synthetic representation."""

    shards_classes = True

    def __init__(self, ctx: DistillContext) -> None:
        super().__init__(ctx)
        self.group = distributed.current()
        #: the classes this process matches (all of them in one process)
        self.classes = self.group.shard(ctx.num_classes)
        self.rotator = ctx.make_rotator()
        d = ctx.cfg.distill
        table = d.schedule.segmentation if ctx.task.kind == "segmentation" else self.schedule()
        self.outer, self.inner = nearest_schedule(table, ctx.cpc)
        self.outer = d.outer_loop if d.outer_loop is not None else self.outer
        self.inner = d.inner_loop if d.inner_loop is not None else self.inner

    @abc.abstractmethod
    def schedule(self) -> LoopSchedule:
        """The method's reference (outer, inner) table for classification in this setting
        (``distill.schedule``)."""

    @abc.abstractmethod
    def synthetic_batch(self, c: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Differentiable (cpc, P, 3) synthetic clouds of class ``c`` at ``distill.resolution`` and
        their (cpc, P) part labels (segmentation) or None."""

    @property
    @abc.abstractmethod
    def optimizer(self) -> torch.optim.Optimizer:
        """The optimiser of the synthetic representation (and rotator)."""

    def class_distances(self, net: nn.Module, per_part: bool = False, iteration: int = 0,
                        outer: int = 0) -> Iterator[torch.Tensor]:
        """D(∇L(real_c), ∇L(syn_c)) on the current network for each class c of this process (Eq. 13),
        or with ``per_part`` the sum over the class's parts of the masked-loss distances (Eq. 14);
        class c draws from the stream (CLASS, ``iteration``, ``outer``, c)."""
        ctx = self.ctx
        params = matched_parameters(net)
        for c in self.classes:
            terms = ctx.task.category_parts[c] if per_part else (None,)
            with ctx.drawing(CLASS, iteration, outer, c):
                distance = class_distance(ctx.task, net, params, c, ctx.real_batch(c), self.synthetic_batch(c), terms,
                                          ctx.cfg.distill.real_grad)
            yield distance

    def batches_classes(self, net: nn.Module, per_part: bool) -> bool:
        """Whether this outer step takes every class's gradients in one pass (``distill.class_batching``)."""
        mode = self.ctx.cfg.distill.class_batching
        if per_part or mode == "loop" or not self.classes or not applies(self.ctx.task, net):
            return False
        return mode == "batched" or self.ctx.device.type == "cuda"

    def batched_gradients(self, params: list[torch.Tensor], net: nn.Module, iteration: int,
                          outer: int) -> tuple[list[torch.Tensor | None], torch.Tensor]:
        """:meth:`summed_gradients` with all of this process's classes in one pass per side
        (:func:`batched_distance`); the same draws per class (CLASS, ``iteration``, ``outer``, c)."""
        ctx = self.ctx
        real, syn = [], []
        for c in self.classes:
            with ctx.drawing(CLASS, iteration, outer, c):
                real.append(ctx.real_batch(c)[0])
                syn.append(self.synthetic_batch(c)[0])
        with tf32(ctx.device):
            distance = batched_distance(net, matched_parameters(net), self.classes, real, syn,
                                        ctx.cfg.distill.real_grad)
            grads = torch.autograd.grad(distance, params, allow_unused=True)
        return [None if g is None else g.double() for g in grads], distance.detach().double()

    def matching_loss(self, net: nn.Module, per_part: bool = False, iteration: int = 0, outer: int = 0) -> torch.Tensor:
        """Σ_c of :meth:`class_distances` (Eq. 13/14) as one differentiable loss."""
        return sum(self.class_distances(net, per_part, iteration, outer))

    def summed_gradients(self, params: list[torch.Tensor], net: nn.Module, per_part: bool, iteration: int,
                         outer: int) -> tuple[list[torch.Tensor | None], torch.Tensor]:
        """Σ_c ∇_params D_c over this process's classes and Σ_c D_c, accumulated class by class in float64,
        so the sums do not depend on how the classes are split over processes (and each class's graph
        is freed before the next one is built; with class batching, :meth:`batched_gradients`). None for a
        parameter no class reaches."""
        if self.batches_classes(net, per_part):
            return self.batched_gradients(params, net, iteration, outer)
        sums: list[torch.Tensor | None] = [None] * len(params)
        total = torch.zeros((), dtype=torch.float64, device=self.ctx.device)
        for distance in self.class_distances(net, per_part, iteration, outer):
            if not distance.requires_grad:  # every part term skipped
                continue
            for i, grad in enumerate(torch.autograd.grad(distance, params, allow_unused=True)):
                if grad is not None:
                    sums[i] = grad.double() if sums[i] is None else sums[i].add_(grad)
            total += distance.detach()
        return sums, total

    def per_part_step(self, outer: int) -> bool:
        """Whether outer step ``outer`` matches per part (segmentation, ``distill.part_matching``)."""
        if self.ctx.task.kind != "segmentation":
            return False
        mode = self.ctx.cfg.distill.part_matching
        return mode == "part" or (mode == "alternate" and outer % 2 == 1)

    def train_inner(self, net: nn.Module, net_optimizer: torch.optim.Optimizer,
                    net_scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
        """``inner`` epochs of the network (and rotator) on the detached synthetic set; the scheduler
        steps after every epoch (``distill.net_lr_step``)."""
        ctx = self.ctx
        with torch.no_grad():
            batches = [self.synthetic_batch(c) for c in range(ctx.num_classes)]
            points = normalize_unit_sphere(torch.cat([b[0] for b in batches]))
            parts = None if batches[0][1] is None else torch.cat([b[1] for b in batches])
        labels = ctx.synthetic_labels()
        batch = ctx.cfg.distill.inner_batch
        net.train()
        for _ in range(self.inner):
            order = torch.randperm(len(points), generator=ctx.rng).to(ctx.device)
            for start in range(0, len(order), batch):
                index = order[start:start + batch]
                logits = ctx.task.logits(net, points[index], labels[index])
                loss = ctx.task.loss(logits, labels[index], None if parts is None else parts[index])
                net_optimizer.zero_grad(set_to_none=True)
                loss.backward()
                net_optimizer.step()
            net_scheduler.step()

    def step(self, iteration: int) -> float:
        """One iteration; across processes the partial gradients (and losses) of every outer step are
        summed before the optimiser step, so every process takes the step one process would take."""
        ctx = self.ctx
        with ctx.drawing(NETWORK, iteration):
            net = ctx.new_network(self.rotator)
        d = ctx.cfg.distill
        net_optimizer = torch.optim.SGD(net.parameters(), lr=d.net_lr)
        net_step = d.net_lr_step if d.net_lr_step is not None else half(self.outer * self.inner)
        net_scheduler = torch.optim.lr_scheduler.StepLR(net_optimizer, step_size=net_step, gamma=d.net_lr_gamma)
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        losses = []
        for outer in range(self.outer):
            with ctx.drawing(BATCHNORM, iteration, outer):
                ctx.freeze_batchnorm(net, self.classes, self.group.all_reduce)
            grads, loss = self.summed_gradients(params, net, self.per_part_step(outer), iteration, outer)
            losses.append(self.group.set_summed_gradients(params, grads, loss))
            self.optimizer.step()
            if outer < self.outer - 1 and self.inner > 0:
                with ctx.drawing(INNER, iteration, outer):
                    self.train_inner(net, net_optimizer, net_scheduler)
        self.after_iteration()
        loss = float(np.mean(losses)) / self.ctx.num_classes
        self.losses.append(loss)
        return loss

    def after_iteration(self) -> None:
        """Hook run after each iteration (e.g. a learning-rate schedule step)."""
