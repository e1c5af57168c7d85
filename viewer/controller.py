"""Controller: engine snapshots in, view models out, user actions back to the engine.

It works with any engine (:class:`~dd3d.engine.Engine` training GM and DD3D, or
:class:`~dd3d.engine.RunEngine` showing run folders). It owns one thread that waits for snapshots, turns each into a :class:`ViewModel` (colours, titles,
status text, the loss-curve image) off the main thread, and hands it to the window through
``post`` (``gui.Application.post_to_main_thread``), so the main thread only uploads finished
arrays. Only one view model is in flight at a time: while the window is still applying one, newer
snapshots replace each other (latest wins), so a slow frame never builds up a queue. Nothing here
touches a widget; this module does not import Open3D's ``gui``.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from dd3d.engine import Cloud, Engine, MethodView, Mode, RunEngine, Snapshot, State
from viewer.lossplot import LossPlot, loss_caption, method_curves
from dd3d.palette import cloud_colors, legend
from viewer.upright import upright

#: default seconds between view updates driven by training alone; a change of resolution, class or
#: sample is shown at once. Every update costs a redraw, which on a CPU-only machine competes with training.
MIN_VIEW_INTERVAL = 0.25
PANELS = ("Real", "GM", "DD3D")


@dataclass(frozen=True)
class PanelView:
    """One cloud to show: ``cloud`` identity tells the window whether anything changed; ``points``
    are its points as drawn (the top panels in the view frame, :mod:`viewer.upright`)."""

    title: str
    cloud: Cloud | None
    colors: np.ndarray | None
    points: np.ndarray | None = None


@dataclass(frozen=True)
class ViewModel:
    """Everything the window applies for one snapshot."""

    snapshot: Snapshot
    panels: tuple[PanelView, ...]  # Real | GM | DD3D, or Real | one per run
    canonical: tuple[PanelView, ...]  # raw rotated, PCA, rotator
    canonical_title: str
    loss_image: np.ndarray | None  # (H, W, 3) uint8, None = unchanged
    loss_title: str
    legend: tuple[tuple[str, tuple[float, ...]], ...]
    status: str
    message: str
    is_error: bool
    running: bool
    can_train: bool  # play, step and save checkpoint apply (the lab's own training, not failed)
    can_export: bool


def format_bytes(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n < 2**30 else f"{n / 2**30:.2f} GB"


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s`` or ``2 h 07 min``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _watch_parts(snap: Snapshot) -> list[str]:
    """Iteration / total, pace, ETA and the age of the shown checkpoint of a watched run."""
    m = snap.methods[0]
    parts = [f"it {m.iteration}/{snap.target_iterations}"]
    if m.seconds_per_iteration is not None:
        parts.append(f"{m.seconds_per_iteration:.2f} s/it")
    if snap.eta_seconds is not None:
        parts.append(f"ETA {format_duration(snap.eta_seconds)}")
    if snap.updated_at is not None and snap.state != State.FINISHED:
        parts.append(f"checkpoint {format_duration(max(0.0, time.time() - snap.updated_at))} ago")
    return parts


def status_line(snap: Snapshot) -> str:
    """Iteration, speed, device and memory, e.g. ``running · it 12/400 · 1.6 it/s (0.31 s/it gm, ...)``;
    for run folders ``finished · 2 runs · ...``, for a watched run ``running · it 37/400 · 0.52 s/it ·
    ETA 3 min 12 s · checkpoint 4 s ago · ...``."""
    parts = [snap.state.value]
    if snap.mode == Mode.RUNS:
        parts.append(f"{len(snap.methods)} run{'s' if len(snap.methods) != 1 else ''}")
    elif snap.mode == Mode.WATCH:
        parts += _watch_parts(snap) if snap.methods else []
    elif snap.methods:
        parts.append(f"it {snap.iteration}/{snap.target_iterations}")
        seconds = [m.seconds_per_iteration for m in snap.methods]
        if all(s is not None for s in seconds):
            per_pair = sum(seconds)
            parts.append(f"{1 / per_pair:.2f} it/s" if per_pair < 1 else f"{per_pair:.1f} s/it")
            parts.append(", ".join(f"{m.name} {s:.2f} s" for m, s in zip(snap.methods, seconds)))
    if snap.device:
        parts.append(snap.device)
    parts.append(f"RSS {format_bytes(snap.memory_bytes)}")
    return " · ".join(parts)


def run_title(m: MethodView, snap: Snapshot) -> str:
    """A run panel's title: method, cpc, iterations and points, e.g. ``DD3D · cpc 10 · 400 it · 2048 pts (regenerated)``."""
    iterations = f"it {m.iteration}/{snap.target_iterations}" if snap.mode == Mode.WATCH else f"{m.iteration} it"
    size = f"{len(m.cloud)} pts ({'regenerated' if m.regenerated else 'as stored'})" if m.cloud is not None else "no cloud"
    return f"{m.label or m.name.upper()} · cpc {m.cpc} · {iterations} · {size}"


