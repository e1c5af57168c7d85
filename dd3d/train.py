"""Training a backbone on a set of clouds and testing it: used by ``dd3d train`` (full data).

One epoch = one pass over the shuffled training clouds in mini-batches with the configured
augmentation. All randomness (initialisation, shuffling, augmentation) comes from ``seed``; the
generator state is checkpointed so an interrupted run resumes exactly where it stopped.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from dd3d.config import AugmentConfig, Config, TrainConfig, rotator_kind
from dd3d.data.base import PointCloudSet
from dd3d.data.transforms import augment
from dd3d.errors import DD3DError
from dd3d.io import save_checkpoint
from dd3d.metrics import category_part_mask, classification_metrics, restrict_to_category, segmentation_metrics
from dd3d.models import build_network
from dd3d.nn.rotator import Rotator

EVAL_BATCH = 64
IGNORED = -100  # target value cross-entropy skips


@dataclass
class Task:
    """What is predicted: 'classification' (one label per cloud) or 'segmentation' (per point)."""

    kind: str
    num_classes: int
    num_parts: int = 0
    category_parts: dict[int, list[int]] | None = None

    @classmethod
    def of(cls, kind: str, data: PointCloudSet) -> "Task":
        return cls(kind, data.num_classes, data.num_parts, data.category_parts)

    def logits(self, model: nn.Module, points: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.kind == "classification":
            return model(points)
        return model(points, labels)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, parts: torch.Tensor | None,
             only_part: int | None = None) -> torch.Tensor | None:
        """Mean cross-entropy; for segmentation over all points, or with ``only_part`` over the points
        labelled that part (others ignored: the masked loss of Eq. 14), None when there are none."""
        if self.kind == "classification":
            return F.cross_entropy(logits, labels)
        target = parts.reshape(-1)
        if only_part is not None:
            keep = target == only_part
            if not bool(keep.any()):
                return None
            target = target.masked_fill(~keep, IGNORED)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target, ignore_index=IGNORED)


@dataclass
class TrainingRun:
    """Everything that changes while training, checkpointed as one unit."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    generator: torch.Generator
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "epoch": self.epoch,
            "history": self.history,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])


