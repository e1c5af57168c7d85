""":class:`RunEngine`: ``dd3d distill`` run folders as lab snapshots — finished runs side by side
(``dd3d-lab --run``), or one run followed while another process writes it (``dd3d-lab --watch``).

Nothing is trained. One daemon thread loads the real data of the runs' config (``config.yaml`` in
the run folder) and then serves class, sample and resolution changes; every panel whose clouds come
from a generator is regenerated at the resolution, stored sets keep their size. Watching, the same
thread polls the folder every :data:`~dd3d.engine.training.POLL_S` seconds (file status only; files
are read when they change, :class:`~dd3d.engine.runs.Watcher`) and publishes a snapshot at least
every :data:`TICK_S` so that the ETA and the checkpoint's age stay current. A failure while
watching (an unreadable checkpoint, a config that does not load) is shown as the message of an
``error`` snapshot and the polling goes on, so a killed, resumed or restarted run is picked up again.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Hashable, Sequence

import numpy as np
import torch

from dd3d.distill.run import build_context
from dd3d.engine.profile import DEFAULT_RESOLUTION, LAB_CPU_THREADS
from dd3d.engine.runs import RunFolder, Watched, Watcher, check_compatible, panel_labels
from dd3d.engine.snapshot import Cloud, MethodView, Mode, Snapshot, State
from dd3d.engine.source import SnapshotSource
from dd3d.engine.training import Command, drain, one_line
from dd3d.engine.view import RealView, bare_snapshot, preview_cloud, shown_rotator
from dd3d.errors import DD3DError
from dd3d.previews import Preview

TICK_S = 1.0  # watching: longest time between two snapshots


@dataclass(frozen=True)
class Panel:
    """One synthetic panel: a run's label, progress and clouds; ``version`` changes with the clouds."""

    label: str
    method: str
    cpc: int
    iteration: int
    losses: np.ndarray
    seconds_per_iteration: float | None
    clouds: Preview | None
    version: Hashable

    @classmethod
    def of_run(cls, run: RunFolder, label: str) -> "Panel":
        return cls(label, run.method, run.cpc, run.iterations, run.losses, None, run.clouds, id(run))

    @classmethod
    def of_watched(cls, watched: Watched, cpc: int) -> "Panel":
        pace = watched.seconds / watched.iteration if watched.seconds and watched.iteration else None
        return cls(watched.method.upper(), watched.method, cpc, watched.iteration, watched.losses, pace,
                   watched.clouds, watched.version)