class ViewBuilder:
    """Turns snapshots into view models, reusing colours of unchanged clouds; ``panels`` names the
    window's panels (Real first). Clouds are coloured by height along the snapshot's up axis (the
    dataset's) and the top panels are shown turned so that it points up."""

    def __init__(self, panels: Sequence[str] = PANELS) -> None:
        self.panels = tuple(panels)
        self._colors: dict[int, tuple[Cloud, str, np.ndarray, np.ndarray]] = {}
        self._plot_key: tuple[int, ...] | None = None
        self._loss_plot: LossPlot | None = None  # made on first use (matplotlib figure)

    def _colored(self, slot: int, title: str, cloud: Cloud | None, class_parts: tuple[int, ...], up_axis: str,
                 color_source: Cloud | None = None) -> PanelView:
        if cloud is None:
            return PanelView(title, None, None)
        cached = self._colors.get(slot)
        if cached is None or cached[0] is not cloud or cached[1] != up_axis:
            source = color_source or cloud
            colors = cloud_colors(upright(source.points, up_axis), source.parts, class_parts)
            # the canonicalisation stages (coloured like the real cloud) are in rotated/PCA frames: shown as they are
            cached = (cloud, up_axis, colors, cloud.points if color_source else upright(cloud.points, up_axis))
            self._colors[slot] = cached
        return PanelView(title, cloud, cached[2], cached[3])

    def loss_stale(self, snap: Snapshot) -> bool:
        """Whether ``snap`` has iterations the last loss-curve image does not show."""
        return bool(snap.methods) and tuple(m.iteration for m in snap.methods) != self._plot_key

    def _loss_image(self, snap: Snapshot) -> np.ndarray | None:
        """A new loss-curve image when an iteration was added since the last one, else None."""
        if not self.loss_stale(snap):
            return None
        self._plot_key = tuple(m.iteration for m in snap.methods)
        self._loss_plot = self._loss_plot or LossPlot()
        return self._loss_plot.image(method_curves([(m.name, m.losses) for m in snap.methods]))

    def _synthetic_titles(self, snap: Snapshot) -> tuple[list[str], list[Cloud | None]]:
        titles, clouds = [], []
        for i, label in enumerate(self.panels[1:]):
            if snap.mode == Mode.LAB:
                m = snap.method(label.lower())
            else:
                m = snap.methods[i] if i < len(snap.methods) else None
            if m is None or (m.cloud is None and snap.mode == Mode.LAB):
                wait = "the first iteration" if snap.mode == Mode.LAB else "the first checkpoint"
                titles.append(f"{label} · waiting for {wait}")
            elif snap.mode != Mode.LAB:
                titles.append(run_title(m, snap))
            else:
                size = "fixed size" if label == "GM" else "regenerated"
                titles.append(f"{label} · it {m.iteration} · {len(m.cloud)} pts ({size})")
            clouds.append(None if m is None else m.cloud)
        return titles, clouds

    def build(self, snap: Snapshot, draw_loss: bool = True) -> ViewModel:
        """The view model of ``snap``; ``draw_loss`` False leaves the loss-curve image as it is (drawing
        it takes longer than the clouds, so user-driven updates skip it and it follows soon after)."""
        parts = snap.class_parts
        name = snap.class_names[snap.selected_class] if snap.class_names else ""
        real = snap.real
        titles, clouds = self._synthetic_titles(snap)
        titles = [f"Real · {name} #{snap.selected_sample} · {len(real) if real else 0} pts", *titles]
        clouds = [real, *clouds]
        panels = tuple(self._colored(i, t, c, parts, snap.up_axis) for i, (t, c) in enumerate(zip(titles, clouds)))
        canonical = tuple(self._colored(len(self.panels) + i, label, c, parts, snap.up_axis, color_source=real)
                          for i, (label, c) in enumerate(zip(snap.canonical_labels, snap.canonical)))
        return ViewModel(
            snapshot=snap, panels=panels, canonical=canonical,
            canonical_title="Canonicalisation: " + "  ->  ".join(snap.canonical_labels),
            loss_image=self._loss_image(snap) if draw_loss else None,
            loss_title=loss_caption([m.name for m in snap.methods], [m.losses for m in snap.methods]),
            legend=tuple(legend(snap.part_names, parts)) if snap.part_names else (),
            status=status_line(snap), message=snap.message, is_error=snap.state == State.ERROR,
            running=snap.state == State.RUNNING,
            can_train=snap.mode == Mode.LAB and bool(snap.methods) and snap.state != State.ERROR,
            can_export=any(m.cloud is not None for m in snap.methods) and (snap.mode != Mode.LAB or
                                                                          snap.state != State.ERROR),
        )


