"""Responsiveness of the lab while it distils on the CPU: engine speed, slider latency, stalls, memory.

    python -m benchmarks.lab_latency --quick        # ~3 min
    python -m benchmarks.lab_latency --minutes 10   # memory run

Without a display it re-runs itself under ``xvfb-run -a -s "-screen 0 1600x900x24"``
(:func:`labtools.ensure_display`).

On the built-in config with the lab profile (what ``dd3d-lab`` runs):

1. engine speed without a window (child process, ``--engine-only``): iterations per second of GM
   and DD3D, alternating in one thread;
2. in the lab window, with distillation running: the latency from a resolution-slider change
   (:meth:`LabApp.set_resolution`, on the main thread) to the new DD3D cloud on screen at 4,096
   points — "on screen" is when a closure posted right after the window applied the new cloud runs,
   i.e. one event-loop turn (and its redraw) later; target <= 200 ms;
3. the longest main-thread stall: the longest gap between two event-loop ticks (the window's tick
   callback runs every ~10 ms when the loop is free; it never requests a redraw); target <= 100 ms;
4. resident memory sampled every 10 s while the slider and the class keep changing (the scripted
   session of :func:`labtools.scripted_change`, one change every 2 s; bounded geometry
   add/remove): it should stay flat;
5. control for 4: the same growth per redraw in a bare Open3D window (one SceneWidget with a
   4,096-point cloud, redrawn 10 times a second, no dd3d code; child process ``--bare-window``),
   which separates Open3D's own per-frame memory use from the lab's.

``--renderer`` picks Filament's backend for both windows (default: the lab's,
:data:`viewer.app.DEFAULT_RENDERER`); ``--renderer vulkan`` reproduces Open3D 0.20's default,
whose memory grows with every frame on Mesa's software Vulkan driver (docs/lab.md, "Renderer").

Prints a markdown table with the command and the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
from benchmarks.harness import REPO
from benchmarks.labtools import (CONFIG, FOREVER, TickClock, engine_speed, ensure_display, open_lab, percentile,
                                 run_driven, scripted_change, wait_warm)

from dd3d.engine import memory_bytes
from dd3d.provenance import command, machine
from viewer.app import DEFAULT_RENDERER, RENDERERS


def bare_window(seconds: float, renderer: str, warm_up: float = 3.0) -> dict[str, float]:
    """RSS growth per redraw of a minimal Open3D window (no dd3d code): the renderer's own share,
    counted after ``warm_up`` seconds of redrawing (first frames allocate render targets)."""
    import open3d as o3d
    import open3d.visualization.gui as gui
    import open3d.visualization.rendering as rendering

    from viewer.app import select_renderer

    select_renderer(renderer)
    app = gui.Application.instance
    app.initialize()
    window = app.create_window("bare", 1600, 900, 0, 0)
    widget = gui.SceneWidget()
    widget.scene = rendering.Open3DScene(window.renderer)
    window.add_child(widget)
    widget.frame = gui.Rect(0, 0, 800, 800)
    widget.scene.add_geometry("cloud", o3d.t.geometry.PointCloud(o3d.core.Tensor(
        np.random.default_rng(0).uniform(-1, 1, (4096, 3)).astype(np.float32))), rendering.MaterialRecord())
    state = {"frames": 0, "last": 0.0, "start": None, "began": time.perf_counter()}

    def on_tick() -> bool:
        now = time.perf_counter()
        if state["start"] is None and now - state["began"] >= warm_up:
            state["start"], state["frames"] = (now, memory_bytes()), 0
        if state["start"] is not None and now - state["start"][0] > seconds:
            if "end" not in state:
                state["end"] = memory_bytes()
                app.post_to_main_thread(window, app.quit)
            return False
        if now - state["last"] < 0.1:
            return False
        state["last"], state["frames"] = now, state["frames"] + 1
        widget.force_redraw()
        return True

    window.set_on_tick_event(on_tick)
    app.run()
    return {"frames": state["frames"], "mb_per_frame": (state["end"] - state["start"][1]) / 2**20 / state["frames"]}


class LabProbe:
    """Drives a running :class:`viewer.app.LabApp` from a helper thread and records timings."""

    def __init__(self, app, minutes: float, samples: int) -> None:
        self.app, self.minutes, self.samples = app, minutes, samples
        self.latencies: list[float] = []
        self.to_applied: list[float] = []  # slider change -> cloud uploaded (before its redraw)
        self.clock = TickClock(app)
        self.memory: list[tuple[float, int]] = []
        self.iterations: list[tuple[float, int]] = []
        self.updates = 0  # view updates applied (each is one redraw)
        self._applied: dict[int, float] = {}
        self._drawn: dict[int, float] = {}
        app.controller.listeners.append(self._on_applied)

    def _on_applied(self, view) -> None:
        """Main thread: the window has just applied ``view``; note when, and when it is on screen."""
        self.updates += 1
        m = view.snapshot.method("dd3d")
        if m is None or m.cloud is None:
            return
        n, now = len(m.cloud), time.perf_counter()
        if n not in self._applied:
            self._applied[n] = now
            self.app._app.post_to_main_thread(self.app.view.window, lambda: self._drawn.setdefault(n, time.perf_counter()))

    def _set_and_wait(self, n: int) -> float:
        """Main-thread time of the slider change -> time the new cloud was on screen."""
        self._applied.pop(n, None)
        self._drawn.pop(n, None)
        started = self.app.call(lambda: (self.app.set_resolution(n), time.perf_counter())[1]).result(30)
        deadline = time.perf_counter() + 30
        while n not in self._drawn and time.perf_counter() < deadline:
            time.sleep(0.002)
        self.to_applied.append(self._applied.get(n, float("inf")) - started)
        return self._drawn.get(n, float("inf")) - started

    def run(self) -> None:
        wait_warm(self.app)
        self.clock.restart()  # stalls are measured from here on (start-up is not a stall)
        for i in range(self.samples):  # alternate so that every change regenerates
            self.latencies.append(self._set_and_wait(4096 if i % 2 == 0 else 4095))
            time.sleep(0.3)
        self._exercise_memory()
        self.clock.stop()

    def _exercise_memory(self) -> None:
        """Keep changing resolution and class for ``minutes``; sample RSS every 10 s."""
        began = time.perf_counter()
        next_sample, step = began, 0
        self.updates_at_start = self.updates
        while time.perf_counter() - began < self.minutes * 60:
            now = time.perf_counter()
            if now >= next_sample:
                snap = self.app.engine.snapshots.latest()
                self.memory.append((now - began, memory_bytes()))
                self.iterations.append((now - began, snap.iteration))
                next_sample += 10
            scripted_change(self.app, step)
            step += 1
            time.sleep(2.0)
        snap = self.app.engine.snapshots.latest()
        self.memory.append((time.perf_counter() - began, memory_bytes()))
        self.iterations.append((time.perf_counter() - began, snap.iteration))


def gui_phase(minutes: float, samples: int, overrides: list[str], renderer: str) -> LabProbe:
    app = open_lab(overrides, renderer)
    probe = LabProbe(app, minutes, samples)
    run_driven(app, probe.run)
    return probe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 minute of memory sampling, 20 latency samples")
    parser.add_argument("--minutes", type=float, help="minutes of the memory run (default 10; 1 with --quick)")
    parser.add_argument("--samples", type=int, help="slider changes timed (default 40; 20 with --quick)")
    parser.add_argument("--engine-seconds", type=float, default=30.0, help="length of the engine-only phase")
    parser.add_argument("--engine-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bare-window", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="extra config overrides (after the lab profile)")
    parser.add_argument("--renderer", choices=sorted(RENDERERS), default=DEFAULT_RENDERER,
                        help=f"Filament backend of the windows (default {DEFAULT_RENDERER}, as dd3d-lab)")
    args = parser.parse_args()
    if args.engine_only:
        print(json.dumps(engine_speed(args.engine_seconds, args.overrides)))
        return
    if args.bare_window:
        print(json.dumps(bare_window(10.0, args.renderer)))
        return
    ensure_display()
    minutes = args.minutes if args.minutes is not None else (1.0 if args.quick else 10.0)
    samples = args.samples if args.samples is not None else (20 if args.quick else 40)

    child = subprocess.run([sys.executable, "-m", "benchmarks.lab_latency", "--engine-only", "--engine-seconds", str(args.engine_seconds),
                            *sum((["--set", s] for s in args.overrides), [])],
                           capture_output=True, text=True, env={**os.environ, "DISPLAY": ""}, cwd=REPO)
    if child.returncode != 0:
        raise SystemExit(f"engine-only phase failed: {child.stderr[-2000:]}")
    headless = json.loads(child.stdout.strip().splitlines()[-1])
    bare = subprocess.run([sys.executable, "-m", "benchmarks.lab_latency", "--bare-window", "--renderer",
                           args.renderer], capture_output=True, text=True, cwd=REPO)
    if bare.returncode != 0:
        raise SystemExit(f"bare-window phase failed: {bare.stderr[-2000:]}")
    control = json.loads(bare.stdout.strip().splitlines()[-1])

    probe = gui_phase(minutes, samples, args.overrides, args.renderer)
    lat_ms = [1000 * v for v in probe.latencies]
    stalls_ms = probe.clock.stalls_ms()
    (t0, it0), (t1, it1) = probe.iterations[0], probe.iterations[-1]
    gui_speed = (it1 - it0) / (t1 - t0) if t1 > t0 else float("nan")
    mem = [m / 2**20 for _, m in probe.memory]
    times = [t / 60 for t, _ in probe.memory]
    slope = float(np.polyfit(times, mem, 1)[0]) if len(mem) >= 2 else float("nan")
    second_half = mem[len(mem) // 2:]
    updates = probe.updates - probe.updates_at_start

    print(f"\nLab latency (built-in shapes, lab profile, {headless['device']}, {args.renderer} renderer)")
    print(f"command: {command()}\nmachine: {machine()}\n")
    print("| measurement | value | target |\n| --- | --- | --- |")
    print(f"| engine alone: GM / DD3D iterations per second | {headless['gm']:.2f} / {headless['dd3d']:.2f} | >= 1 / >= 1 |")
    print(f"| engine with the window open: iterations per second (each method) | {gui_speed:.2f} | |")
    print(f"| slider -> screen at 4,096 points: median / p90 / max | {percentile(lat_ms, 50):.0f} / "
          f"{percentile(lat_ms, 90):.0f} / {max(lat_ms):.0f} ms ({len(lat_ms)} changes) | <= 200 ms |")
    applied_ms = [1000 * v for v in probe.to_applied]
    print(f"| of which slider -> cloud uploaded (before the redraw): median / p90 / max | "
          f"{percentile(applied_ms, 50):.0f} / {percentile(applied_ms, 90):.0f} / {max(applied_ms):.0f} ms | |")
    print(f"| main-thread stall (gap between event-loop ticks): p99 / max | {percentile(stalls_ms, 99):.0f} / "
          f"{max(stalls_ms):.0f} ms ({len(stalls_ms)} ticks) | <= 100 ms |")
    print(f"| RSS over {minutes:g} min: first / last / max | {mem[0]:.0f} / {mem[-1]:.0f} / {max(mem):.0f} MB | flat |")
    print(f"| RSS trend (linear fit) / spread of the second half | {slope:+.1f} MB/min / "
          f"{max(second_half) - min(second_half):.0f} MB | ~0 |")
    print(f"| view updates (redraws) during the memory run / RSS growth per update | {updates} / "
          f"{(mem[-1] - mem[0]) / max(updates, 1):.2f} MB | |")
    print(f"| control: bare Open3D window, RSS growth per redraw ({control['frames']} redraws) | "
          f"{control['mb_per_frame']:.2f} MB | |")


if __name__ == "__main__":
    main()
