"""Lab soak (issue 9): the lab distilling for minutes under scripted changes, with an engine failure at half time.

    python -m benchmarks.lab_soak --quick        # 2 minutes
    python -m benchmarks.lab_soak --paper        # 10 minutes (docs/results.md numbers)
    python -m benchmarks.lab_soak --minutes 1

Without a display it re-runs itself under ``xvfb-run -a -s "-screen 0 1600x900x24"``
(:func:`labtools.ensure_display`). The lab opens on the built-in config with the lab profile (what
``dd3d-lab`` runs, distilling without pausing); after warm-up, for the chosen minutes:

- every second one change of the scripted session (:func:`labtools.scripted_change`: the DD3D
  slider cycles through 256/4,096/8,192/1,024 points, every fourth change also picks the next class
  and a sample), then up to :data:`FOLLOW_TIMEOUT_S` for the window to show it, read back from the
  window itself (DD3D panel point count, Real panel title);
- every :data:`SAMPLE_EVERY_S` seconds the resident memory and the number of geometries in the
  window's scenes (:meth:`viewer.app.LabApp.geometry_count`);
- every event-loop tick the time (:class:`labtools.TickClock`: a gap is a main-thread stall);
- at half time :meth:`dd3d.engine.Engine.inject_failure`: training ends in state ``error``, and
  the changes go on (the view thread regenerates DD3D clouds from the last weights).

Criteria, each printed PASS/FAIL (exit 0 only when all pass): RSS at minute 1 vs at the end within
10 %; no growth of the geometry count; no main-thread stall over 250 ms; the injected message and
state ``error`` shown in the side panel's status lines (and still at the end); every change after
the failure shown by the panels; a clean exit of the event loop.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from benchmarks.labtools import TickClock, ensure_display, open_lab, percentile, run_driven, scripted_change, wait_warm

from dd3d.engine import State, memory_bytes
from dd3d.provenance import command, machine
from viewer.app import DEFAULT_RENDERER, RENDERERS

if TYPE_CHECKING:
    from viewer.app import LabApp

CHANGE_EVERY_S = 1.0
SAMPLE_EVERY_S = 5.0
FOLLOW_TIMEOUT_S = 5.0  # longest wait for the window to show one change
ERROR_TIMEOUT_S = 10.0  # longest wait for the window to show the injected failure
REFERENCE_S = 60.0  # RSS is compared from minute 1 (start-up allocations settle in the first minute)
RSS_TOLERANCE = 0.10
MAX_STALL_MS = 250.0
PROFILES = {"quick": 2.0, "paper": 10.0}


@dataclass(frozen=True)
class ChangeRecord:
    at_s: float  # seconds since the soak began
    after_error: bool
    shown: bool  # the window's panels showed it within FOLLOW_TIMEOUT_S
    latency_s: float  # change -> the window had applied it (inf when not shown)


@dataclass(frozen=True)
class FailureRecord:
    at_s: float
    message: str
    iteration: int  # iterations completed when the failure was injected
    shown_after_s: float  # inject -> the window showed state error (inf when not)
    lines: tuple[str, str]  # (message, status) of the side panel right after


@dataclass
class Soak:
    """The soak's script (run on a helper thread by :func:`labtools.run_driven`) and what it recorded."""

    app: "LabApp"
    seconds: float
    clock: TickClock = field(init=False)
    memory: list[tuple[float, int]] = field(default_factory=list)  # (s, RSS bytes)
    geometries: list[tuple[float, int]] = field(default_factory=list)  # (s, geometries in the scenes)
    changes: list[ChangeRecord] = field(default_factory=list)
    failure: FailureRecord | None = None
    final_lines: tuple[str, str] = ("", "")
    device: str = ""

    def __post_init__(self) -> None:
        self.clock = TickClock(self.app)

    def run(self) -> None:
        self.device = wait_warm(self.app).device
        self.clock.restart()  # stalls are measured from here on (start-up is not a stall)
        began = time.perf_counter()
        next_sample = next_change = began
        step = 0
        while (now := time.perf_counter()) - began < self.seconds:
            if now >= next_sample:
                self._sample(now - began)
                next_sample += SAMPLE_EVERY_S
            if self.failure is None and now - began >= self.seconds / 2:
                self._inject(now - began)
            self._change(step, time.perf_counter() - began)
            step += 1
            next_change += CHANGE_EVERY_S
            time.sleep(max(0.0, next_change - time.perf_counter()))
        self._sample(time.perf_counter() - began)
        self.final_lines = self.app.call(self.app.status_lines).result(30)
        self.clock.stop()

    def _sample(self, at: float) -> None:
        self.memory.append((at, memory_bytes()))
        self.geometries.append((at, self.app.call(self.app.geometry_count).result(30)))

    def _change(self, step: int, at: float) -> None:
        began = time.perf_counter()
        change = scripted_change(self.app, step)
        shown = self.app.controller.wait_applied(change.shown_in, FOLLOW_TIMEOUT_S) is not None
        latency = time.perf_counter() - began if shown else float("inf")
        shown = shown and self.app.call(lambda: change.on_window(self.app)).result(30)
        self.changes.append(ChangeRecord(at, self.failure is not None, shown, latency))

    def _inject(self, at: float) -> None:
        message = f"soak: engine failure injected at {at / 60:.1f} min"
        iteration = self.app.engine.snapshots.latest().iteration
        began = time.perf_counter()
        self.app.engine.inject_failure(message)
        snap = self.app.controller.wait_applied(lambda s: s.state == State.ERROR, ERROR_TIMEOUT_S)
        shown_after = time.perf_counter() - began if snap is not None else float("inf")
        lines = self.app.call(self.app.status_lines).result(30)
        self.failure = FailureRecord(at, message, iteration, shown_after, lines)


