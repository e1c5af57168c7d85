"""The engine's training thread: GM and DD3D distilling on the same real data, behind commands.

:class:`Trainer` loads the data once, builds the methods (:data:`~dd3d.engine.profile.LAB_METHODS`)
and alternates their iterations (one outer iteration of the method that is behind). Between
iterations it executes the queued commands that need the live methods: pause, resume, step, save a
checkpoint, export, save the methods as run folders (``runs``), and ``fail`` (:class:`InjectedFailure`, for tests and the lab soak). After every
step it hands a :class:`Progress` (copies, never live tensors) to the view thread. A running step
is abandoned at its next class boundary once the engine stops (:class:`CancellableContext`). A
failure ends this thread only: the view thread keeps showing the last progress.
"""
from __future__ import annotations

import dataclasses
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from dd3d.config import Config, dump_config
from dd3d.distill.base import DistillContext, Method
from dd3d.engine.profile import LAB_CPU_THREADS, LAB_METHODS
from dd3d.engine.snapshot import State, frozen
from dd3d.errors import DD3DError
from dd3d.previews import Preview

CHECKPOINT_FORMAT = "dd3d-lab/1"
EMA = 0.3  # weight of the newest step in the seconds-per-iteration average
POLL_S = 0.2  # longest wait for a command while idle (so stopping is noticed)

Command = tuple[str, Any]


