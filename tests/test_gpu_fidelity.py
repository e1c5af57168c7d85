"""The time box of the prepared GPU script (benchmarks/gpu_fidelity.py), run on the CPU at toy size."""
from __future__ import annotations

import time
from pathlib import Path

from conftest import REPO

from benchmarks.gpu_fidelity import TOY, run_cell

CONFIG = REPO / "configs" / "shapes.yaml"
OVERRIDES = ["seed=0", "device=cpu", "distill.method=dd3d", *TOY]


def test_a_distillation_past_the_deadline_stops_with_its_checkpoint_and_resumes(tmp_path: Path) -> None:
    stopped = run_cell(CONFIG, OVERRIDES, tmp_path, deadline=time.perf_counter())
    assert (stopped["stopped"], stopped["iterations"], stopped["of"]) == (True, 1, 4)
    assert (tmp_path / "checkpoint.pt").is_file() and not (tmp_path / "eval").exists()
    finished = run_cell(CONFIG, OVERRIDES, tmp_path, deadline=time.perf_counter() + 600)
    assert (finished["stopped"], finished["iterations"]) == (False, 4)
    assert 0 <= finished["oa_mean"] <= 100 and (tmp_path / "eval" / "metrics.json").is_file()
