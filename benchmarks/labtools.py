"""Machinery shared by the lab benchmarks (``lab_latency.py``, ``lab_soak.py``).

- :func:`ensure_display`: re-runs the benchmark under ``xvfb-run`` (depth 24) when there is no display;
- :func:`open_lab` / :func:`run_driven`: the lab on the built-in config with the lab profile,
  distilling without pausing, its event loop on the main thread while a helper thread drives it;
- :class:`TickClock`: main-thread stalls, i.e. gaps between event-loop ticks;
- :func:`scripted_change`: the scripted session of slider and class changes both benchmarks replay.
"""
from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from benchmarks.harness import REPO, rerun_command
from dd3d.engine import Engine, Snapshot, State, load_lab_config

if TYPE_CHECKING:
    from viewer.app import LabApp

CONFIG = REPO / "configs" / "shapes.yaml"
WARM_UP_ITERATIONS = 3
FOREVER = 10**9  # pause_at: never pause on its own
#: xvfb-run with a 24-bit screen (docs/open3d.md: depth 16 aborts Open3D's window); Xvfb lives until the command exits
XVFB_RUN = ["xvfb-run", "-a", "-s", "-screen 0 1600x900x24"]
#: DD3D resolutions the scripted session cycles through (every change regenerates the cloud)
RESOLUTIONS = (256, 4096, 8192, 1024)
CHANGES_PER_SELECT = 4  # every 4th change also picks the next class and a sample


def ensure_display() -> None:
    """Return when a reachable X display exists; otherwise re-run this very command under
    :data:`XVFB_RUN` (the process is replaced), or exit with one line when Xvfb is not installed."""
    from viewer.app import has_display

    if has_display():
        return
    if os.environ.get("DD3D_UNDER_XVFB") or shutil.which(XVFB_RUN[0]) is None:
        raise SystemExit("needs a display: none is reachable and xvfb-run did not provide one "
                         "(apt-get install xvfb xauth, or run under a desktop session)")
    os.environ["DD3D_UNDER_XVFB"] = "1"  # no second attempt if Xvfb starts but is unreachable
    os.execvp(XVFB_RUN[0], [*XVFB_RUN, *rerun_command()])


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def open_lab(overrides: Sequence[str], renderer: str) -> "LabApp":
    """The lab window on :data:`CONFIG` with the lab profile (DD3D clouds at the lab's default resolution),
    distilling until it is stopped."""
    from viewer.app import LabApp

    return LabApp(load_lab_config(CONFIG, list(overrides)), pause_at=FOREVER, renderer=renderer)


def run_driven(app: "LabApp", script: Callable[[], None]) -> int:
    """Run the lab's event loop here while ``script`` drives it from a helper thread; the lab quits
    when ``script`` returns. Returns the lab's exit code; an exception of ``script`` is re-raised
    here after the loop has ended."""
    failures: list[BaseException] = []

    def drive() -> None:
        try:
            script()
        except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread
            failures.append(exc)
        finally:
            app.call(app.quit)

    threading.Thread(target=drive, name="lab-benchmark-driver", daemon=True).start()
    code = app.run()
    if failures:
        raise failures[0]
    return code


def wait_warm(app: "LabApp", timeout: float = 600) -> Snapshot:
    """The first snapshot on screen after :data:`WARM_UP_ITERATIONS` iterations; raises if the engine failed."""
    snap = app.controller.wait_applied(lambda s: s.iteration >= WARM_UP_ITERATIONS or s.state == State.ERROR, timeout)
    if snap is None or snap.state == State.ERROR:
        raise RuntimeError(f"lab did not start: {app.engine.snapshots.latest()}")
    return snap


class TickClock:
    """Times of the window's event-loop ticks (main thread; Open3D ticks every ~10 ms while the loop
    is free), so the gaps between them are main-thread stalls. Never asks for a redraw."""

    def __init__(self, app: "LabApp") -> None:
        self.ticks: list[float] = []
        self._running = True
        app.view.window.set_on_tick_event(self._on_tick)

    def _on_tick(self) -> bool:
        if self._running:
            self.ticks.append(time.perf_counter())
        return False

    def restart(self) -> None:
        """Forget the ticks so far (start-up is not a stall)."""
        self.ticks.clear()

    def stop(self) -> None:
        self._running = False

    def stalls_ms(self) -> list[float]:
        """Gaps between consecutive ticks, in milliseconds."""
        return list(1000 * np.diff(self.ticks))


@dataclass(frozen=True)
class Change:
    """One scripted change: the DD3D resolution, and a (class, sample) selection or None."""

    points: int
    selection: tuple[int, int] | None

    def shown_in(self, snap: Snapshot) -> bool:
        """True when ``snap`` shows this change (DD3D cloud size, and class/sample after clamping)."""
        m = snap.method("dd3d")
        if m is None or m.cloud is None or len(m.cloud) != self.points:
            return False
        if self.selection is None:
            return True
        c, sample = self.selection
        return snap.selected_class == c and snap.selected_sample == min(sample, snap.samples_in_class - 1)

    def on_window(self, app: "LabApp") -> bool:
        """Main thread: the window's panels show this change (DD3D point count, Real panel's class)."""
        if app.dd3d_point_count() != self.points:
            return False
        if self.selection is None:
            return True
        name = app.engine.snapshots.latest().class_names[self.selection[0]]
        return app.panel_titles()[0].startswith(f"Real · {name} #")


def scripted_change(app: "LabApp", step: int) -> Change:
    """Make the ``step``-th change of the scripted session through the app's API (as the slider and
    class picker would): the DD3D slider cycles through :data:`RESOLUTIONS`, and every
    :data:`CHANGES_PER_SELECT`-th change also picks the next class and sample ``step % 3``."""
    classes = len(app.engine.snapshots.latest().class_names)
    selection = None
    if step % CHANGES_PER_SELECT == CHANGES_PER_SELECT - 1:
        selection = ((step // CHANGES_PER_SELECT) % classes, step % 3)
    change = Change(RESOLUTIONS[step % len(RESOLUTIONS)], selection)

    def apply() -> None:
        app.set_resolution(change.points)
        if change.selection is not None:
            app.select(*change.selection)

    app.call(apply).result(30)
    return change


def engine_speed(seconds: float, overrides: Sequence[str]) -> dict[str, float]:
    """Iterations per second of each lab method with no window (after warm-up); ``device`` describes
    where the engine ran."""
    engine = Engine(load_lab_config(CONFIG, overrides), pause_at=FOREVER).start()
    first = engine.snapshots.wait_until(lambda s: s.iteration >= WARM_UP_ITERATIONS, 300)
    if first is None:
        raise SystemExit(f"engine did not start: {engine.snapshots.latest()}")
    began = time.perf_counter()
    time.sleep(seconds)
    last = engine.snapshots.latest()
    elapsed = time.perf_counter() - began
    engine.stop()
    speed = {m.name: (m.iteration - first.method(m.name).iteration) / elapsed for m in last.methods}
    return {**speed, "device": last.device}