def one_line(exc: BaseException) -> str:
    """A one-line description of ``exc``: the message of user errors, else ``Type: message``."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, DD3DError) else f"{type(exc).__name__}: {text}".rstrip(": ")


def drain(commands: "queue.Queue[Command]", block: bool) -> list[Command]:
    """Everything queued; when ``block``, wait up to :data:`POLL_S` for at least one item."""
    items = []
    if block:
        try:
            items.append(commands.get(timeout=POLL_S))
        except queue.Empty:
            return items
    while True:
        try:
            items.append(commands.get_nowait())
        except queue.Empty:
            return items


class Cancelled(Exception):
    """Raised inside a training step when the engine is stopping."""


class InjectedFailure(DD3DError):
    """Raised by the training thread on a ``fail`` command (:meth:`dd3d.engine.Engine.inject_failure`),
    so that tests and ``benchmarks/lab_soak.py`` exercise the real failure path; being a
    :class:`DD3DError`, its message is shown exactly as given (:func:`one_line`)."""


class CancellableContext(DistillContext):
    """A distillation context whose real batches raise :class:`Cancelled` once stopping is set,
    so a running step ends at its next class boundary instead of running to completion."""

    stopping: threading.Event

    def real_batch(self, c: int, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.stopping.is_set():
            raise Cancelled
        return super().real_batch(c, n)

    @classmethod
    def wrap(cls, ctx: DistillContext, stopping: threading.Event) -> "CancellableContext":
        out = cls(**{f.name: getattr(ctx, f.name) for f in dataclasses.fields(ctx) if f.init})
        out.stopping = stopping
        return out


@dataclass(frozen=True)
class SharedData:
    """What the training and view threads share read-only after set-up."""

    ctx: DistillContext
    device: str
    methods: tuple[str, ...]


@dataclass(frozen=True)
class Progress:
    """What the training thread hands to the view thread after every step (copies, not live tensors)."""

    state: State
    message: str
    iterations: tuple[int, ...]
    losses: tuple[np.ndarray, ...]
    seconds: tuple[float | None, ...]
    clouds: tuple[Preview, ...]  # each method's synthetic clouds (:meth:`Method.preview`, copies)
    rotator: dict[str, torch.Tensor] | None  # weights of the first method's trained rotator (copy), or None
    rotator_iteration: int  # iterations of the method that rotator belongs to

    @classmethod
    def failed(cls, exc: BaseException) -> "Progress":
        return cls(State.ERROR, one_line(exc), (), (), (), (), None, 0)


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


class Trainer:
    """The training thread's work (:meth:`run`); see the module docstring.

    Commands arrive through :meth:`submit` (from :class:`~dd3d.engine.Engine`).

    Args:
        cfg: the run configuration.
        emit: hands ("data", :class:`SharedData`) and ("progress", :class:`Progress`) to the view thread.
        stopping: set when the engine stops (also set here when training ends).
        resolution: the current DD3D resolution (what :meth:`Engine.export` writes).
        pause_at: pause once every method has completed this many iterations (0 starts paused).
        autosave: checkpoint written every ``distill.checkpoint_every`` iterations while finite.
        resume: a lab checkpoint to continue from.
    """

    def __init__(self, cfg: Config, emit: Callable[[str, Any], None], stopping: threading.Event,
                 resolution: Callable[[], int], pause_at: int, autosave: Path | None, resume: Path | None) -> None:
        self.cfg, self.emit, self.stopping = cfg, emit, stopping
        self.resolution, self.pause_at, self.autosave, self.resume = resolution, pause_at, autosave, resume
        self.commands: queue.Queue[Command] = queue.Queue()
        self._batch: list[Command] = []  # commands taken from the queue, not yet executed
        self._closed = False  # set (under the lock) once :meth:`run` no longer reads commands
        self._lock = threading.Lock()

    def submit(self, command: Command) -> None:
        """Queue ``command``; once the thread has ended, a save/export request fails at once."""
        with self._lock:
            if not self._closed:
                self.commands.put(command)
                return
        _refuse(command)

    def run(self) -> None:
        try:
            data = self._set_up()
            self.emit("data", data)
            self._loop(data, self._build_methods(data))
        except Cancelled:
            pass
        except Exception as exc:  # noqa: BLE001 - every failure must reach the UI, never hang it
            self.emit("progress", Progress.failed(exc))
        finally:
            self.stopping.set()
            with self._lock:
                self._closed = True
            for command in [*self._batch, *drain(self.commands, block=False)]:
                _refuse(command)

    def _set_up(self) -> SharedData:
        from dd3d.device import describe, resolve_device
        from dd3d.distill.run import build_context

        cfg = self.cfg
        device = resolve_device(cfg.device, cfg.threads)
        if device.type == "cpu" and cfg.threads == 0:
            torch.set_num_threads(LAB_CPU_THREADS)
        ctx = CancellableContext.wrap(build_context(cfg, device), self.stopping)
        return SharedData(ctx, describe(device), LAB_METHODS)

    def _build_methods(self, data: SharedData) -> dict[str, Method]:
        from dd3d.distill import build_method
        from dd3d.io import load_checkpoint

        torch.manual_seed(self.cfg.seed)
        if self.resume is None:
            return {name: build_method(name, data.ctx) for name in data.methods}
        state = load_checkpoint(self.resume, what="lab checkpoint")
        if state.get("format") != CHECKPOINT_FORMAT or set(state.get("methods", {})) != set(data.methods):
            raise DD3DError(f"{self.resume}: not a dd3d-lab checkpoint of methods {', '.join(data.methods)}")
        try:
            methods = {name: build_method(name, data.ctx, state["methods"][name]) for name in data.methods}
        except (RuntimeError, KeyError, ValueError):
            raise DD3DError(f"{self.resume}: checkpoint does not match this config "
                            "(different dataset, cpc or generator size?)") from None
        data.ctx.rng.set_state(state["rng"])
        return methods

    def _loop(self, data: SharedData, methods: dict[str, Method]) -> None:
        running, budget, message = self.pause_at > 0, 0, ""
        seconds: dict[str, float | None] = {name: None for name in methods}
        self._publish(State.RUNNING if running else State.PAUSED, message, methods, seconds)
        target, last = self.pause_at, list(methods)[-1]
        while True:
            self._batch = drain(self.commands, block=not (running or budget))
            while self._batch:
                name, arg = self._batch.pop(0)
                if name == "stop":
                    return
                if name in ("pause", "resume"):
                    running = name == "resume"
                elif name == "step":
                    budget += len(methods)
                elif name == "fail":
                    raise InjectedFailure(arg)
                else:
                    message = self._file_request(name, arg, data, methods)
                self._publish(State.RUNNING if running else State.PAUSED, message, methods, seconds)
            if not (running or budget) or self.stopping.is_set():
                continue
            name = min(methods, key=lambda n: len(methods[n].losses))
            began = time.perf_counter()
            loss = methods[name].step(len(methods[name].losses))
            took = time.perf_counter() - began
            seconds[name] = took if seconds[name] is None else EMA * took + (1 - EMA) * seconds[name]
            budget = max(0, budget - 1)
            if not np.isfinite(loss):
                raise DD3DError(f"{name}: matching loss is not finite at iteration {len(methods[name].losses)} "
                                f"(diverged){self._autosave_hint()}")
            iteration = min(len(m.losses) for m in methods.values())
            if self.autosave is not None and name == last and iteration % self.cfg.distill.checkpoint_every == 0:
                self._save(self.autosave, data, methods)
            if running and iteration == target and name == last:
                running, message = False, f"paused at iteration {target}; press play to continue"
            self._publish(State.RUNNING if running else State.PAUSED, message, methods, seconds)

    def _file_request(self, name: str, arg: tuple[Path, "Future[Path]"], data: SharedData,
                      methods: dict[str, Method]) -> str:
        """Run a save/export request; the future gets the path or the error. Returns a status message."""
        path, future = arg
        try:
            if name == "save":
                self._save(path, data, methods)
                text = f"checkpoint saved to {path}"
            elif name == "runs":
                text = self._save_runs(path, data, methods)
            else:  # the first method drawn at any resolution (DD3D), else the last one
                shown = [m for m in methods.values() if m.regenerates] or list(methods.values())[-1:]
                text = self._export(path, data, shown[0])
        except Exception as exc:  # noqa: BLE001 - reported to the caller, the engine keeps running
            future.set_exception(exc)
            return f"{name} failed: {one_line(exc)}"
        future.set_result(path)
        return text

    def _save(self, path: Path, data: SharedData, methods: dict[str, Method]) -> None:
        from dd3d.io import save_checkpoint

        save_checkpoint(path, {"format": CHECKPOINT_FORMAT, "config": dump_config(self.cfg),
                               "methods": {n: m.state_dict() for n, m in methods.items()},
                               "rng": data.ctx.rng.get_state()})

    def _export(self, path: Path, data: SharedData, method: Method) -> str:
        from dd3d.synthetic import write_synthetic_h5

        points = self.resolution()
        synthetic = method.synthetic(points, torch.Generator().manual_seed(self.cfg.seed))
        write_synthetic_h5(path, synthetic, data.ctx.real.class_names)
        return f"exported {len(synthetic.labels)} {method.name.upper()} clouds x {points} points to {path}"

    def _save_runs(self, folder: Path, data: SharedData, methods: dict[str, Method]) -> str:
        """Write every method as a ``dd3d distill`` run folder ``folder/<method>`` (``config.yaml``,
        ``synthetic.h5`` at ``eval.resolution``, ``distill.json``, for DD3D ``generator.pt``), so that
        ``dd3d-render`` and ``dd3d-lab --run`` open what the lab distilled."""
        from dd3d.config import dataset_label
        from dd3d.distill.run import CONFIG_FILE, SUMMARY_FILE
        from dd3d.io import save_checkpoint, write_json, write_text
        from dd3d.provenance import command
        from dd3d.synthetic import SYNTHETIC_FILE, write_synthetic_h5

        cfg, ctx = self.cfg, data.ctx
        for name, method in methods.items():
            out = folder / name
            write_text(out / CONFIG_FILE, dump_config(cfg))
            synthetic = method.synthetic(cfg.eval.resolution, torch.Generator().manual_seed(cfg.seed))
            write_synthetic_h5(out / SYNTHETIC_FILE, synthetic, ctx.real.class_names)
            for file, payload in method.artefacts().items():
                save_checkpoint(out / file, payload)
            write_json(out / SUMMARY_FILE, {
                "method": name, "cpc": cfg.distill.cpc, "dataset": dataset_label(cfg), "setting": cfg.data.setting,
                "iterations": len(method.losses), "class_names": list(ctx.real.class_names),
                "synthetic_clouds": int(len(synthetic.labels)), "loss_curve": [round(v, 6) for v in method.losses],
                "command": command(), "source": "dd3d-lab (lab profile run, saved with --save-runs)",
            })
        return f"saved {', '.join(methods)} as run folders in {folder}"

    def _autosave_hint(self) -> str:
        if self.autosave is not None and self.autosave.is_file():
            return f"; last good checkpoint: {self.autosave}"
        return ""

    def _publish(self, state: State, message: str, methods: dict[str, Method],
                 seconds: dict[str, float | None]) -> None:
        rotators = [(len(m.losses), r) for m in methods.values() if (r := m.trained_rotator()) is not None]
        with torch.no_grad():
            progress = Progress(
                state=state, message=message,
                iterations=tuple(len(m.losses) for m in methods.values()),
                losses=tuple(frozen(np.array(m.losses, dtype=np.float64)) for m in methods.values()),
                seconds=tuple(seconds[n] for n in methods),
                clouds=tuple(m.preview() for m in methods.values()),
                rotator=_cpu_copy(rotators[0][1].state_dict()) if rotators else None,
                rotator_iteration=rotators[0][0] if rotators else 0,
            )
        self.emit("progress", progress)


def _refuse(command: Command) -> None:
    """Fail a save/export request that the ended training thread will never run (others are dropped)."""
    name, arg = command
    if name in ("save", "export", "runs"):
        arg[1].set_exception(DD3DError(f"cannot {name}: the engine has stopped"))
