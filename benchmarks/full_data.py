"""Full-data PointNet on the built-in shapes and on ModelNet10, plus a 1-cloud-per-class reference.

    python -m benchmarks.full_data --quick    # CPU budget: 8/3 epochs at 512 points (printed), ~15 min on 2 cores
    python -m benchmarks.full_data --paper    # the configs' own settings (200 epochs), for GPU users

Prints a markdown table (dataset, training set, epochs, OA, mAcc, wall time) with the command and
the machine. The 1-per-class row (first cloud of each class, same epochs) shows how much the built-in
problem needs the full data — the gap distillation is meant to close.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from dd3d.config import load_config
from dd3d.data import load_dataset
from dd3d.device import resolve_device
from dd3d.errors import DD3DError
from dd3d.provenance import command, machine
from dd3d.train import Task, fit, make_rotator, new_run

REPO = Path(__file__).resolve().parents[1]
PROFILES = {
    # dataset config -> overrides; quick: epochs and points reduced to fit a CPU budget
    "quick": {"shapes.yaml": ["train.epochs=8", "data.resolution=512"],
              "modelnet10.yaml": ["train.epochs=3", "data.resolution=512"]},
    "paper": {"shapes.yaml": [], "modelnet10.yaml": []},  # the configs' own settings (200 epochs, 1,024 points)
}


def first_per_class(labels: np.ndarray, k: int) -> np.ndarray:
    """Indices of the first ``k`` clouds of every class."""
    return np.concatenate([np.flatnonzero(labels == c)[:k] for c in np.unique(labels)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    profile = parser.add_mutually_exclusive_group(required=True)
    profile.add_argument("--quick", action="store_true", help="reduced epochs for a 2-core CPU")
    profile.add_argument("--paper", action="store_true", help="the configs' full settings")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="extra config overrides")
    args = parser.parse_args()
    name = "quick" if args.quick else "paper"
    rows = []
    for config, reduced in PROFILES[name].items():
        overrides = reduced + list(args.overrides)
        cfg = load_config(REPO / "configs" / config, overrides)
        try:
            splits = load_dataset(cfg)
        except DD3DError as exc:  # a missing real dataset is reported, not fatal
            rows.append(f"| {config} | — | — | — | skipped: {exc} | | |")
            continue
        device = resolve_device(cfg.device, cfg.threads)
        task = Task.of(cfg.task, splits.train)
        subsets = {"full": splits.train}
        if config == "shapes.yaml":
            subsets["1 per class"] = splits.train.subset(first_per_class(splits.train.labels, 1))
        for label, train in subsets.items():
            run = new_run(task, cfg.model.name, cfg.train, device, cfg.seed, make_rotator(cfg), cfg.model.size)
            start = time.perf_counter()
            metrics = fit(run, task, train, splits.test, cfg.train, cfg.augment, device)
            seconds = time.perf_counter() - start
            rows.append(f"| {config} | {label} ({len(train)} clouds) | {cfg.data.resolution} | {cfg.train.epochs} | "
                        f"{100 * metrics['oa']:.1f} | {100 * metrics['macc']:.1f} | {seconds / 60:.1f} min |")
            print(rows[-1], flush=True)
    print(f"\nFull-data PointNet ({name} profile; {'epochs and points reduced to fit a CPU budget' if args.quick else 'config settings'})")
    print(f"command: {command()}\nmachine: {machine()}\n")
    print("| config | training set | points | epochs | OA % | mAcc % | wall time |\n| --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
