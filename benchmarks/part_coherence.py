"""Part coherence of DD3D's generated segmentation clouds against iterations, for several ω0.

    python -m benchmarks.part_coherence --quick   # built-in parts set, cpc 1, 0-40 iterations, ω0 30/100/400 (one CPU core: ≈ 1 h)
    python -m benchmarks.part_coherence --paper   # the same at 0-400 iterations (GPU)

Part coherence (``dd3d.metrics.part_coherence``) is the within-part share of a cloud's point variance:
about 1 when each point's part label (its noise interval, Eq. 14) says nothing about where the point is,
lower when every part is a compact region (the real shapes of the built-in set: printed as the reference).
Each ω0 is trained from noise (the paper) and from the warm start (``distill.generator.init=real``) with
the segmentation grid's loop (benchmarks/segmentation.py); the set is measured at 2,048 points after each
listed iteration. No evaluation: the cost is the distillation alone.
"""
from __future__ import annotations

import time

import numpy as np
import torch
from benchmarks.harness import REPO, profile_parser, profile_of
from benchmarks.segmentation import SEG_BUDGET

from dd3d.config import load_config
from dd3d.distill import build_method
from dd3d.distill.run import build_context
from dd3d.metrics import part_coherence
from dd3d.provenance import command, machine

OMEGAS = [30.0, 100.0, 400.0]
CHECKPOINTS = {"quick": [0, 5, 10, 20, 40], "paper": [0, 25, 50, 100, 200, 400]}
POINTS = 2048


def mean_coherence(points: np.ndarray, parts: np.ndarray) -> float:
    return float(np.mean([part_coherence(c, p) for c, p in zip(points, parts)]))


def main() -> None:
    parser = profile_parser(__doc__)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    checkpoints = CHECKPOINTS[profile_of(parser, args)]
    began = time.perf_counter()
    rows: dict[str, list[float]] = {}
    real = None
    for init in ("noise", "real"):
        for omega in OMEGAS:
            cfg = load_config(REPO / "configs" / "shapes-seg.yaml", SEG_BUDGET + [
                "distill.method=dd3d", "distill.cpc=1", f"distill.iterations={checkpoints[-1]}", f"seed={args.seed}",
                f"distill.generator.omega0={omega}", f"distill.generator.init={init}"])
            ctx = build_context(cfg, torch.device("cpu"))
            if real is None:
                real = mean_coherence(ctx.real_full.points, ctx.real_full.parts)
            torch.manual_seed(cfg.seed)
            method = build_method("dd3d", ctx)
            values = []
            for iteration in range(checkpoints[-1] + 1):
                if iteration in checkpoints:
                    synthetic = method.synthetic(POINTS, torch.Generator().manual_seed(0))
                    values.append(mean_coherence(synthetic.points, synthetic.parts))
                if iteration < checkpoints[-1]:
                    method.step(iteration)
            rows[f"{init}, ω0 {omega:g}"] = values
            print(f"{init}, ω0 {omega:g}: " + ", ".join(f"{v:.2f}" for v in values), flush=True)
    print(f"\nPart coherence of DD3D's clouds (built-in parts set, cpc 1), {(time.perf_counter() - began) / 60:.1f} min")
    print(f"command: {command()}\nmachine: {machine()}\nsettings: {' '.join(SEG_BUDGET)}")
    print(f"real training shapes: {real:.2f}\n")
    print("| start, ω0 | " + " | ".join(f"it {n}" for n in checkpoints) + " |\n|---|" + "---|" * len(checkpoints))
    for name, values in rows.items():
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + " |")


if __name__ == "__main__":
    main()
