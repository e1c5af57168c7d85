"""The interface shared by every distillation method, and the context they run in.

A method is built from a :class:`DistillContext` (config, real training data, device, seeded RNG),
advanced one outer iteration at a time with :meth:`Method.step`, and asked for its current
synthetic set at any resolution with :meth:`Method.synthetic`, for a copy of it that the lab shows
(:meth:`Method.preview`), for the files and facts a run folder keeps besides it
(:meth:`Method.artefacts`, :meth:`Method.report`) and for the rotator saved with it
(:meth:`Method.trained_rotator`). The CLI, the lab engine and the evaluation call only this
interface; adding a method touches one file plus the registry (:data:`dd3d.distill.METHODS`).

Randomness: ``DistillContext.rng`` is one sequential stream; :meth:`DistillContext.drawing` reroutes
it, for a block, to a stream keyed by e.g. (iteration, outer step, class), so the draws of a key are
the same whichever process makes them and in whatever order (distributed runs, resume).
"""
from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Iterator, Protocol, Sequence

import numpy as np
import torch
from torch import nn

from dd3d.config import Config
from dd3d.data.base import PointCloudSet
from dd3d.data.prepare import resample
from dd3d.data.transforms import augment, normalize_unit_sphere
from dd3d.distill import distributed
from dd3d.errors import ConfigError
from dd3d.models import build_network
from dd3d.nn.rotator import Rotator
from dd3d.previews import DISPLAY_SEED, Preview, StoredClouds
from dd3d.synthetic import SyntheticSet
from dd3d.train import Task, make_rotator


