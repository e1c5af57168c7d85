"""Time and memory of one distillation iteration: GM vs DD3D by cpc, DD3D by resolution, TM by unroll length.

    python -m benchmarks.memory --quick   # 5 classes, 1 outer step, cpc 1/5/10/50 at 256 points; TM unroll 5…40
    python -m benchmarks.memory --paper   # 10 classes, cpc 1/5/10/50 at 1,024 points

Paper Fig. 6(b): DD3D's synthetic-set memory grows slower than DD's with cpc (≈4× smaller at cpc 10);
Fig. 6(c): time and memory per iteration of DD3D at 256/512/1,024 training points; Table 1's "out of
memory" TM cells: TM's memory grows with the number of unrolled student steps. Every measurement
runs in a fresh child process: peak memory = peak resident set during the iteration (VmHWM reset
before it) minus the resident set before it (CPU), or torch's peak allocation (CUDA).

The measurements go to ``--out`` (default runs/bench-memory/<profile>) as ``memory.json``, with the
plots of Fig. 6 beside it (``dd3d plot`` draws the same from the folder).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from benchmarks.harness import REPO, profile_of, profile_parser, run_child


def child(spec: dict) -> dict:
    """Run one iteration of ``spec['method']`` and report seconds and memory (runs in a fresh process)."""
    import torch

    from dd3d.config import load_config
    from dd3d.device import resolve_device
    from dd3d.distill import build_method
    from dd3d.distill.run import build_context

    cfg = load_config(REPO / "configs" / spec["config"], spec["overrides"])
    device = resolve_device(cfg.device, cfg.threads)
    ctx = build_context(cfg, device)
    method = build_method(cfg.distill.method, ctx)

    def status_bytes(field: str) -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak resident set (VmHWM) so set-up (data, TM experts) does not count
    before = status_bytes("VmRSS")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    method.step(0)
    seconds = time.perf_counter() - start
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
    else:
        peak = status_bytes("VmHWM") - before
    return {"seconds": seconds, "peak_bytes": max(peak, 0), "synthetic_bytes": method.parameter_bytes()}


def measure(config: str, overrides: list[str], measurements: list[dict], sweep: str, x: int, method: str) -> dict:
    """One measurement in a child process, also recorded in ``measurements`` (for memory.json)."""
    result = run_child(__spec__.name, {"config": config, "overrides": overrides})
    measurements.append({"sweep": sweep, "x": x, "method": method, **result})
    return result


def fmt(r: dict, key: str, scale: float, unit: str) -> str:
    return r["error"] if "error" in r else f"{r[key] / scale:.2f} {unit}"


def main() -> None:
    parser = profile_parser(__doc__, child=True)
    parser.add_argument("--out", type=Path, help="folder for memory.json and the plots")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    name = profile_of(parser, args)
    quick = name == "quick"
    from dd3d.io import write_json
    from dd3d.plots import MEMORY_FILE, plot_benchmark
    from dd3d.provenance import command, machine

    out = args.out or REPO / "runs" / "bench-memory" / name
    measurements: list[dict] = []

    classes, points = (5, 256) if quick else (10, 1024)
    base = ["data.builtin.train_per_class=40", f"data.max_classes={classes}", "distill.outer_loop=1",
            "distill.inner_loop=0", "distill.real_batch=32"]
    print(f"command: {command()}\nmachine: {machine()}\n")
    print(f"One iteration (1 outer step, {classes} classes, 32 real clouds per class, built-in shapes)\n")
    print(f"Synthetic-set size and peak memory by cpc at {points} points (Fig. 6b)\n")
    print("| cpc | GM synthetic bytes | DD3D synthetic bytes | GM peak | DD3D peak | GM s/it | DD3D s/it |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for cpc in (1, 5, 10, 50):
        row = {m: measure("shapes.yaml", base + [f"distill.method={m}", f"distill.cpc={cpc}",
                                                 f"distill.resolution={points}", f"data.resolution={points}"],
                          measurements, "cpc", cpc, m)
               for m in ("gm", "dd3d")}
        print(f"| {cpc} | {fmt(row['gm'], 'synthetic_bytes', 2**20, 'MiB')} | "
              f"{fmt(row['dd3d'], 'synthetic_bytes', 2**20, 'MiB')} | {fmt(row['gm'], 'peak_bytes', 2**30, 'GiB')} | "
              f"{fmt(row['dd3d'], 'peak_bytes', 2**30, 'GiB')} | {fmt(row['gm'], 'seconds', 1, 's')} | "
              f"{fmt(row['dd3d'], 'seconds', 1, 's')} |", flush=True)
    print("\nDD3D time and memory per iteration by training resolution, cpc 10 (Fig. 6c)\n")
    print("| points | s / iteration | peak memory |\n| --- | --- | --- |")
    for res in (256, 512, 1024):
        r = measure("shapes.yaml", base + ["distill.method=dd3d", "distill.cpc=10", f"distill.resolution={res}",
                                           f"data.resolution={res}"], measurements, "resolution", res, "dd3d")
        print(f"| {res} | {fmt(r, 'seconds', 1, 's')} | {fmt(r, 'peak_bytes', 2**30, 'GiB')} |", flush=True)
    print(f"\nTM memory by unrolled student steps, cpc 10, {points} points (Table 1's out-of-memory cells)\n")
    print("| student steps | s / iteration | peak memory |\n| --- | --- | --- |")
    for steps in (5, 10, 20, 40):
        r = measure("shapes.yaml", base + ["distill.method=tm", "distill.cpc=10", f"distill.resolution={points}",
                                           f"data.resolution={points}", f"distill.tm.student_steps={steps}",
                                           "distill.tm.experts=1", "distill.tm.expert_epochs=2",
                                           "distill.tm.max_start_epoch=1", "distill.tm.target_epochs=1",
                                           f"out={REPO / 'runs' / 'bench-memory'}"], measurements, "student_steps", steps,
                    "tm")
        print(f"| {steps} | {fmt(r, 'seconds', 1, 's')} | {fmt(r, 'peak_bytes', 2**30, 'GiB')} |", flush=True)
    write_json(out / MEMORY_FILE, {"command": command(), "machine": machine(), "classes": classes, "points": points,
                                   "measurements": measurements})
    print("\nfigures:", *plot_benchmark(out), sep="\n  ")


if __name__ == "__main__":
    main()
