"""Distillation across processes: iteration time with 1, 2, … processes, the bytes all-reduced per
iteration, and a scaling model fitted to them.

    python -m benchmarks.distributed --quick    # CPU, Gloo over loopback: built-in shapes, 8 classes, 1 and 2 processes
    python -m benchmarks.distributed --paper --processes 1 2 4 8   # GPU node, NCCL: MVPNet100 (100 classes, cpc 10)

Every measurement is ``torchrun --standalone --nproc-per-node N -m dd3d distill ...`` (a fresh job);
its iteration time is ``wall_time_s / iterations`` of distill.json (the loop only, no start-up) and
its volume ``all_reduce_bytes_per_iteration``. The loss curves of every N are compared with N = 1.

Scaling model, per iteration, K classes over N processes:

    T(N) ≈ S + C · ceil(K/N) / K + 2 (N−1)/N · B / β

S is what every process repeats (fresh network, inner loop on the whole synthetic set, regenerating
it), C the class-matching work of one process, B the bytes all-reduced per iteration: per outer
step the float32 gradients of generator + rotator (or of the point tensors for GM), one flag per
tensor and the loss, plus BatchNorm moments for backbones with BatchNorm; B does not grow with N.
β is the all-reduce bus bandwidth (a ring all-reduce moves 2(N−1)/N · B per process); the latency of
one all-reduce per outer step is neglected. S and C come from T(1) and T(2), neglecting the loopback
transfer time.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.harness import REPO, profile_of, profile_parser

from dd3d.provenance import command, machine

PROFILES = {
    "quick": {"config": "shapes.yaml", "processes": [1, 2], "threads": 1, "overrides": [
        "data.max_classes=8", "data.resolution=256", "data.builtin.train_per_class=20", "data.builtin.test_per_class=2",
        "distill.resolution=256", "eval.resolution=256", "distill.real_batch=16", "distill.iterations=3",
        "distill.outer_loop=4", "distill.inner_loop=1", "device=cpu"]},
    "paper": {"config": "mvpnet100.yaml", "processes": [1, 2, 4, 8], "threads": 0, "overrides": [
        "distill.cpc=10", "distill.iterations=3", "device=cuda"]},
}


def measure(config: str, overrides: list[str], method: str, processes: int, threads: int) -> dict:
    """One torchrun job; its distill.json numbers, or ``{"error": ...}``."""
    with tempfile.TemporaryDirectory() as tmp:
        sets = sum((["--set", s] for s in [*overrides, f"distill.method={method}"]), [])
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                                 f"--nproc-per-node={processes}", "-m", "dd3d", "distill", "--config",
                                 str(REPO / "configs" / config), "--out", tmp, *sets],
                                cwd=REPO, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            errors = [line for line in result.stderr.splitlines() if line.startswith("dd3d: error")]
            return {"error": (errors or result.stderr.strip().splitlines() or ["failed"])[0]}
        summary = json.loads((Path(tmp) / "distill.json").read_text())
    return {"processes": processes, "seconds": summary["wall_time_s"] / summary["iterations"],
            "bytes": summary["all_reduce_bytes_per_iteration"], "losses": summary["loss_curve"],
            "classes": len(summary["class_names"]), "device": summary["device"]}


def fit(rows: dict[int, dict]) -> tuple[float, float]:
    """(S, C) of the scaling model from the 1- and 2-process times."""
    t1, t2, k = rows[1]["seconds"], rows[2]["seconds"], rows[1]["classes"]
    c = (t1 - t2) / (1 - math.ceil(k / 2) / k)
    return t1 - c, c


def main() -> None:
    parser = profile_parser(__doc__)
    parser.add_argument("--method", choices=["dd3d", "gm"], default="dd3d")
    parser.add_argument("--processes", type=int, nargs="+", help="process counts (default: the profile's)")
    parser.add_argument("--repeats", type=int, default=2, help="jobs per process count; the fastest counts (default 2)")
    parser.add_argument("--bandwidth", type=float, default=20.0,
                        help="all-reduce bus bandwidth β in GB/s for the predictions (default 20, PCIe-class)")
    args = parser.parse_args()
    name = profile_of(parser, args)
    spec = PROFILES[name]
    counts = sorted(set([1, 2] + (args.processes or spec["processes"])))
    rows = {}
    for n in counts:
        runs = [measure(spec["config"], spec["overrides"], args.method, n, spec["threads"]) for _ in range(args.repeats)]
        failed = [run["error"] for run in runs if "error" in run]
        if failed:
            sys.exit(f"{n} processes: {failed[0]}")
        rows[n] = min(runs, key=lambda run: run["seconds"])
    first = rows[1]
    print(f"Distributed distillation ({name} profile): {args.method}, {spec['config']} {' '.join(spec['overrides'])}; "
          f"fastest of {args.repeats} jobs per process count")
    print(f"command: {command()}\nmachine: {machine()}\ndevice per process: {first['device']}\n")
    print("| processes | s / iteration | speed-up | all-reduced / iteration | max loss difference vs 1 process |")
    print("| --- | --- | --- | --- | --- |")
    for n, row in rows.items():
        diff = max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(first["losses"], row["losses"]))
        volume, same = (f"{row['bytes'] / 1e6:.3f} MB", f"{diff:.1e}") if n > 1 else ("—", "—")
        print(f"| {n} | {row['seconds']:.2f} | {first['seconds'] / row['seconds']:.2f}× | {volume} | {same} |")
    s, c = fit(rows)
    k, volume = first["classes"], rows[2]["bytes"]
    print(f"\nscaling model fitted to 1 and 2 processes: S = {s:.2f} s repeated by every process, C = {c:.2f} s of "
          f"class matching ({k} classes), B = {volume / 1e6:.3f} MB all-reduced per iteration; at β = {args.bandwidth:g} GB/s:")
    for n in (4, 8, 16):
        if n <= k:
            t = s + c * math.ceil(k / n) / k + 2 * (n - 1) / n * volume / (args.bandwidth * 1e9)
            print(f"  N = {n}: {t:.2f} s / iteration ({first['seconds'] / t:.2f}×)")

if __name__ == "__main__":
    main()
