"""What checkpointing every iteration costs a distillation (issue 14: ``dd3d-lab --watch`` follows a run
through its checkpoints, so ``--set distill.checkpoint_every=1`` must not slow the run by more than 5 %).

    python -m benchmarks.checkpoint_cost                  # built-in shapes, DD3D, lab profile, cpc 10
    python -m benchmarks.checkpoint_cost --cpc 1 --iterations 6 --pairs 3

Runs the same ``dd3d distill`` (in this process, :func:`dd3d.distill.run.distill`) back to back in
pairs: once with ``distill.checkpoint_every=1`` and once with a checkpoint only at the end
(``checkpoint_every`` = iterations), alternating which goes first. Everything else in the loop is the
same code (the state to save is copied every iteration either way), so the extra work of
``checkpoint_every=1`` is the writes themselves. Printed:

- the direct cost — the verdict (PASS when at most 5 %): seconds inside ``save_checkpoint`` (timed by
  wrapping it; every write of the every=1 runs, ``generator.pt`` included) over the wall time of
  those runs' iterations after the first (which carries one-time start-up costs);
- end to end, per iteration after the first, including its write: the ratio of the median wall
  times and of the summed CPU times (this process, all torch threads) of every=1 over every=N. On a
  machine shared with other jobs both drift with the load by far more than 5 % from run to run;
  they resolve the cost only on a quiet machine.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from benchmarks.harness import REPO
from dd3d.config import load_config
from dd3d.distill import run
from dd3d.engine import LAB_PROFILE
from dd3d.provenance import command, machine

LIMIT = 1.05


def timed(save: Callable[..., Any], spent: list[float]) -> Callable[..., Any]:
    """``save`` that adds the seconds of every call to ``spent``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return save(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - began)

    return wrapper


def iteration_times(cfg: Any, out: Path) -> tuple[list[float], list[float]]:
    """(wall, CPU) seconds of every iteration after the first of a distillation of ``cfg`` into ``out``."""
    marks: list[tuple[float, float]] = []
    run.distill(cfg, out, progress=False,
                on_iteration=lambda iteration, loss: marks.append((time.perf_counter(), time.process_time())))
    return ([b[0] - a[0] for a, b in zip(marks, marks[1:])], [b[1] - a[1] for a, b in zip(marks, marks[1:])])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="dd3d")
    parser.add_argument("--cpc", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    if args.iterations < 2:
        parser.error("--iterations: at least 2 (the first iteration is not timed)")
    base = [*LAB_PROFILE, "device=cpu", f"distill.method={args.method}", f"distill.cpc={args.cpc}",
            f"distill.iterations={args.iterations}", *args.overrides]
    print(f"# {command()}\n# {machine()}\n# config: configs/shapes.yaml {' '.join(base)}")
    every_n = args.iterations
    wall: dict[int, list[float]] = {1: [], every_n: []}
    cpu: dict[int, list[float]] = {1: [], every_n: []}
    saving: list[float] = []  # seconds inside save_checkpoint during the checkpoint_every=1 runs
    plain_save = run.save_checkpoint
    with tempfile.TemporaryDirectory() as tmp:
        for pair in range(args.pairs):
            for every in ([1, every_n] if pair % 2 == 0 else [every_n, 1]):
                cfg = load_config(REPO / "configs" / "shapes.yaml", [*base, f"distill.checkpoint_every={every}"])
                run.save_checkpoint = timed(plain_save, saving) if every == 1 else plain_save
                w, c = iteration_times(cfg, Path(tmp) / f"run-{pair}-{every}")
                wall[every] += w
                cpu[every] += c
                print(f"pair {pair}: checkpoint_every={every:<4d} {len(w)} iterations: wall {sum(w):.2f} s, "
                      f"CPU {sum(c):.2f} s")
    run.save_checkpoint = plain_save
    cpu_ratio = sum(cpu[1]) / sum(cpu[every_n])
    wall_ratio = statistics.median(wall[1]) / statistics.median(wall[every_n])
    direct = sum(saving) / sum(wall[1])
    print(f"direct: {len(saving)} checkpoint writes took {sum(saving):.2f} s ({1000 * sum(saving) / len(saving):.1f} ms "
          f"each); the iterations of those runs {sum(wall[1]):.1f} s")
    print(f"end to end (load-sensitive), every=1 / every={every_n}: median wall time of an iteration "
          f"{statistics.median(wall[1]):.3f} s / {statistics.median(wall[every_n]):.3f} s = {wall_ratio:.3f}; ", end="")
    print(f"summed CPU time of the iterations: {cpu_ratio:.3f}")
    verdict = "PASS" if 1 + direct <= LIMIT else "FAIL"
    print(f"{verdict}: checkpoint writes add {100 * direct:.2f} % to the iterations (limit {100 * (LIMIT - 1):.0f} %)")
    return 0 if 1 + direct <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
