"""Tiny ``dd3d distill`` run folders for the tests of ``dd3d-lab --run`` / ``--watch`` (seconds each)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO
from test_engine import TINY_LAB

import torch

from dd3d.config import load_config
from dd3d.distill.run import distill

# three classes of the built-in shapes, tiny clouds and networks, two iterations
TINY_RUN = [*TINY_LAB, "distill.iterations=2", "distill.outer_loop=1", "distill.inner_loop=1"]


def make_run(out: Path, method: str, cpc: int, *extra: str, config: str = "shapes.yaml") -> Path:
    """Distil the tiny built-in set with ``method`` into the run folder ``out`` (in this process)."""
    cfg = load_config(REPO / "configs" / config, [*TINY_RUN, f"distill.method={method}",
                                                          f"distill.cpc={cpc}", *extra])
    distill(cfg, out, progress=False)
    return out


def tiny_runs(root: Path) -> dict[str, Path]:
    """A DD3D run (generator.pt, cpc 2), a GM run (synthetic.h5 only) and a GM run of two classes."""
    threads = torch.get_num_threads()  # distill sets it for the whole process
    made = {"dd3d": make_run(root / "dd3d", "dd3d", 2), "gm": make_run(root / "gm", "gm", 1),
            "two": make_run(root / "two", "gm", 1, "data.max_classes=2")}
    torch.set_num_threads(threads)
    return made


def distill_process(out: Path, *args: str) -> subprocess.Popen:
    """``dd3d distill ARGS`` in another process writing ``out`` (``--config``-less args resume)."""
    command = [sys.executable, "-m", "dd3d", "distill", *args]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_watched_run(out: Path, iterations: int, method: str = "dd3d") -> subprocess.Popen:
    """A tiny DD3D distillation of ``iterations`` iterations, checkpointing every iteration."""
    sets = [a for item in [*TINY_RUN, f"distill.iterations={iterations}", "distill.checkpoint_every=1"]
            for a in ("--set", item)]
    return distill_process(out, "--config", "configs/shapes.yaml", "--method", method, "--cpc", "1",
                           "--out", str(out), *sets)
