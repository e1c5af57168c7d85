"""DD3D on a GPU: the paper profile of ModelNet10 aligned cpc 1 and reference-short, in one time-boxed run.

    PYTHONPATH=. python -m benchmarks.gpu_fidelity --data runs/data/modelnet10_hdf5_1024   # CUDA, ≤ 8 min
    PYTHONPATH=. python -m benchmarks.gpu_fidelity --toy                                   # CPU, tiny, ~1 min

Prepared for a session lent a GPU (torch ≥ 2.11, h5py, numpy, pyyaml, tqdm; no open3d, no network): copy
ModelNet10 into an ignored folder of the checkout and pass it as ``--data``. Cells, seed 0, in this
order: reference-short (benchmarks/reference.py: 20 iterations × 10 outer × 1 inner, 256 points, the
reference evaluation) for dd3d, gm and random, then the paper profile (configs/modelnet10.yaml as shipped:
400 iterations, the Table-8 evaluation) for dd3d, gm and random. A cell's distillation stops at the
deadline (``--budget`` seconds from the start; its run folder keeps the checkpoint, so
``dd3d distill --resume`` continues it later) and is then not evaluated; a cell not started by the deadline
is listed as skipped. The evaluation of a finished distillation always runs. Prints a markdown table (OA
mean ± std over the evaluation runs, final epoch; distillation and evaluation seconds; iterations done)
with the command, machine and GPU, and writes it with the raw numbers to ``--out``/gpu-fidelity.json.

``--toy`` runs every code path on the CPU at tiny size (3 classes of the built-in shapes, small networks,
4 iterations, 2 evaluation epochs, a 60 s deadline; ``--budget 1`` shows the stopped and skipped cells); its
numbers mean nothing.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from benchmarks.harness import REPO, TOY_SIZES
from benchmarks.reference import PROFILES as REFERENCE_PROFILES
from dd3d.config import load_config
from dd3d.distill.run import distill
from dd3d.errors import DD3DError
from dd3d.evaluate import evaluate_synthetic
from dd3d.io import write_json
from dd3d.provenance import command, machine

METHODS = ["dd3d", "gm", "random"]
#: (profile, overrides); the paper profile is the config as shipped (aligned cpc 1)
PROFILES = {"reference-short": REFERENCE_PROFILES["quick"], "paper": ["data.setting=aligned", "distill.cpc=1"]}
TOY = [*TOY_SIZES, "data.resolution=64", "distill.resolution=32", "distill.real_batch=2", "eval.resolution=64",
       "distill.iterations=4", "distill.outer_loop=1", "distill.inner_loop=1", "eval.epochs=2", "eval.runs=1"]


class Deadline(KeyboardInterrupt):
    """The time box ran out during a distillation (an interrupt, so the run keeps its checkpoint as on Ctrl-C)."""


def run_cell(config: Path, overrides: list[str], folder: Path, deadline: float) -> dict:
    """Distil (stopping at ``deadline``, a ``time.perf_counter`` value) and, if the distillation finished,
    evaluate; the cell's numbers."""
    cfg = load_config(config, overrides)
    began = time.perf_counter()
    done = {"iterations": 0}

    def stop_at_deadline(iteration: int, loss: float) -> None:
        done["iterations"] = iteration
        if time.perf_counter() > deadline:
            raise Deadline

    try:
        summary = distill(cfg, folder, resume=(folder / "checkpoint.pt").is_file(), progress=False,
                          on_iteration=stop_at_deadline)
    except Deadline:
        return {"iterations": done["iterations"], "of": cfg.distill.iterations, "stopped": True,
                "distill_s": round(time.perf_counter() - began, 1)}
    distill_s = time.perf_counter() - began
    metrics = evaluate_synthetic(cfg, folder, folder / "eval", progress=False)
    return {"iterations": summary["iterations"], "of": summary["iterations"], "stopped": False,
            "distill_s": round(distill_s, 1), "eval_s": round(time.perf_counter() - began - distill_s, 1),
            "oa_mean": 100 * metrics["oa_mean"], "oa_std": 100 * metrics["oa_std"], "device": summary["device"]}


def row(profile: str, method: str, cell: dict | None) -> str:
    if cell is None:
        return f"| {profile} | {method} | skipped (deadline) | | | |"
    score = "not evaluated (stopped)" if cell["stopped"] else f"{cell['oa_mean']:.1f} ± {cell['oa_std']:.1f}"
    return (f"| {profile} | {method} | {score} | {cell['iterations']} / {cell['of']} | {cell['distill_s']:.0f} | "
            f"{cell.get('eval_s', 0):.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--toy", action="store_true", help="tiny CPU run of every code path (numbers mean nothing)")
    parser.add_argument("--data", help="ModelNet10 h5 folder (default: the config's ../shared/data copy)")
    parser.add_argument("--budget", type=float, help="seconds after which distillations stop (default 450; --toy 60)")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "gpu-fidelity", help="folder of the run folders")
    args = parser.parse_args()
    if not args.toy and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --toy to check the script on the CPU")
    began = time.perf_counter()
    deadline = began + (args.budget if args.budget is not None else 60.0 if args.toy else 450.0)
    config = REPO / "configs" / ("shapes.yaml" if args.toy else "modelnet10.yaml")
    common = ["seed=0", "device=cpu" if args.toy else "device=cuda"]
    if args.data is not None:
        common.append(f"data.root={Path(args.data).resolve()}")
    cells: dict[str, dict | None] = {}
    for profile, overrides in PROFILES.items():
        for method in METHODS:
            key = f"{profile}/{method}"
            if time.perf_counter() > deadline:
                cells[key] = None
                continue
            toy = TOY if args.toy else []  # last: the toy's sizes win over the profile's
            try:
                cells[key] = run_cell(config, [*overrides, *common, f"distill.method={method}", *toy],
                                      args.out / profile / method, deadline)
            except DD3DError as exc:  # e.g. --data without the ModelNet10 files: one line, not a traceback
                raise SystemExit(f"gpu_fidelity: {exc}") from None
            print(key, json.dumps(cells[key]), flush=True)
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() and not args.toy else "CPU (toy)"
    lines = [f"ModelNet10 aligned cpc 1, seed 0, on {gpu}; torch {torch.__version__}; "
             f"total {time.perf_counter() - began:.0f} s", f"command: {command()}", f"machine: {machine()}", "",
             "| profile | method | OA % (final epoch, eval runs) | iterations | distill s | eval s |",
             "|---|---|---|---|---|---|"]
    lines += [row(*key.split("/"), cell) for key, cell in cells.items()]
    print("\n".join(lines))
    write_json(args.out / "gpu-fidelity.json", {"gpu": gpu, "cells": cells, "table": lines})


if __name__ == "__main__":
    main()
