"""The lab's engine: GM and DD3D distilling side by side in the background, seen through snapshots.

Two daemon threads, no GUI imports (the viewer reads :class:`Snapshot` objects only):

- the *training* thread loads the data once, builds the ``gm`` and ``dd3d`` methods on the same
  real data and alternates their iterations (one outer iteration of the method that is behind);
  it also executes the commands that need the live methods (pause, resume, step, save a
  checkpoint, export);
- the *view* thread owns what is looked at (class, sample, DD3D resolution). After every training
  step, and at once after a selection or resolution change, it regenerates the selected DD3D cloud
  from a copy of the generator weights, takes the selected GM cloud, runs the canonicalisation
  demo (random rotation -> PCA -> the DD3D method's live rotator) and publishes a :class:`Snapshot`.
  A slider change therefore reaches the screen in the time of one small generation, not one
  training step, and also while paused.

Snapshots go through a latest-wins :class:`SnapshotChannel`: a slow consumer skips snapshots, it
never queues them. On the CPU torch runs with :data:`LAB_CPU_THREADS` thread(s) unless ``threads``
is configured, leaving a core for the window. An exception in either thread becomes a final
snapshot with state ``error`` and a one-line message; :meth:`Engine.stop` joins both threads
within a second (a running step is abandoned at its next class boundary).

The lab profile (:data:`LAB_PROFILE`) shrinks a distillation iteration so that on the built-in
config with 2 CPU cores each method completes about two iterations per second: README "The lab".
"""
from __future__ import annotations

import dataclasses
import enum
import os
import queue
import resource
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from dd3d.config import Config, dump_config, load_config, rotator_kind
from dd3d.distill.base import DistillContext, Method
from dd3d.errors import DD3DError

#: config overrides applied by ``dd3d-lab`` before the user's ``--set`` (see the module docstring)
LAB_PROFILE: tuple[str, ...] = (
    "distill.resolution=128",
    "distill.real_batch=4",
    "distill.outer_loop=1",
    "distill.inner_loop=1",
    "distill.generator.width=128",
)
#: torch threads on the CPU when the config leaves ``threads`` at 0
LAB_CPU_THREADS = 1
#: the methods shown side by side, in panel order
LAB_METHODS: tuple[str, ...] = ("gm", "dd3d")
DEFAULT_RESOLUTION = 2048
CHECKPOINT_FORMAT = "dd3d-lab/1"
_DISPLAY_SEED = 0  # noise of the displayed DD3D cloud: fixed, so only training changes it
_EMA = 0.3  # weight of the newest step in the seconds-per-iteration average


class State(str, enum.Enum):
    """Engine states as shown in the status line."""

    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    ERROR = "error"


def load_lab_config(path: str | Path, overrides: Sequence[str] = (), profile: bool = True) -> Config:
    """``path`` with :data:`LAB_PROFILE` (unless ``profile`` is False) and then ``overrides`` applied."""
    return load_config(path, [*(LAB_PROFILE if profile else ()), *overrides])


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class Cloud:
    """One cloud for display: points (N, 3) float32 and optional global part ids (N,), both read-only."""

    points: np.ndarray
    parts: np.ndarray | None = None

    @classmethod
    def of(cls, points: np.ndarray, parts: np.ndarray | None = None) -> "Cloud":
        return cls(_frozen(np.asarray(points, dtype=np.float32).reshape(-1, 3)),
                   None if parts is None else _frozen(np.asarray(parts, dtype=np.int64).reshape(-1)))

    def __len__(self) -> int:
        return len(self.points)


@dataclass(frozen=True)
class MethodView:
    """Progress of one method and its synthetic cloud for the selected class and sample."""

    name: str
    iteration: int
    losses: np.ndarray  # (iteration,) matching loss per iteration, read-only
    seconds_per_iteration: float | None
    cloud: Cloud | None


@dataclass(frozen=True)
class Snapshot:
    """Everything the lab shows at one moment; numpy arrays only, never tensors.

    ``canonical`` holds the canonicalisation stages of the selected real cloud (randomly rotated,
    PCA, rotator output) named by ``canonical_labels``. ``Cloud.parts`` carries part labels for
    segmentation configs (real clouds, GM's labels from its real initialisation, DD3D's from the
    noise partition).
    """

    seq: int
    state: State
    message: str
    device: str
    memory_bytes: int
    task: str
    class_names: tuple[str, ...]
    part_names: tuple[str, ...] | None
    class_parts: tuple[int, ...]
    selected_class: int
    selected_sample: int
    samples_in_class: int
    cpc: int
    resolution: int
    target_iterations: int
    methods: tuple[MethodView, ...]
    real: Cloud | None
    canonical: tuple[Cloud, ...]
    canonical_labels: tuple[str, ...]

    def method(self, name: str) -> MethodView | None:
        return next((m for m in self.methods if m.name == name), None)

    @property
    def iteration(self) -> int:
        """Iterations completed by every method (the smallest count)."""
        return min((m.iteration for m in self.methods), default=0)


