"""What checkpointing every iteration costs a distillation (issue 14: ``dd3d-lab --watch`` follows a run
through its checkpoints, so ``--set distill.checkpoint_every=1`` must not slow the run by more than 5 %).

    python benchmarks/checkpoint_cost.py                  # built-in shapes, DD3D, lab profile, cpc 10
    python benchmarks/checkpoint_cost.py --method gm --iterations 30 --pairs 3

Runs the same ``dd3d distill`` (in this process, :func:`dd3d.distill.run.distill`) back to back in
pairs: once with ``distill.checkpoint_every=1`` and once with a checkpoint only at the end
(``checkpoint_every`` = iterations), alternating which goes first. Prints each run's loop time
(``wall_time_s`` of distill.json, which excludes data loading) and the ratio of the sums; exit 0 when
the ratio is at most 1.05. A ratio measured back to back on one machine is the only timing claim
this makes (the build machines are shared).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dd3d.config import load_config  # noqa: E402
from dd3d.distill.run import distill  # noqa: E402
from dd3d.engine import LAB_PROFILE  # noqa: E402
from dd3d.provenance import command, machine  # noqa: E402

LIMIT = 1.05


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
    seconds = {1: [], args.iterations: []}
    with tempfile.TemporaryDirectory() as tmp:
        for pair in range(args.pairs):
            order = [1, args.iterations] if pair % 2 == 0 else [args.iterations, 1]
            for every in order:
                cfg = load_config(REPO / "configs" / "shapes.yaml", [*base, f"distill.checkpoint_every={every}"])
                summary = distill(cfg, Path(tmp) / f"run-{pair}-{every}", progress=False)
                seconds[every].append(summary["wall_time_s"])
                print(f"pair {pair}: checkpoint_every={every:<4d} loop {summary['wall_time_s']:.2f} s")
    ratio = sum(seconds[1]) / sum(seconds[args.iterations])
    verdict = "PASS" if ratio <= LIMIT else "FAIL"
    print(f"{verdict}: checkpoint_every=1 / every {args.iterations} = {ratio:.3f} (limit {LIMIT})")
    return 0 if ratio <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