class Controller:
    """Wires an :class:`Engine` to a window; see the module docstring.

    Args:
        engine: the engine (started by the caller); play, step and save checkpoint need an :class:`Engine`.
        post: runs a callable on the GUI main thread (``post_to_main_thread`` bound to the window).
        apply: the window's ``apply(view_model)``; always called on the main thread.
        show_message: shows a one-line message on the main thread (results of exports and saves).
        min_interval: seconds between view updates driven by training alone.
    """

    def __init__(self, engine: Engine | RunEngine, post: Callable[[Callable[[], None]], None],
                 apply: Callable[[ViewModel], None], show_message: Callable[[str, bool], None],
                 min_interval: float = MIN_VIEW_INTERVAL, panels: Sequence[str] = PANELS) -> None:
        self.engine = engine
        self.min_interval = min_interval
        self._post, self._apply, self._show_message = post, apply, show_message
        self._builder = ViewBuilder(panels)
        self._idle = threading.Event()  # set while no view model is waiting for the main thread
        self._idle.set()
        self._stopping = threading.Event()
        self._applied = threading.Condition()
        self.applied: Snapshot | None = None  # the snapshot the window shows now (main thread writes)
        self.listeners: list[Callable[[ViewModel], None]] = []  # called on the main thread after each apply
        self._thread = threading.Thread(target=self._run, name="dd3d-lab-controller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(1.0)

    # ---------------------------------------------------------------------- user actions -> engine

    def select(self, class_index: int, sample: int) -> None:
        self.engine.select(class_index, sample)

    def set_resolution(self, points: int) -> None:
        self.engine.set_resolution(points)

    def play(self, running: bool) -> None:
        self.engine.resume() if running else self.engine.pause()

    def step(self) -> None:
        self.engine.step()

    def export(self, path: Path) -> None:
        self._report(self.engine.export(path), "exported the DD3D set to")

    def save_checkpoint(self, path: Path) -> None:
        self._report(self.engine.save_checkpoint(path), "checkpoint saved to")

    def _report(self, future: "Future[Path]", done: str) -> None:
        def finished(f: "Future[Path]") -> None:
            error = f.exception()
            text = f"{done} {f.result()}" if error is None else str(error)
            self._post(lambda: self._show_message(text, error is not None))

        future.add_done_callback(finished)

    # ------------------------------------------------------------------------- snapshots -> window

    def wait_applied(self, predicate: Callable[[Snapshot], bool], timeout: float) -> Snapshot | None:
        """Block (off the main thread) until the window shows a snapshot satisfying ``predicate``."""
        with self._applied:
            ok = self._applied.wait_for(lambda: self.applied is not None and predicate(self.applied), timeout)
            return self.applied if ok else None

    def _run(self) -> None:
        seen, shown, last_post = -1, None, 0.0
        while not self._stopping.is_set():
            snap = self.engine.snapshots.wait(0.25, newer_than=seen)
            if snap is None:  # quiet: draw the loss curve a user-driven update left out
                snap = self.engine.snapshots.latest()
                if snap is not None and self._builder.loss_stale(snap) and self._idle.is_set():
                    self._show(snap, draw_loss=True)
                continue
            key = (snap.state, snap.resolution, snap.selected_class, snap.selected_sample)
            early = self.min_interval - (time.monotonic() - last_post)
            if key == shown and early > 0:  # training progress only: rate-limited
                self.engine.snapshots.wait(early, newer_than=snap.seq)
                continue
            if not self._idle.wait(0.25):  # the window is still busy with the previous one
                continue
            snap = self.engine.snapshots.latest() or snap
            moved = shown is not None and key[1:] != shown[1:]  # the slider or the class/sample picker
            seen, shown, last_post = snap.seq, key, time.monotonic()
            self._show(snap, draw_loss=not moved)

    def _show(self, snap: Snapshot, draw_loss: bool) -> None:
        view = self._builder.build(snap, draw_loss)
        self._idle.clear()
        self._post(lambda v=view: self._deliver(v))

    def _deliver(self, view: ViewModel) -> None:
        try:
            self._apply(view)
            for listener in self.listeners:
                listener(view)
        finally:
            with self._applied:
                self.applied = view.snapshot
                self._applied.notify_all()
            self._idle.set()
