"""What checkpointing every iteration costs a distillation (issue 14: ``dd3d-lab --watch`` follows a run
through its checkpoints, so ``--set distill.checkpoint_every=1`` must not slow the run by more than 5 %).

    python benchmarks/checkpoint_cost.py                  # built-in shapes, DD3D, lab profile, cpc 10
    python benchmarks/checkpoint_cost.py --method gm --iterations 30 --pairs 3

Runs the same ``dd3d distill`` (in this process, :func:`dd3d.distill.run.distill`) back to back in
pairs: once with ``distill.checkpoint_every=1`` and once with a checkpoint only at the end
(``checkpoint_every`` = iterations), alternating which goes first. Prints each run's loop time
(``wall_time_s`` of distill.json, which excludes data loading) and the ratio of the sums; exit 0 when
the ratio is at most 1.05. On a shared machine the load drifts between runs, so it also prints the
direct cost: the seconds spent inside ``save_checkpoint`` (timed by wrapping it) as a fraction of
the loop time of the same runs. Ratios measured back to back on one machine are the only timing
claims this makes.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dd3d.config import load_config  # noqa: E402
from dd3d.distill import run  # noqa: E402
from dd3d.engine import LAB_PROFILE  # noqa: E402
from dd3d.provenance import command, machine  # noqa: E402

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="dd3d")
    parser.add_argument("--cpc", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    base = [*LAB_PROFILE, "device=cpu", f"distill.method={args.method}", f"distill.cpc={args.cpc}",
            f"distill.iterations={args.iterations}", *args.overrides]
    print(f"# {command()}\n# {machine()}\n# config: configs/shapes.yaml {' '.join(base)}")
    seconds: dict[int, list[float]] = {1: [], args.iterations: []}
    saving: list[float] = []  # seconds inside save_checkpoint during the checkpoint_every=1 runs
    plain_save = run.save_checkpoint
    with tempfile.TemporaryDirectory() as tmp:
        for pair in range(args.pairs):
            order = [1, args.iterations] if pair % 2 == 0 else [args.iterations, 1]
            for every in order:
                cfg = load_config(REPO / "configs" / "shapes.yaml", [*base, f"distill.checkpoint_every={every}"])
                run.save_checkpoint = timed(plain_save, saving) if every == 1 else plain_save
                summary = run.distill(cfg, Path(tmp) / f"run-{pair}-{every}", progress=False)
                seconds[every].append(summary["wall_time_s"])
                print(f"pair {pair}: checkpoint_every={every:<4d} loop {summary['wall_time_s']:.2f} s")
    run.save_checkpoint = plain_save
    ratio = sum(seconds[1]) / sum(seconds[args.iterations])
    direct = sum(saving) / sum(seconds[1])
    print(f"direct: {len(saving)} checkpoints took {sum(saving):.2f} s = {100 * direct:.2f} % of the loop time "
          f"of the checkpoint_every=1 runs ({1000 * sum(saving) / max(len(saving), 1):.1f} ms each)")
    verdict = "PASS" if ratio <= LIMIT else "FAIL"
    print(f"{verdict}: checkpoint_every=1 / every {args.iterations} = {ratio:.3f} (limit {LIMIT})")
    return 0 if ratio <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