@dataclass
class DistillContext:
    """What every method needs: config, real training clouds grouped by class, device and RNG.

    ``real`` holds the training split at ``distill.resolution`` (one fixed subset of points per
    cloud); ``real_full`` the same clouds at ``eval.resolution`` (what coresets hand to evaluation);
    ``real_source`` the same clouds at ``data.resolution`` (default ``real_full``), from which
    ``distill.real_sampling: fresh`` draws a new subset of points for every real batch.
    """

    cfg: Config
    task: Task
    real: PointCloudSet
    real_full: PointCloudSet
    device: torch.device
    seed: int
    real_source: PointCloudSet | None = None
    rng: torch.Generator = field(init=False)
    by_class: list[np.ndarray] = field(init=False)
    real_points: torch.Tensor = field(init=False)
    real_parts: torch.Tensor | None = field(init=False)
    source_points: torch.Tensor | None = field(init=False)
    source_parts: torch.Tensor | None = field(init=False)

    def __post_init__(self) -> None:
        self.rng = torch.Generator().manual_seed(self.seed)
        self.by_class = [np.flatnonzero(self.real.labels == c) for c in range(self.task.num_classes)]
        empty = [self.real.class_names[c] for c, idx in enumerate(self.by_class) if len(idx) == 0]
        if empty:
            from dd3d.errors import DataError

            raise DataError(f"{self.real.source}: no training clouds for class(es) {', '.join(empty)}")
        self.real_points = torch.from_numpy(self.real.points).to(self.device)
        self.real_parts = None if self.real.parts is None else torch.from_numpy(self.real.parts).to(self.device)
        source = self.real_source if self.real_source is not None else self.real_full
        fresh = self.cfg.distill.real_sampling == "fresh" and source.points.shape[1] > self.real.points.shape[1]
        # fresh draws need more points than the matching uses; otherwise they are the fixed clouds
        self.source_points = torch.from_numpy(source.points).to(self.device) if fresh else None
        self.source_parts = (None if not fresh or source.parts is None
                             else torch.from_numpy(source.parts).to(self.device))

    @property
    def cpc(self) -> int:
        return self.cfg.distill.cpc

    @property
    def num_classes(self) -> int:
        return self.task.num_classes

    def sample_indices(self, c: int, n: int) -> np.ndarray:
        """``n`` random training indices of class ``c`` (without replacement when possible)."""
        pool = self.by_class[c]
        pick = torch.randperm(len(pool), generator=self.rng)[:n].numpy() if n <= len(pool) else \
            torch.randint(len(pool), (n,), generator=self.rng).numpy()
        return pool[pick]

    def real_clouds(self, index: np.ndarray,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The training clouds ``index`` at ``distill.resolution`` as the matching sees them, and their
        part labels (segmentation) or None: with ``distill.real_sampling: fresh`` a new random subset of
        each cloud's points at ``data.resolution`` (drawn from ``generator``, default ``rng``),
        re-normalised to the unit sphere (the release); else the subset fixed when the data was prepared."""
        rows = torch.from_numpy(index).to(self.device)
        if self.source_points is None:
            return self.real_points[rows], None if self.real_parts is None else self.real_parts[rows]
        parts = None if self.source_parts is None else self.source_parts[rows]
        points, parts = resample(self.source_points[rows], parts, self.real.points.shape[1], "random",
                                 generator or self.rng)
        return normalize_unit_sphere(points), parts

    def real_batch(self, c: int, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``distill.real_batch`` real clouds of class ``c`` (:meth:`real_clouds`, augmented if
        configured) and their part labels (segmentation) or None."""
        points, parts = self.real_clouds(self.sample_indices(c, n or self.cfg.distill.real_batch))
        if self.cfg.distill.augment_real:
            points = augment(points, self.cfg.augment, self.rng)
        return points, parts

    def real_epoch(self, generator: torch.Generator) -> PointCloudSet:
        """The whole training split at ``distill.resolution`` for one pass of a network trained on real
        data (TM's experts): ``real``, or with fresh sampling a new subset of every cloud's points."""
        if self.source_points is None:
            return self.real
        points, parts = self.real_clouds(np.arange(len(self.real)), generator)
        return self.real.with_points(points.cpu().numpy(), None if parts is None else parts.cpu().numpy())

    @torch.no_grad()
    def freeze_batchnorm(self, net: nn.Module, classes: Sequence[int] | None = None,
                         reduce: Callable[[torch.Tensor], None] | None = None) -> None:
        """Set every BatchNorm's statistics from ``distill.batchnorm_clouds`` real clouds per class,
        then freeze them (eval mode) for gradient matching, as DC does; no-op without BatchNorm.

        The clouds of every class are drawn (:meth:`real_clouds`; the same draws in every process), but
        only those of ``classes`` (default: all) are forwarded here; each layer's moments are added class
        by class in float64 and ``reduce`` (an in-place sum over processes) adds the other processes' before
        the layer normalises, so the statistics are those of all classes' clouds in one batch (what
        train-mode BatchNorm computes), whichever process holds which classes.
        """
        norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms:
            return
        n = self.cfg.distill.batchnorm_clouds
        picks = np.stack([self.sample_indices(c, n) for c in range(self.num_classes)])
        clouds = self.real_clouds(picks.reshape(-1))[0].unflatten(0, picks.shape)  # drawn for all classes
        classes = list(range(self.num_classes) if classes is None else classes)
        index = picks[classes].reshape(-1)
        unbias: list[tuple[nn.Module, float]] = []
        hooks = [m.register_forward_pre_hook(partial(_batch_moments, blocks=len(classes), reduce=reduce, unbias=unbias))
                 for m in norms]
        for m in norms:
            m.eval()  # normalise with the running statistics the hook has just set
        try:
            labels = torch.from_numpy(self.real.labels[index]).to(self.device)
            self.task.logits(net, clouds[classes].flatten(0, 1), labels)
        finally:
            for hook in hooks:
                hook.remove()
        for m, factor in unbias:
            m.running_var.mul_(factor)  # stored unbiased, as train-mode BatchNorm does

    def new_network(self, rotator: Rotator | None = None, kind: str | None = None) -> nn.Module:
        """A freshly initialised backbone (for the task, or ``kind``) wrapped by the rotator (drawn from
        the context's RNG)."""
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=self.rng)))
        rotator = rotator if rotator is not None else self.make_rotator()
        return build_network(self.cfg.model.name, kind or self.task.kind, self.task.num_classes, rotator,
                             self.task.num_parts, self.cfg.model.size).to(self.device)

    def stream(self, *key: int) -> torch.Generator:
        """A generator seeded by (``seed``, ``key``) alone (numpy's SeedSequence with ``key`` as spawn key)."""
        state = np.random.SeedSequence(self.seed, spawn_key=key).generate_state(1, np.uint64)[0]
        return torch.Generator().manual_seed(int(state))

    @contextlib.contextmanager
    def drawing(self, *key: int) -> Iterator[None]:
        """Inside the block every draw of the context (``rng``: real batches, augmentation, network
        seeds, DD3D noise, shuffles) comes from :meth:`stream` ``(*key)``, and torch's global generator
        (dropout) is seeded from it; ``rng`` is restored after."""
        saved, self.rng = self.rng, self.stream(*key)
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=self.rng)))
        try:
            yield
        finally:
            self.rng = saved

    def make_rotator(self) -> Rotator:
        return make_rotator(self.cfg).to(self.device)

    def synthetic_labels(self) -> torch.Tensor:
        """Labels of the K·cpc synthetic clouds: class c owns rows c·cpc … c·cpc+cpc−1."""
        return torch.arange(self.num_classes, device=self.device).repeat_interleave(self.cpc)

    def initial_real(self, index: np.ndarray | None = None) -> tuple[torch.Tensor, np.ndarray]:
        """The real clouds ``index`` (default: cpc random ones per class, the DC initialisation) at
        ``distill.resolution`` and their training indices."""
        if index is None:
            index = np.concatenate([self.sample_indices(c, self.cpc) for c in range(self.num_classes)])
        return self.real_points[torch.from_numpy(index).to(self.device)].clone(), index


