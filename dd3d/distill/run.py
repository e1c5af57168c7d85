"""Running a distillation end to end: data → method → iterations → run folder.

The run folder holds ``synthetic.h5`` (at ``eval.resolution``), ``distill.json`` (method, cpc,
settings, wall time, peak memory, matching-loss curve), ``config.yaml`` (resolved), for dd3d
``generator.pt`` (generator + rotator + what is needed to regenerate at any resolution), and while
running ``checkpoint.pt`` (written atomically every ``distill.checkpoint_every`` iterations and on
Ctrl-C) from which ``--resume`` continues at the right iteration. With ``distill.snapshot_every`` the
run as it stood every so many iterations is kept in ``snapshots/it<N>/``, a run folder of its own.

Launched by ``torchrun`` (WORLD_SIZE > 1) the run joins the job's process group and the classes are
sharded across the processes (:mod:`dd3d.distill.distributed`); every process needs the config and
dataset (and, to resume, the run folder), rank 0 alone writes the run folder and shows progress.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from dd3d.config import Config, dataset_label, dump_config, rotator_kind
from dd3d.data import PointCloudSet, load_train_split, prepare_at
from dd3d.device import describe, resolve_device
from dd3d.distill import build_method
from dd3d.distill.base import DistillContext, Method
from dd3d.distill.distributed import Group, PeerLost, process_group
from dd3d.errors import DD3DError
from dd3d.io import load_checkpoint, save_checkpoint, write_json, write_text
from dd3d.provenance import command, machine, peak_memory_bytes
from dd3d.synthetic import SYNTHETIC_FILE, write_synthetic_h5
from dd3d.train import Task

CHECKPOINT_FILE = "checkpoint.pt"
CONFIG_FILE = "config.yaml"
SUMMARY_FILE = "distill.json"


def build_context(cfg: Config, device: torch.device) -> DistillContext:
    """Load the training split once and prepare it at the distillation, evaluation and data resolutions."""
    split = cfg.data.train_split
    raw = load_train_split(cfg)
    if cfg.task == "classification":  # e.g. the built-in set: its part labels play no role
        raw = dataclasses.replace(raw, parts=None, part_names=None, category_parts=None)
    prepared: dict[int, PointCloudSet] = {}
    for points in (cfg.distill.resolution, cfg.eval.resolution, cfg.data.resolution):
        if points not in prepared:
            prepared[points] = prepare_at(raw, cfg, split, points)
    real = prepared[cfg.distill.resolution]
    return DistillContext(cfg, Task.of(cfg.task, real), real, prepared[cfg.eval.resolution], device, cfg.seed,
                          real_source=prepared[cfg.data.resolution])


def _checkpoint_state(method: Method, ctx: DistillContext, iteration: int, seconds: float) -> dict[str, Any]:
    return copy.deepcopy({"method": method.state_dict(), "rng": ctx.rng.get_state(), "iteration": iteration,
                          "seconds": seconds, "name": method.name})


def distill(cfg: Config, out: Path, resume: bool = False, progress: bool = True,
            on_iteration: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    """Run ``cfg.distill.method`` and write the run folder ``out``; returns the summary written.

    Under torchrun every process runs this and returns the summary; only rank 0 writes ``out`` and
    shows progress; ``on_iteration`` runs in every process.
    """
    with process_group(resolve_device(cfg.device, cfg.threads)) as (group, device):
        try:
            return _distill(cfg, out, group, device, resume, progress, on_iteration)
        except PeerLost as exc:
            kept = (f"continue from {out / CHECKPOINT_FILE} with dd3d distill --resume {out}"
                    if (out / CHECKPOINT_FILE).is_file() else "no checkpoint was written yet")
            raise PeerLost(f"{exc}; {kept}") from None


class Diverged(DD3DError):
    """The matching loss or the synthetic clouds stopped being finite."""


def _diverged_hint(out: Path, iteration: int) -> str:
    return (f"the last good state (iteration {iteration}) is kept in {out / CHECKPOINT_FILE}; run again with a "
            "smaller distill.lr or distill.generator.omega0 (a resumed run would repeat the same steps)")


def _distill(cfg: Config, out: Path, group: Group, device: torch.device, resume: bool, progress: bool,
             on_iteration: Callable[[int, float], None] | None) -> dict[str, Any]:
    ctx = build_context(cfg, device)
    group.require_same("configs or training data", dump_config(cfg) + repr((ctx.real.class_names, len(ctx.real))))
    torch.manual_seed(cfg.seed)  # the method's own initialisation (e.g. generator weights)
    state = load_checkpoint(out / CHECKPOINT_FILE) if resume else None
    method = build_method(cfg.distill.method, ctx, None if state is None else state["method"],
                          progress and group.is_main)
    start_iteration, previous_seconds = 0, 0.0
    if state is not None:
        ctx.rng.set_state(state["rng"])
        start_iteration, previous_seconds = int(state["iteration"]), float(state["seconds"])
    if group.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / CONFIG_FILE, dump_config(cfg))
    total = cfg.distill.iterations if method.iterative else 0
    began, reduced_before = time.perf_counter(), group.reduced_bytes
    last = _checkpoint_state(method, ctx, start_iteration, previous_seconds)
    bar = tqdm(range(start_iteration, total), initial=start_iteration, total=total, unit="it",
               desc=f"distill {method.name}", disable=not (progress and group.is_main) or total == 0)
    try:
        for iteration in bar:
            loss = method.step(iteration)
            if not math.isfinite(loss):
                raise Diverged(f"{method.name}: the matching loss is {loss} at iteration {iteration + 1} (diverged)")
            bar.set_postfix(loss=f"{loss:.4f}")
            elapsed = previous_seconds + time.perf_counter() - began
            last = _checkpoint_state(method, ctx, iteration + 1, elapsed)
            if group.is_main and (iteration + 1) % cfg.distill.checkpoint_every == 0:
                save_checkpoint(out / CHECKPOINT_FILE, last)
            every = cfg.distill.snapshot_every
            if group.is_main and every and (iteration + 1) % every == 0 and iteration + 1 < total:
                _write_run_folder(snapshot_folder(out, iteration + 1), cfg, ctx, method, device, last,
                                  {"iterations": iteration + 1, "snapshot_of": total})
            if on_iteration is not None:
                on_iteration(iteration + 1, loss)
    except (KeyboardInterrupt, PeerLost, Diverged) as exc:  # keep the last completed iteration (same on every rank)
        if group.is_main:
            save_checkpoint(out / CHECKPOINT_FILE, last)
        if isinstance(exc, Diverged):
            raise Diverged(f"{exc}; {_diverged_hint(out, last['iteration'])}") from None
        raise
    finally:
        bar.close()
    seconds = previous_seconds + time.perf_counter() - began
    extra = {"processes": group.world,
             "all_reduce_bytes_per_iteration": (group.reduced_bytes - reduced_before) // max(total - start_iteration, 1)}
    try:
        summary = _write_run_folder(out if group.is_main else None, cfg, ctx, method, device,
                                    {**last, "seconds": seconds}, {"iterations": total, **extra})
    except Diverged as exc:
        if group.is_main:
            save_checkpoint(out / CHECKPOINT_FILE, last)
        raise Diverged(f"{exc}; {_diverged_hint(out, last['iteration'])}") from None
    if group.is_main:
        (out / CHECKPOINT_FILE).unlink(missing_ok=True)
    return summary


def snapshot_folder(out: Path, iteration: int) -> Path:
    """Where ``distill.snapshot_every`` writes the run as it was after ``iteration`` iterations."""
    return out / "snapshots" / f"it{iteration}"


def _write_run_folder(folder: Path | None, cfg: Config, ctx: DistillContext, method: Method, device: torch.device,
                      state: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """Write the synthetic set, the method's artefacts, ``config.yaml`` and ``distill.json`` (returned) to
    ``folder`` (None: only build the summary); ``state`` is the checkpoint state of the iteration written.
    A set with NaN or Inf coordinates raises :class:`Diverged` before anything is written."""
    synthetic = method.synthetic(cfg.eval.resolution, torch.Generator().manual_seed(cfg.seed))
    if not np.isfinite(synthetic.points).all():
        raise Diverged(f"{method.name}: the synthetic clouds have NaN or Inf coordinates after iteration "
                       f"{state['iteration']}")
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        write_text(folder / CONFIG_FILE, dump_config(cfg))
        write_synthetic_h5(folder / SYNTHETIC_FILE, synthetic, ctx.real.class_names)
        for name, payload in method.artefacts().items():
            save_checkpoint(folder / name, payload)
    summary = {
        "method": method.name,
        "cpc": cfg.distill.cpc,
        "dataset": dataset_label(cfg),
        "setting": cfg.data.setting,
        "rotator": rotator_kind(cfg),
        "iterations": fields["iterations"],
        "distill_resolution": cfg.distill.resolution,
        "eval_resolution": cfg.eval.resolution,
        "class_names": ctx.real.class_names,
        "synthetic_clouds": int(len(synthetic.labels)),
        "synthetic_parameter_bytes": method.parameter_bytes(),
        "wall_time_s": round(state["seconds"], 2),
        "peak_memory_bytes": peak_memory_bytes(device),
        "device": describe(device),
        "machine": machine(),
        "command": command(),
        "loss_curve": [round(v, 6) for v in method.losses],
        "loss_definition": "per iteration: mean over outer steps of the matching loss, divided by the number of classes",
        **method.report(),
        **{k: v for k, v in fields.items() if k != "iterations"},
    }
    if folder is not None:
        write_json(folder / SUMMARY_FILE, summary)
    return summary