class SnapshotChannel:
    """Latest-wins hand-over of snapshots from the engine to any number of readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._latest: Snapshot | None = None

    def publish(self, snapshot: Snapshot) -> None:
        with self._cond:
            self._latest = snapshot
            self._cond.notify_all()

    def latest(self) -> Snapshot | None:
        with self._cond:
            return self._latest

    def wait(self, timeout: float, newer_than: int = -1) -> Snapshot | None:
        """The latest snapshot with ``seq > newer_than``, waiting up to ``timeout`` s; else None."""
        with self._cond:
            self._cond.wait_for(lambda: self._latest is not None and self._latest.seq > newer_than, timeout)
            latest = self._latest
        return latest if latest is not None and latest.seq > newer_than else None

    def wait_until(self, predicate: Callable[[Snapshot], bool], timeout: float) -> Snapshot | None:
        """The first snapshot satisfying ``predicate`` within ``timeout`` s (None on timeout or error)."""
        deadline = time.monotonic() + timeout
        seen = -1
        while (left := deadline - time.monotonic()) > 0:
            snap = self.wait(left, seen)
            if snap is None:
                return None
            if predicate(snap):
                return snap
            if snap.state in (State.ERROR, State.STOPPED):
                return None
            seen = snap.seq
        return None


def memory_bytes() -> int:
    """Resident memory of this process (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def one_line(exc: BaseException) -> str:
    """A one-line description of ``exc``: the message of user errors, else ``Type: message``."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, DD3DError) else f"{type(exc).__name__}: {text}".rstrip(": ")


class _Cancelled(Exception):
    """Raised inside a training step when the engine is stopping."""


class _CancellableContext(DistillContext):
    """A distillation context whose real batches raise :class:`_Cancelled` once stopping is set,
    so a running step ends at its next class boundary instead of running to completion."""

    stopping: threading.Event

    def real_batch(self, c: int, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.stopping.is_set():
            raise _Cancelled
        return super().real_batch(c, n)


def _cancellable(ctx: DistillContext, stopping: threading.Event) -> _CancellableContext:
    out = _CancellableContext(**{f.name: getattr(ctx, f.name) for f in dataclasses.fields(ctx) if f.init})
    out.stopping = stopping
    return out


@dataclass(frozen=True)
class _Progress:
    """What the training thread hands to the view thread after every step (copies, not live tensors)."""

    state: State
    message: str
    iterations: tuple[int, ...]
    losses: tuple[np.ndarray, ...]
    seconds: tuple[float | None, ...]
    gm_points: torch.Tensor | None  # (K·cpc, P, 3) copy
    gm_parts: torch.Tensor | None  # (K·cpc, P) part labels (segmentation; fixed while training)
    partition: Any  # dd3d's NoisePartition (segmentation; fixed) or None
    generator: dict[str, torch.Tensor] | None  # dd3d generator weights (copy)
    rotator: dict[str, torch.Tensor] | None  # dd3d rotator weights (copy)


@dataclass(frozen=True)
class _Data:
    """What both threads share read-only after set-up."""

    ctx: DistillContext
    device: str
    methods: tuple[str, ...]


class Engine:
    """GM and DD3D distilling on the same real data, plus the rotator demo, behind commands.

    Args:
        cfg: the run configuration (e.g. from :func:`load_lab_config`).
        resolution: points of the displayed (and exported) DD3D clouds.
        autosave: if set, a checkpoint is written there every ``distill.checkpoint_every``
            iterations while the losses are finite (the last good state after a divergence).
        resume: a checkpoint written by :meth:`save_checkpoint` to continue from.
        pause_at: pause once every method has completed this many iterations (default
            ``distill.iterations``; 0 starts paused); play continues past it.
    """

    def __init__(self, cfg: Config, resolution: int = DEFAULT_RESOLUTION, autosave: Path | None = None,
                 resume: Path | None = None, pause_at: int | None = None) -> None:
        if resolution < 1:
            raise DD3DError(f"resolution: got {resolution}, expected an integer >= 1")
        self.cfg = cfg
        self.snapshots = SnapshotChannel()
        self._resolution = resolution
        self._autosave, self._resume = autosave, resume
        self._pause_at = cfg.distill.iterations if pause_at is None else pause_at
        self._commands: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._view_events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stopping = threading.Event()
        self._seq = 0
        self._seq_lock = threading.Lock()
        self._train_thread = threading.Thread(target=self._train_main, name="dd3d-engine", daemon=True)
        self._view_thread = threading.Thread(target=self._view_main, name="dd3d-engine-view", daemon=True)

    # ----------------------------------------------------------------------------------- commands

    def start(self) -> "Engine":
        self._train_thread.start()
        self._view_thread.start()
        return self

    def pause(self) -> None:
        self._commands.put(("pause", None))

    def resume(self) -> None:
        self._commands.put(("resume", None))

    def step(self) -> None:
        """One more iteration of every method (while paused)."""
        self._commands.put(("step", None))

    def set_resolution(self, points: int) -> None:
        """Points of the DD3D clouds from the next snapshot on (GM keeps its trained size)."""
        if points < 1:
            raise DD3DError(f"resolution: got {points}, expected an integer >= 1")
        self._resolution = int(points)
        self._view_events.put(("resolution", int(points)))

    def select(self, class_index: int, sample: int = 0) -> None:
        """Show class ``class_index`` and its ``sample``-th real cloud (synthetic: sample mod cpc)."""
        self._view_events.put(("select", (int(class_index), int(sample))))

    def save_checkpoint(self, path: str | Path) -> "Future[Path]":
        """Write the methods' state to ``path`` (atomically); the future resolves to the path."""
        return self._request("save", Path(path))

    def export(self, path: str | Path) -> "Future[Path]":
        """Write the current DD3D set at the current resolution as ``synthetic.h5`` layout (atomically)."""
        return self._request("export", Path(path))

    def stop(self, timeout: float = 1.0) -> bool:
        """Stop both threads; True if they ended within ``timeout`` seconds."""
        self._stopping.set()
        self._commands.put(("stop", None))
        self._view_events.put(("stop", None))
        deadline = time.monotonic() + timeout
        for thread in (self._train_thread, self._view_thread):
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        return not (self._train_thread.is_alive() or self._view_thread.is_alive())

    @property
    def resolution(self) -> int:
        return self._resolution

    def _request(self, name: str, path: Path) -> "Future[Path]":
        future: Future[Path] = Future()
        self._commands.put((name, (path, future)))
        return future

    # ----------------------------------------------------------------------------- training thread

    def _train_main(self) -> None:
        try:
            data = self._set_up()
            self._view_events.put(("data", data))
            methods = self._build_methods(data)
            self._train_loop(data, methods)
        except _Cancelled:
            pass
        except Exception as exc:  # noqa: BLE001 - every failure must reach the UI, never hang it
            self._view_events.put(("progress", self._failed(exc)))
        finally:
            self._stopping.set()
            self._view_events.put(("stop", None))
            self._fail_pending_requests()

    def _set_up(self) -> _Data:
        from dd3d.device import describe, resolve_device
        from dd3d.distill.run import build_context

        cfg = self.cfg
        device = resolve_device(cfg.device, cfg.threads)
        if device.type == "cpu" and cfg.threads == 0:
            torch.set_num_threads(LAB_CPU_THREADS)
        ctx = _cancellable(build_context(cfg, device), self._stopping)
        return _Data(ctx, describe(device), LAB_METHODS)

    def _build_methods(self, data: _Data) -> dict[str, Method]:
        from dd3d.distill import build_method
        from dd3d.io import load_checkpoint

        torch.manual_seed(self.cfg.seed)
        methods = {name: build_method(name, data.ctx) for name in data.methods}
        if self._resume is not None:
            state = load_checkpoint(self._resume, what="lab checkpoint")
            if state.get("format") != CHECKPOINT_FORMAT or set(state.get("methods", {})) != set(methods):
                raise DD3DError(f"{self._resume}: not a dd3d-lab checkpoint of methods {', '.join(methods)}")
            try:
                for name, method in methods.items():
                    method.load_state_dict(state["methods"][name])
            except (RuntimeError, KeyError, ValueError):
                raise DD3DError(f"{self._resume}: checkpoint does not match this config "
                                "(different dataset, cpc or generator size?)") from None
            data.ctx.rng.set_state(state["rng"])
        return methods

    def _train_loop(self, data: _Data, methods: dict[str, Method]) -> None:
        running, budget, message = self._pause_at > 0, 0, ""
        seconds: dict[str, float | None] = {name: None for name in methods}
        state = State.RUNNING if running else State.PAUSED
        self._publish_progress(state, message, methods, seconds)
        target, last = self._pause_at, list(methods)[-1]
        while True:
            block = not (running or budget)
            for name, arg in self._drain(self._commands, block):
                if name == "stop":
                    return
                if name in ("pause", "resume"):
                    running = name == "resume"
                elif name == "step":
                    budget += len(methods)
                else:
                    message = self._file_request(name, arg, data, methods)
                state = State.RUNNING if running else State.PAUSED
                self._publish_progress(state, message, methods, seconds)
            if not (running or budget) or self._stopping.is_set():
                continue
            name = min(methods, key=lambda n: len(methods[n].losses))
            began = time.perf_counter()
            loss = methods[name].step(len(methods[name].losses))
            took = time.perf_counter() - began
            seconds[name] = took if seconds[name] is None else _EMA * took + (1 - _EMA) * seconds[name]
            budget = max(0, budget - 1)
            if not np.isfinite(loss):
                raise DD3DError(f"{name}: matching loss is not finite at iteration {len(methods[name].losses)} "
                                f"(diverged){self._autosave_hint()}")
            iteration = min(len(m.losses) for m in methods.values())
            if self._autosave is not None and name == last and iteration % self.cfg.distill.checkpoint_every == 0:
                self._save(self._autosave, data, methods)
            if running and iteration == target and name == last:
                running, message = False, f"paused at iteration {target}; press play to continue"
            state = State.RUNNING if running else State.PAUSED
            self._publish_progress(state, message, methods, seconds)

    @staticmethod
    def _drain(commands: "queue.Queue[tuple[str, Any]]", block: bool) -> list[tuple[str, Any]]:
        """Everything queued; when ``block``, wait (in short slices) for at least one item."""
        items = []
        if block:
            try:
                items.append(commands.get(timeout=0.2))
            except queue.Empty:
                return items
        while True:
            try:
                items.append(commands.get_nowait())
            except queue.Empty:
                return items

    def _file_request(self, name: str, arg: tuple[Path, "Future[Path]"], data: _Data,
                      methods: dict[str, Method]) -> str:
        """Run a save/export request; the future gets the path or the error. Returns a status message."""
        path, future = arg
        try:
            if name == "save":
                self._save(path, data, methods)
                text = f"checkpoint saved to {path}"
            else:
                text = self._export(path, data, methods["dd3d"])
        except Exception as exc:  # noqa: BLE001 - reported to the caller, the engine keeps running
            future.set_exception(exc)
            return f"{name} failed: {one_line(exc)}"
        future.set_result(path)
        return text

    def _save(self, path: Path, data: _Data, methods: dict[str, Method]) -> None:
        from dd3d.io import save_checkpoint

        save_checkpoint(path, {"format": CHECKPOINT_FORMAT, "config": dump_config(self.cfg),
                               "methods": {n: m.state_dict() for n, m in methods.items()},
                               "rng": data.ctx.rng.get_state()})

    def _export(self, path: Path, data: _Data, method: Method) -> str:
        from dd3d.synthetic import write_synthetic_h5

        points = self._resolution
        synthetic = method.synthetic(points, torch.Generator().manual_seed(self.cfg.seed))
        write_synthetic_h5(path, synthetic, data.ctx.real.class_names)
        return f"exported {len(synthetic.labels)} DD3D clouds x {points} points to {path}"

    def _autosave_hint(self) -> str:
        if self._autosave is not None and self._autosave.is_file():
            return f"; last good checkpoint: {self._autosave}"
        return ""

    def _publish_progress(self, state: State, message: str, methods: dict[str, Method],
                          seconds: dict[str, float | None]) -> None:
        gm, dd3d = methods.get("gm"), methods.get("dd3d")
        with torch.no_grad():
            progress = _Progress(
                state=state, message=message,
                iterations=tuple(len(m.losses) for m in methods.values()),
                losses=tuple(_frozen(np.array(m.losses, dtype=np.float64)) for m in methods.values()),
                seconds=tuple(seconds[n] for n in methods),
                gm_points=None if gm is None else gm.points.detach().to("cpu", copy=True),
                gm_parts=None if gm is None or gm.parts is None else gm.parts.to("cpu", copy=True),
                partition=None if dd3d is None else dd3d.partition,
                generator=None if dd3d is None else _cpu_copy(dd3d.generator.state_dict()),
                rotator=None if dd3d is None else _cpu_copy(dd3d.rotator.state_dict()),
            )
        self._view_events.put(("progress", progress))

    def _failed(self, exc: BaseException) -> _Progress:
        return _Progress(State.ERROR, one_line(exc), (), (), (), None, None, None, None, None)

    def _fail_pending_requests(self) -> None:
        for name, arg in self._drain(self._commands, block=False):
            if name in ("save", "export"):
                arg[1].set_exception(DD3DError(f"cannot {name}: the engine has stopped"))

    # --------------------------------------------------------------------------------- view thread

    def _view_main(self) -> None:
        view = _ViewState(self.cfg, self._resolution)
        try:
            self.snapshots.publish(view.snapshot(self._next_seq(), final=False))
            while True:
                events = self._drain(self._view_events, block=True)
                if not events:
                    continue
                done = False
                for name, arg in events:
                    if name == "stop":
                        done = True
                    else:
                        view.apply(name, arg)
                self.snapshots.publish(view.snapshot(self._next_seq(), final=done))
                if done:
                    return
        except Exception as exc:  # noqa: BLE001 - reported as a final error snapshot
            self._stopping.set()
            self._commands.put(("stop", None))
            view.apply("progress", self._failed(exc))
            view.data = None  # the plainest snapshot: state and message only
            self.snapshots.publish(view.snapshot(self._next_seq(), final=True))

    def _next_seq(self) -> int:
        with self._seq_lock:
            self._seq += 1
            return self._seq


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


class _ViewState:
    """The view thread's state: selection, resolution, the last progress, and cached clouds."""

    def __init__(self, cfg: Config, resolution: int) -> None:
        self.cfg = cfg
        self.resolution = resolution
        self.selection = (0, 0)
        self.data: _Data | None = None
        self.progress: _Progress | None = None
        self._generator: torch.nn.Module | None = None
        self._rotator: torch.nn.Module | None = None
        self._rotator_label = ""
        # caches keyed by what the cloud depends on, so an unchanged cloud is the same object
        self._real: tuple[Any, Cloud] | None = None
        self._canonical: tuple[Any, tuple[Cloud, ...]] | None = None
        self._synthetic: dict[str, tuple[Any, Cloud]] = {}

    def apply(self, name: str, arg: Any) -> None:
        if name == "resolution":
            self.resolution = arg
        elif name == "select":
            self.selection = arg
        elif name == "data":
            self.data = arg
            self._build_modules(arg)
        elif name == "progress":
            if arg.state == State.ERROR and self.progress is not None:  # keep the last progress on screen
                arg = dataclasses.replace(self.progress, state=State.ERROR, message=arg.message)
            self.progress = arg
            if arg.generator is not None and self._generator is not None:
                self._generator.load_state_dict(arg.generator)
            if arg.rotator is not None and self._rotator is not None and self._rotator_is_live():
                self._rotator.load_state_dict(arg.rotator)

    def _rotator_is_live(self) -> bool:
        return rotator_kind(self.cfg) == "learned"

    def _build_modules(self, data: _Data) -> None:
        from dd3d.distill.dd3d import build_generator
        from dd3d.nn.rotator import Rotator

        cfg, ctx = self.cfg, data.ctx
        if "dd3d" in data.methods:
            g = cfg.distill.generator
            self._generator = build_generator(ctx.num_classes, ctx.cpc, g.width, g.layers, g.omega0).eval()
        kind = rotator_kind(cfg)
        shown = kind if kind in ("fixed", "learned") else "fixed"  # aligned data: show the parameter-free sign fix
        self._rotator = Rotator(shown, cfg.model.rotator.fourier, cfg.model.rotator.omega).eval()
        self._rotator_label = {"learned": "rotator (learned, live)", "fixed": "rotator (fixed sign)"}.get(
            kind, "sign fix (aligned data: no rotator trained)")

    # ------------------------------------------------------------------------------- building

    def _selected(self) -> tuple[int, int, int]:
        """(class, real index in the training split, sample within the class) after clamping."""
        ctx = self.data.ctx
        c = min(max(self.selection[0], 0), ctx.num_classes - 1)
        pool = ctx.by_class[c]
        sample = min(max(self.selection[1], 0), len(pool) - 1)
        return c, int(pool[sample]), sample

    def _real_cloud(self, c: int, index: int, sample: int) -> Cloud:
        if self._real is None or self._real[0] != (c, sample):
            real = self.data.ctx.real_full
            parts = real.parts[index] if self.cfg.task == "segmentation" and real.parts is not None else None
            self._real = ((c, sample), Cloud.of(real.points[index], parts))
        return self._real[1]

    @torch.no_grad()
    def _canonical_clouds(self, c: int, sample: int, real: Cloud) -> tuple[Cloud, ...]:
        from dd3d.data.transforms import random_rotations, rotate

        key = (c, sample, self._iteration("dd3d") if self._rotator_is_live() else 0)
        if self._canonical is None or self._canonical[0] != key:
            turn = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + c * 10_007 + sample)
            points = torch.from_numpy(np.array(real.points))[None]
            raw = rotate(points, random_rotations(1, turn))
            stages = (raw, self._rotator.align(raw), self._rotator(raw))
            self._canonical = (key, tuple(Cloud.of(s[0].numpy(), real.parts) for s in stages))
        return self._canonical[1]

    def _iteration(self, name: str) -> int:
        p = self.progress
        if p is None or name not in self.data.methods or not p.iterations:
            return 0
        return p.iterations[self.data.methods.index(name)]

    @torch.no_grad()
    def _synthetic_cloud(self, name: str, row: int) -> Cloud | None:
        """The selected synthetic cloud of ``name`` (GM: as trained; DD3D: regenerated at the resolution)."""
        from dd3d.data.transforms import normalize_unit_sphere
        from dd3d.nn.partition import generate_labelled

        p = self.progress
        key = (self._iteration(name), row, self.resolution if name == "dd3d" else 0)
        cached = self._synthetic.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        if name == "gm" and p.gm_points is not None:
            points, parts = p.gm_points[row:row + 1], None if p.gm_parts is None else p.gm_parts[row]
        elif name == "dd3d" and self._generator is not None:
            points, parts = generate_labelled(self._generator, p.partition, torch.tensor([row]), self.data.ctx.cpc,
                                              self.resolution, torch.Generator().manual_seed(_DISPLAY_SEED))
            parts = None if parts is None else parts[0]
        else:
            return None
        cloud = Cloud.of(normalize_unit_sphere(points)[0].numpy(), None if parts is None else parts.numpy())
        self._synthetic[name] = (key, cloud)
        return cloud

    def _method_views(self, c: int, sample: int) -> tuple[MethodView, ...]:
        p, ctx = self.progress, self.data.ctx
        row = c * ctx.cpc + sample % ctx.cpc
        return tuple(MethodView(name, p.iterations[i], p.losses[i], p.seconds[i], self._synthetic_cloud(name, row))
                     for i, name in enumerate(self.data.methods))

    def snapshot(self, seq: int, final: bool) -> Snapshot:
        p = self.progress
        state = p.state if p is not None else State.STARTING
        if final and state != State.ERROR:
            state = State.STOPPED
        message = p.message if p is not None else ""
        if self.data is None:  # failed while loading: nothing to show but the message
            return Snapshot(seq, state, message, "", memory_bytes(), self.cfg.task, (), None, (), 0, 0, 0,
                            self.cfg.distill.cpc, self.resolution, self.cfg.distill.iterations, (), None, (), ())
        ctx = self.data.ctx
        real_set = ctx.real_full
        c, index, sample = self._selected()
        real = self._real_cloud(c, index, sample)
        methods = self._method_views(c, sample) if p is not None and p.iterations else ()
        is_seg = self.cfg.task == "segmentation"
        class_parts = tuple(real_set.category_parts.get(c, ())) if is_seg and real_set.category_parts else ()
        return Snapshot(
            seq=seq, state=state, message=message, device=self.data.device, memory_bytes=memory_bytes(),
            task=self.cfg.task, class_names=tuple(real_set.class_names),
            part_names=tuple(real_set.part_names) if is_seg and real_set.part_names else None,
            class_parts=class_parts, selected_class=c, selected_sample=sample,
            samples_in_class=len(ctx.by_class[c]), cpc=ctx.cpc, resolution=self.resolution,
            target_iterations=self.cfg.distill.iterations, methods=methods,
            real=real, canonical=self._canonical_clouds(c, sample, real),
            canonical_labels=("raw (random rotation)", "PCA", self._rotator_label),
        )