def _batch_moments(norm: nn.modules.batchnorm._BatchNorm, args: tuple[torch.Tensor, ...], blocks: int,
                   reduce: Callable[[torch.Tensor], None] | None, unbias: list[tuple[nn.Module, float]]) -> None:
    """Forward pre-hook of :meth:`DistillContext.freeze_batchnorm`: make ``norm`` (in eval mode)
    normalise its input with the mean and biased variance of the whole batch by storing them as its
    running statistics; records the unbiasing factor.

    The input is ``blocks`` equal blocks of clouds (one per class); the moments of each block are
    added in float64 and then over processes by ``reduce``, so they do not depend on how the classes
    are split over processes.
    """
    x = args[0]
    dims = [0, *range(2, x.ndim)]
    moments = torch.zeros(2, x.shape[1], dtype=torch.float64, device=x.device)
    for block in x.chunk(blocks):
        # two passes, the second squaring in place: ≈ 8× faster than torch.var_mean over the batch dimension on CPU
        block_mean = block.mean(dim=dims, keepdim=True)
        var = (block - block_mean).square_().mean(dim=dims).double()
        mean = block_mean.flatten().double()
        moments += torch.stack([mean, var + mean * mean]) * (block.numel() // x.shape[1])
    moments = torch.cat([moments.reshape(-1), moments.new_full((1,), x.numel() // x.shape[1])])
    if reduce is not None:
        reduce(moments)
    sums, squares, total = moments.split([x.shape[1], x.shape[1], 1])
    mean = sums / total
    norm.running_mean.copy_(mean)
    norm.running_var.copy_((squares / total - mean * mean).clamp_min(0))
    unbias.append((norm, float(total) / max(float(total) - 1, 1)))


class Stateful(Protocol):
    """Anything with ``state_dict``/``load_state_dict`` (modules, optimisers, schedulers)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> Any: ...


class Method(abc.ABC):
    """A distillation (or coreset) method."""

    name: str = ""
    #: outer iterations to run; coresets select once and need none
    iterative: bool = True
    #: whether the method shards its classes over torchrun processes (:mod:`dd3d.distill.distributed`)
    shards_classes: bool = False
    #: whether :meth:`synthetic` draws clouds at any resolution from a generator (else it resamples
    #: fixed clouds); the lab exports the first such method at the resolution shown
    regenerates: bool = False

    def __init__(self, ctx: DistillContext) -> None:
        world = distributed.current().world
        if world > 1 and not self.shards_classes:
            raise ConfigError(f"distill.method: {self.name!r} runs in one process only, got {world} torchrun "
                              "processes; only gradient-matching methods (e.g. gm, dd3d) run distributed")
        self.ctx = ctx
        self.losses: list[float] = []

    def start(self, progress: bool = False) -> None:
        """Work done once before the first iteration of a new run, not when resuming (e.g. DD3D's warm
        start), with a progress bar if ``progress``; called by :func:`dd3d.distill.build_method`."""

    def report(self) -> dict[str, Any]:
        """Method-specific facts for the run summary (``distill.json``)."""
        return {}

    def artefacts(self) -> dict[str, dict[str, Any]]:
        """Files a run folder holds besides ``synthetic.h5``: name -> payload (tensors and plain values,
        written with :func:`dd3d.io.save_checkpoint`), e.g. DD3D's ``generator.pt``."""
        return {}

    def preview(self) -> Preview:
        """The current synthetic clouds as a copy that another thread may read while this method keeps
        stepping (the lab's panels, a watched run): by default the set at ``distill.resolution`` as it
        stands; a method with a generator hands out a copy of it instead (:attr:`regenerates`)."""
        points = self.ctx.cfg.distill.resolution
        return StoredClouds(self.synthetic(points, torch.Generator().manual_seed(DISPLAY_SEED)))

    def trained_rotator(self) -> Rotator | None:
        """The rotator saved with the synthetic set (e.g. in DD3D's ``generator.pt``), which the lab's
        canonicalisation demo shows; None when the method keeps none."""
        return None

    @abc.abstractmethod
    def step(self, iteration: int) -> float:
        """One outer iteration; returns its matching loss."""

    @abc.abstractmethod
    def synthetic(self, points: int, generator: torch.Generator | None = None) -> SyntheticSet:
        """The current synthetic set at ``points`` points per cloud (unit-sphere normalised)."""

    def learned_tensors(self) -> dict[str, torch.Tensor]:
        """Tensors saved by value in the state (e.g. synthetic points, a learnable step size)."""
        return {}

    def stateful(self) -> dict[str, Stateful]:
        """Objects saved through their own ``state_dict`` (generator, optimisers, schedulers, rotator)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume (tensors and plain values only): :meth:`learned_tensors` by value,
        :meth:`stateful` objects by their state, and the loss curve."""
        state: dict[str, Any] = {k: t.detach().cpu().clone() for k, t in self.learned_tensors().items()}
        state.update({k: obj.state_dict() for k, obj in self.stateful().items()})
        state["losses"] = list(self.losses)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        with torch.no_grad():
            for k, t in self.learned_tensors().items():
                t.copy_(state[k])
        for k, obj in self.stateful().items():
            obj.load_state_dict(state[k])
        self.losses = list(state["losses"])

    def parameter_bytes(self) -> int:
        """Bytes of the learnable synthetic representation (tensors or generator weights)."""
        return 0