def error_shown(lines: tuple[str, str], message: str) -> bool:
    """The side panel shows ``message`` on its message line and state ``error`` on its status line."""
    return lines[0] == message and lines[1].startswith(State.ERROR.value)


def report(soak: Soak, minutes: float, renderer: str, exit_code: int, loads: tuple[str, str]) -> bool:
    """Print the criteria table (PASS/FAIL per row) and return whether all passed."""
    mb = [(t, m / 2**20) for t, m in soak.memory]
    reference_s = min(REFERENCE_S, soak.seconds / 2)
    ref_t, ref_mb = next((t, m) for t, m in mb if t >= reference_s)
    end_t, end_mb = mb[-1]
    drift = (end_mb - ref_mb) / ref_mb
    counts = [n for _, n in soak.geometries]
    stalls = soak.clock.stalls_ms()
    failure = soak.failure
    before = [c for c in soak.changes if not c.after_error]
    after = [c for c in soak.changes if c.after_error]
    latencies_ms = [1000 * c.latency_s for c in soak.changes if c.shown]

    def shown(records: list[ChangeRecord]) -> str:
        return f"{sum(c.shown for c in records)}/{len(records)}"

    rows = [
        ("RSS at minute 1 vs at the end", f"{ref_mb:.0f} MB ({ref_t / 60:.1f} min) -> {end_mb:.0f} MB "
         f"({end_t / 60:.1f} min): {100 * drift:+.1f} %", "within 10 %", abs(drift) <= RSS_TOLERANCE),
        ("geometries in the scenes: first / last (max)", f"{counts[0]} / {counts[-1]} ({max(counts)})",
         "no growth", counts[-1] == counts[0] == max(counts)),
        ("main-thread stall: p99 / max", f"{percentile(stalls, 99):.0f} / {max(stalls, default=float('nan')):.0f} ms "
         f"({len(stalls)} ticks)", "max <= 250 ms", bool(stalls) and max(stalls) <= MAX_STALL_MS),
        ("injected failure in the status lines (and still at the end)",
         "not injected" if failure is None else
         f"shown {1000 * failure.shown_after_s:.0f} ms after injection at {failure.at_s / 60:.1f} min "
         f"(iteration {failure.iteration}): {' | '.join(failure.lines)[:90]}",
         "shown", failure is not None and error_shown(failure.lines, failure.message)
         and error_shown(soak.final_lines, failure.message)),
        ("changes shown by the panels after / before the failure",
         f"{shown(after)} / {shown(before)}; change -> window median / max "
         f"{percentile(latencies_ms, 50):.0f} / {max(latencies_ms, default=float('nan')):.0f} ms",
         "all after", bool(after) and all(c.shown for c in after)),
        ("event loop ended cleanly", f"exit code {exit_code}", "0", exit_code == 0),
    ]
    print(f"\nLab soak: {minutes:g} min (built-in shapes, lab profile, {soak.device}, {renderer} renderer), "
          f"one change per {CHANGE_EVERY_S:g} s, engine failure at half time")
    print(f"command: {command()}\nmachine: {machine()}\nload average (1 min) at start / end: {loads[0]} / {loads[1]}")
    per_minute = [f"{m:.0f}" for t, m in mb[:-1] if t % 60 < SAMPLE_EVERY_S]  # the first sample of each minute
    print(f"RSS at the start of each minute, then at the end: {', '.join(per_minute)}, {end_mb:.0f} MB\n")
    print("| criterion | measured | target | result |\n| --- | --- | --- | --- |")
    for name, measured, target, ok in rows:
        print(f"| {name} | {measured} | {target} | {'PASS' if ok else 'FAIL'} |")
    passed = all(ok for *_, ok in rows)
    print(f"\n{'PASS' if passed else 'FAIL'}: {sum(ok for *_, ok in rows)}/{len(rows)} criteria")
    return passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    profile = parser.add_mutually_exclusive_group()
    profile.add_argument("--quick", action="store_true", help=f"{PROFILES['quick']:g} minutes")
    profile.add_argument("--paper", action="store_true", help=f"{PROFILES['paper']:g} minutes (the run in docs/results.md)")
    parser.add_argument("--minutes", type=float, help="length of the soak after warm-up (default 10; overrides the profile)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="extra config overrides (after the lab profile)")
    parser.add_argument("--renderer", choices=sorted(RENDERERS), default=DEFAULT_RENDERER,
                        help=f"Filament backend of the window (default {DEFAULT_RENDERER}, as dd3d-lab)")
    args = parser.parse_args()
    minutes = args.minutes if args.minutes is not None else PROFILES["quick" if args.quick else "paper"]
    if minutes <= 0:
        parser.error(f"--minutes: got {minutes:g}, expected a positive number")
    ensure_display()
    load_start = f"{os.getloadavg()[0]:.1f}"
    app = open_lab(args.overrides, args.renderer)
    soak = Soak(app, 60 * minutes)
    exit_code = run_driven(app, soak.run)
    passed = report(soak, minutes, args.renderer, exit_code, (load_start, f"{os.getloadavg()[0]:.1f}"))
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