def make_optimizer(params: Any, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Per-epoch schedule: cosine to ``min_lr`` over ``epochs``, or ×``gamma`` every ``step_size``."""
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs, eta_min=cfg.min_lr)
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    return None


def make_rotator(cfg: Config) -> Rotator:
    """The rotator the config asks for (``model.rotator``; ``auto`` follows ``data.setting``)."""
    r = cfg.model.rotator
    return Rotator(rotator_kind(cfg), r.fourier, r.omega)


def new_run(task: Task, model_name: str, cfg: TrainConfig, device: torch.device, seed: int,
            rotator: Rotator, size: str = "full") -> TrainingRun:
    """A freshly initialised network behind ``rotator``, its optimizer and scheduler, all from ``seed``.

    Learnable rotator parameters that require gradients are trained with the network.
    """
    torch.manual_seed(seed)
    model = build_network(model_name, task.kind, task.num_classes, rotator, task.num_parts, size).to(device)
    optimizer = make_optimizer(model.parameters(), cfg)
    return TrainingRun(model, optimizer, make_scheduler(optimizer, cfg), torch.Generator().manual_seed(seed))


def _batch(data: PointCloudSet, index: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    points = torch.from_numpy(data.points[index]).to(device)
    labels = torch.from_numpy(data.labels[index]).to(device)
    parts = None if data.parts is None else torch.from_numpy(data.parts[index]).to(device)
    return points, labels, parts


def train_epoch(run: TrainingRun, task: Task, data: PointCloudSet, cfg: TrainConfig, aug: AugmentConfig,
                device: torch.device) -> float:
    """One shuffled pass over ``data``; returns the mean training loss."""
    run.model.train()
    order = torch.randperm(len(data), generator=run.generator).numpy()
    total, seen = 0.0, 0
    for start in range(0, len(order), cfg.batch_size):
        index = np.sort(order[start:start + cfg.batch_size])
        points, labels, parts = _batch(data, index, device)
        points = augment(points, aug, run.generator)
        loss = task.loss(task.logits(run.model, points, labels), labels, parts)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        total += loss.item() * len(index)
        seen += len(index)
    if run.scheduler is not None:
        run.scheduler.step()
    return total / max(seen, 1)


@torch.no_grad()
def evaluate(model: nn.Module, task: Task, data: PointCloudSet, device: torch.device) -> dict[str, Any]:
    """Test metrics of ``model`` on ``data`` (OA/mAcc, or OA/instance mIoU/class mIoU/per-category mIoU)."""
    model.eval()
    preds = []
    mask = None if task.kind == "classification" else category_part_mask(task.category_parts, task.num_parts)
    for start in range(0, len(data), EVAL_BATCH):
        index = np.arange(start, min(start + EVAL_BATCH, len(data)))
        points, labels, _ = _batch(data, index, device)
        logits = task.logits(model, points, labels)
        pred = logits.argmax(dim=1) if mask is None else restrict_to_category(logits, labels, mask)
        preds.append(pred.cpu().numpy())
    if not preds:
        return {}
    pred = np.concatenate(preds)
    if mask is None:
        return classification_metrics(pred, data.labels, task.num_classes)
    return segmentation_metrics(pred, data.parts, data.labels, task.category_parts)


def fit(run: TrainingRun, task: Task, train: PointCloudSet, test: PointCloudSet, cfg: TrainConfig,
        aug: AugmentConfig, device: torch.device, checkpoint: Path | None = None,
        eval_every: int = 0, log: Callable[[str], None] | None = None, progress: bool = True,
        checkpoint_meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train from ``run.epoch`` to ``cfg.epochs``, then test; returns the final test metrics.

    ``eval_every`` > 0 also tests every that many epochs (recorded in ``run.history``). With a
    ``checkpoint`` path the run (plus ``checkpoint_meta``) is saved atomically every
    ``cfg.checkpoint_every`` epochs, and on Ctrl-C the state at the end of the last completed epoch is
    saved before re-raising.
    """
    meta = checkpoint_meta or {}
    last_complete = {**copy.deepcopy(run.state_dict()), **meta}
    bar = tqdm(range(run.epoch, cfg.epochs), initial=run.epoch, total=cfg.epochs, desc="train",
               unit="epoch", disable=not progress, leave=False)
    try:
        for epoch in bar:
            start = time.perf_counter()
            loss = train_epoch(run, task, train, cfg, aug, device)
            if not math.isfinite(loss):
                if checkpoint is not None:
                    save_checkpoint(checkpoint, last_complete)
                kept = f"; the last good state (epoch {epoch}) is kept in {checkpoint}" if checkpoint else ""
                raise DD3DError(f"the training loss is {loss} in epoch {epoch + 1} (diverged): lower the "
                                f"learning rate{kept}")
            record: dict[str, float] = {"epoch": epoch + 1, "loss": loss, "seconds": time.perf_counter() - start}
            if eval_every and (epoch + 1) % eval_every == 0:
                record.update({f"test_{k}": v for k, v in evaluate(run.model, task, test, device).items()
                               if isinstance(v, float)})
            run.history.append(record)
            run.epoch = epoch + 1
            bar.set_postfix(loss=f"{loss:.4f}")
            if log is not None:
                log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
            last_complete = {**copy.deepcopy(run.state_dict()), **meta}
            if checkpoint is not None and (run.epoch % cfg.checkpoint_every == 0 or run.epoch == cfg.epochs):
                save_checkpoint(checkpoint, last_complete)
    except KeyboardInterrupt:
        if checkpoint is not None:
            save_checkpoint(checkpoint, last_complete)
        raise
    finally:
        bar.close()
    return evaluate(run.model, task, test, device)
