"""Distillation speed on a GPU: the per-class loop vs classes batched, by cpc, and the lab engine's speed.

    PYTHONPATH=. python -m benchmarks.gpu_speed --data runs/data/modelnet10_hdf5_1024   # CUDA, ≤ 8 min
    PYTHONPATH=. python -m benchmarks.gpu_speed --toy                                   # CPU, tiny, ~1 min

Prepared for a session lent a GPU (torch ≥ 2.11, h5py, numpy, pyyaml, tqdm; no open3d, no network):
copy ModelNet10 (``modelnet10_hdf5_1024``) into an ignored folder of the checkout (``runs/``) and pass
it as ``--data``. Cells: DD3D on ModelNet10 aligned at 1,024 points, 32 real clouds per class, the
release's schedule by cpc (1: 10 outer × 1 inner, 10: 20 × 1, 50: 40 × 5), ``distill.real_grad``
analytic, for cpc 1, 10 and 50 with ``distill.class_batching`` loop and batched (TF32 allowed in the
batched step). Each cell: one warm-up iteration, then the median of ``--iterations`` timed ones
(synchronised), peak GPU memory of the cell, and the first timed iteration's loss for loop vs batched
(equal up to TF32 rounding). Then the lab engine (built-in shapes, lab profile, on the GPU): its
iterations per second for GM and DD3D. Cells stop once ``--budget`` seconds have passed (the rest are
listed as skipped). Prints a markdown table with the command and the machine, and with ``--json``
writes the raw numbers.

``--toy`` runs every code path on the CPU at tiny size (3 classes of the built-in shapes, 64 points,
small PointNet, cpc 1 and 2, 2 outer steps, 1 timed iteration, 3 s of engine) so the script is known to
run before a GPU is at hand; its numbers mean nothing.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from benchmarks.harness import REPO, TOY_SIZES
from benchmarks.labtools import engine_speed
from dd3d.config import load_config
from dd3d.device import describe, resolve_device
from dd3d.distill import build_method
from dd3d.distill.run import build_context
from dd3d.provenance import command, machine

SCHEDULE = {1: (10, 1), 10: (20, 1), 50: (40, 5)}  # (outer, inner): the release's aligned schedule
FULL = {"config": "modelnet10.yaml", "cpcs": [1, 10, 50], "points": 1024,
        "extra": ["distill.real_batch=32"], "engine_seconds": 20.0}
TOY = {"config": "shapes.yaml", "cpcs": [1, 2], "points": 64,
       "extra": ["distill.real_batch=4", *TOY_SIZES],
       "engine_seconds": 3.0}


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cell(profile: dict, cpc: int, batching: str, iterations: int, device_name: str, data: str | None,
         toy: bool) -> dict:
    """One (cpc, batching) measurement: median s/iteration, peak GPU memory, first timed loss."""
    outer, inner = (2, 1) if toy else SCHEDULE[cpc]
    overrides = ["data.setting=aligned", "distill.method=dd3d", f"distill.cpc={cpc}", f"distill.outer_loop={outer}",
                 f"distill.inner_loop={inner}", f"distill.resolution={profile['points']}",
                 f"data.resolution={profile['points']}", f"eval.resolution={profile['points']}",
                 "distill.real_grad=analytic", f"distill.class_batching={batching}", f"device={device_name}",
                 f"distill.iterations={iterations + 1}", "seed=0", *profile["extra"]]
    if data is not None:
        overrides.append(f"data.root={Path(data).resolve()}")
    cfg = load_config(REPO / "configs" / profile["config"], overrides)
    device = resolve_device(cfg.device, cfg.threads)
    ctx = build_context(cfg, device)
    torch.manual_seed(cfg.seed)
    method = build_method("dd3d", ctx)
    method.step(0)  # warm-up: kernels, allocator, cuDNN choices
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds, losses = [], []
    for iteration in range(1, iterations + 1):
        synchronise(device)
        start = time.perf_counter()
        losses.append(method.step(iteration))
        synchronise(device)
        seconds.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    return {"cpc": cpc, "batching": batching, "outer": outer, "inner": inner, "seconds": seconds,
            "s_per_iteration": statistics.median(seconds), "peak_gib": peak / 2**30, "loss": losses[0],
            "device": describe(device)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--toy", action="store_true", help="tiny CPU run of every code path (numbers mean nothing)")
    parser.add_argument("--data", help="ModelNet10 h5 folder (default: the config's ../shared/data copy)")
    parser.add_argument("--iterations", type=int, default=2, help="timed iterations per cell (after one warm-up)")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds after which no new cell starts")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args()
    profile = TOY if args.toy else FULL
    device_name = "cpu" if args.toy else "cuda"
    if not args.toy and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --toy to check the script on the CPU")
    began = time.perf_counter()
    rows, skipped = [], []
    for cpc in profile["cpcs"]:
        for batching in ("loop", "batched"):
            if time.perf_counter() - began > args.budget:
                skipped.append(f"cpc {cpc} {batching}")
                continue
            rows.append(cell(profile, cpc, batching, 1 if args.toy else args.iterations, device_name, args.data,
                             args.toy))
            print(json.dumps(rows[-1]), flush=True)
    engine = (engine_speed(profile["engine_seconds"], [f"device={device_name}"])
              if time.perf_counter() - began <= args.budget else None)

    print(f"\nDD3D on {profile['config']} at {profile['points']} points, aligned, release schedule by cpc; "
          f"{rows[0]['device'] if rows else device_name}; torch {torch.__version__}")
    print(f"command: {command()}\nmachine: {machine()}\n")
    print("| cpc | outer × inner | loop s/it | batched s/it | speed-up | loop peak GiB | batched peak GiB "
          "| loss loop / batched |\n| --- | --- | --- | --- | --- | --- | --- | --- |")
    by_key = {(r["cpc"], r["batching"]): r for r in rows}
    for cpc in profile["cpcs"]:
        loop, batched = by_key.get((cpc, "loop")), by_key.get((cpc, "batched"))
        if loop is None or batched is None:
            continue
        print(f"| {cpc} | {loop['outer']} × {loop['inner']} | {loop['s_per_iteration']:.3f} | "
              f"{batched['s_per_iteration']:.3f} | {loop['s_per_iteration'] / batched['s_per_iteration']:.2f}× | "
              f"{loop['peak_gib']:.2f} | {batched['peak_gib']:.2f} | {loop['loss']:.4f} / {batched['loss']:.4f} |")
    if skipped:
        print(f"\nskipped (over the {args.budget:.0f} s budget): {', '.join(skipped)}")
    if engine is not None:
        rates = ", ".join(f"{k} {v:.2f} it/s" for k, v in engine.items() if k != "device")
        print(f"\nlab engine (built-in shapes, lab profile, {engine['device']}): {rates}")
    print(f"\ntotal {time.perf_counter() - began:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"cells": rows, "engine": engine, "skipped": skipped}, indent=1))


if __name__ == "__main__":
    main()
