"""Shared fixtures: tiny configs on the built-in dataset, and a runner for the CLI."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dd3d.config import Config, load_config

REPO = Path(__file__).resolve().parents[1]

# A built-in dataset small enough for tests to train in seconds.
TINY = [
    "data.resolution=128",
    "data.builtin.train_per_class=16",
    "data.builtin.test_per_class=8",
    "train.epochs=6",
    "train.batch_size=16",
    "train.lr=0.003",
    "device=cpu",
]


@pytest.fixture
def tiny_cfg() -> Config:
    return load_config(REPO / "configs" / "shapes.yaml", TINY)


def run_cli(*args: str, module: str = "dd3d", timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <module> args`` from the repository root and capture its output."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """The process failed with exactly one non-empty stderr line containing ``fragments`` and no traceback."""
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def offscreen_rendering_problem() -> str | None:
    """None when Open3D can render offscreen here, else the reason (checked in a subprocess without
    DISPLAY: a missing Vulkan driver kills the process)."""
    probe = "import open3d.visualization.rendering as r; r.OffscreenRenderer(16, 16).render_to_image()"
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    try:
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"Open3D offscreen rendering probe failed: {exc}"
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        return f"Open3D offscreen rendering unavailable: {lines[-1] if lines else f'exit {result.returncode}'}"
    return None


def gradient_step_change(loss_fn, params: list[torch.Tensor],
                         fractions: tuple[float, ...] = (0.002, 0.001, 0.0005, 0.00025)) -> tuple[float, float, float]:
    """(loss before, loss after, first-order predicted decrease) of a plain gradient step on ``params``
    sized so that the predicted decrease is a ``fraction`` of the loss — far above float32 noise, small
    enough to stay in the linear regime. The fractions are tried largest first (backtracking, each from
    the original parameters) until a step achieves at least a quarter of its prediction (Armijo's
    condition), since max-pooling and ReLU make matching losses only piecewise smooth; ``params`` are
    left at the last step tried. ``loss_fn`` must draw the same data on every call."""
    before = loss_fn()
    grads = torch.autograd.grad(before, params)
    squared = sum(float((g.double() ** 2).sum()) for g in grads)
    start = [p.detach().clone() for p in params]
    for fraction in fractions:
        predicted = fraction * float(before.detach())
        with torch.no_grad():
            for p, p0, g in zip(params, start, grads):
                p.copy_(p0 - predicted / squared * g)
        after = float(loss_fn().detach())
        if after < float(before.detach()) - predicted / 4:
            break
    return float(before.detach()), after, predicted