class RunEngine(SnapshotSource):
    """Finished run folders (``runs``) or one watched run folder (``watch``) behind the lab's commands.

    Args:
        runs: finished runs (:meth:`RunFolder.open`), of one dataset and class list.
        watch: a run folder to follow instead (it need not exist yet).
        resolution: points of regenerated clouds.
        overrides: ``--set`` overrides applied to a watched run's config (e.g. ``data.root``).
    """

    def __init__(self, runs: Sequence[RunFolder] = (), watch: Path | None = None,
                 resolution: int = DEFAULT_RESOLUTION, overrides: Sequence[str] = ()) -> None:
        if bool(runs) == (watch is not None):
            raise DD3DError("dd3d-lab: give run folders (--run DIR ...) or one folder to watch (--watch DIR)")
        super().__init__(resolution)
        if runs:
            check_compatible(runs)
        self.runs = tuple(runs)
        self.mode = Mode.RUNS if runs else Mode.WATCH
        self.watcher = Watcher(watch, overrides) if watch is not None else None
        self._labels = panel_labels(self.runs) if runs else ["run"]
        self._clouds: dict[int, tuple[Hashable, Cloud | None]] = {}
        self._rotator_version: Hashable = None  # watching: the version whose rotator is shown
        self._thread = threading.Thread(target=self._main, name="dd3d-engine-runs", daemon=True)

    @property
    def panel_names(self) -> tuple[str, ...]:
        """Names of the window's panels: Real, then one per run."""
        return ("Real", *self._labels)

    def start(self) -> "RunEngine":
        self._thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> bool:
        """Stop the thread; True if it ended within ``timeout`` seconds."""
        self._stopping.set()
        self._view_events.put(("stop", None))
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def export(self, path: str | Path) -> "Future[Path]":
        """Write the first generator run's set at the current resolution (else the first run's set as
        stored) in the ``synthetic.h5`` layout, atomically; the future resolves to the path."""
        future: Future[Path] = Future()
        if not self._thread.is_alive():  # ended (failed to load, or stopped): nobody would answer
            future.set_exception(DD3DError("cannot export: the engine has stopped"))
        else:
            self._view_events.put(("export", (Path(path), future)))
        return future

    # ------------------------------------------------------------------------------------ thread

    def _main(self) -> None:
        view: dict[str, Any] = {"selection": (0, 0), "resolution": self._resolution, "message": ""}
        real: RealView | None = None
        last = 0.0
        try:
            if self.runs:
                real = self._real_view(self.runs[0])
            while True:
                events = drain(self._view_events, block=True)
                done = any(name == "stop" for name, _ in events)
                for name, arg in events:
                    if name == "select":
                        view["selection"] = arg
                    elif name == "resolution":
                        view["resolution"] = arg
                    elif name == "export":
                        view["message"] = self._export(real, view["resolution"], *arg)
                changed = bool(events)
                if self.watcher is not None and not done:
                    changed |= self._poll()
                    if self.watcher.ctx is not None and (real is None or real.ctx is not self.watcher.ctx):
                        real = self._real_view_watched()
                ticked = self.watcher is not None and time.monotonic() - last >= TICK_S
                if changed or done or ticked or self.snapshots.latest() is None:
                    self.snapshots.publish(self._snapshot(real, view, done))
                    last = time.monotonic()
                if done:
                    return
        except Exception as exc:  # noqa: BLE001 - loading the runs failed: say why, keep the window
            self.snapshots.publish(bare_snapshot(self._next_seq(), State.ERROR, one_line(exc), None,
                                                 view["resolution"], self.mode))

    def _poll(self) -> bool:
        try:
            return self.watcher.poll()
        except Exception as exc:  # noqa: BLE001 - shown; the next poll tries again
            self.watcher.message, self.watcher.failed = one_line(exc), True
            return True

    def _real_view(self, run: RunFolder) -> RealView:
        from dd3d.device import describe

        if run.cfg.threads == 0:
            torch.set_num_threads(LAB_CPU_THREADS)
        ctx = build_context(run.cfg, torch.device("cpu"))
        trained = next((r.rotator for r in self.runs if r.rotator is not None), None)
        rotator, label = shown_rotator(run.cfg, trained)
        owner = next((lab for r, lab in zip(self.runs, self._labels) if r.rotator is trained), "")
        return RealView(run.cfg, ctx, describe(ctx.device), rotator,
                        f"{label} of {owner}" if trained is not None and rotator is trained else label)

    def _real_view_watched(self) -> RealView:
        from dd3d.device import describe

        watcher = self.watcher
        rotator, label = shown_rotator(watcher.cfg)
        self._rotator_version = None
        if watcher.cfg.threads == 0:
            torch.set_num_threads(LAB_CPU_THREADS)
        return RealView(watcher.cfg, watcher.ctx, describe(watcher.ctx.device), rotator, label)

    def _panels(self) -> list[Panel]:
        if self.watcher is None:
            return [Panel.of_run(run, label) for run, label in zip(self.runs, self._labels)]
        shown = self.watcher.shown
        return [] if shown is None else [Panel.of_watched(shown, self.watcher.cfg.distill.cpc)]

    def _cloud(self, slot: int, panel: Panel, c: int, sample: int, resolution: int) -> Cloud | None:
        if panel.clouds is None:
            return None
        regenerates = panel.clouds.regenerates
        key = (panel.version, c, sample % max(panel.cpc, 1), resolution if regenerates else 0)
        cached = self._clouds.get(slot)
        if cached is None or cached[0] != key:
            cached = (key, preview_cloud(panel.clouds, c, sample, resolution))
            self._clouds[slot] = cached
        return cached[1]

    def _snapshot(self, real: RealView | None, view: dict[str, Any], final: bool) -> Snapshot:
        watched = self.watcher.shown if self.watcher is not None else None
        if self.watcher is None:
            state = State.FINISHED
        elif self.watcher.failed:
            state = State.ERROR
        else:
            state = State.WAITING if watched is None else State.FINISHED if watched.finished else State.RUNNING
        message = view["message"] or (self.watcher.message if self.watcher is not None else "")
        view["message"] = ""  # an export's result is shown once
        resolution = view["resolution"]
        if real is None:
            cfg = self.watcher.cfg if self.watcher is not None else None
            return bare_snapshot(self._next_seq(), state, message, cfg, resolution, self.mode)
        panels = self._panels()

        def methods(c: int, sample: int) -> tuple[MethodView, ...]:
            return tuple(MethodView(p.method, p.iteration, p.losses, p.seconds_per_iteration,
                                    self._cloud(i, p, c, sample, resolution), p.label, p.cpc, p.clouds.regenerates
                                    if p.clouds is not None else False) for i, p in enumerate(panels))

        rotator_version = 0
        if watched is not None and watched.rotator is not None:  # the watched run's own rotator
            rotator_version = watched.version
            if self._rotator_version != watched.version:
                real.rotator, real.rotator_label = shown_rotator(real.cfg, watched.rotator)
                self._rotator_version = watched.version
        return real.snapshot(self._next_seq(), state, message, view["selection"], resolution, methods,
                             rotator_version, mode=self.mode,
                             eta_seconds=None if watched is None else watched.eta_seconds,
                             updated_at=None if watched is None else watched.written_at)

    def _export(self, real: RealView | None, resolution: int, path: Path, future: "Future[Path]") -> str:
        from dd3d.synthetic import write_synthetic_h5

        try:
            panels = [p for p in self._panels() if p.clouds is not None]
            if real is None or not panels:
                raise DD3DError("export: nothing to export yet")
            panel = next((p for p in panels if p.clouds.regenerates), panels[0])
            synthetic = panel.clouds.full_set(resolution)
            write_synthetic_h5(path, synthetic, list(real.ctx.real.class_names))
        except Exception as exc:  # noqa: BLE001 - reported to the caller, the engine keeps running
            future.set_exception(exc)
            return f"export failed: {one_line(exc)}"
        future.set_result(path)
        points = synthetic.points.shape[1] if len(synthetic.points) else 0
        return f"exported {len(synthetic.labels)} {panel.label} clouds x {points} points to {path}"
