"""Table-1-style accuracy grid: every method × dataset × setting × cpc, distilled then evaluated.

    python benchmarks/accuracy.py --quick    # CPU profile (~30-40 min on 2 cores; reduced settings, printed)
    python benchmarks/accuracy.py --paper    # the configs' paper settings (GPU; hours)

Each cell is a run folder under ``--out`` (default runs/bench-accuracy/<profile>): `dd3d distill` then
`dd3d eval`; finished cells are skipped, so an interrupted grid resumes. The table at the end is
`dd3d table` over all cells (final-epoch OA, mean ± std over evaluation runs). Datasets whose files
are absent (ModelNet10 outside this build machine) are reported as skipped.
"""
from __future__ import annotations

from pathlib import Path

from grid import REPO, Cell, grid_parser, run_grid
from harness import profile_of

METHODS = ["random", "herding", "kcenter", "gm", "dm", "tm", "dd3d"]

# Reduced settings that fit a 2-core CPU; every value here is a named deviation from the paper.
QUICK = [
    "distill.iterations=10", "distill.resolution=256", "distill.real_batch=16",
    "distill.outer_loop=5", "distill.inner_loop=1",
    "distill.tm.experts=1", "distill.tm.expert_epochs=3", "distill.tm.max_start_epoch=1",
    "distill.tm.target_epochs=1", "distill.tm.student_steps=5",
    "eval.resolution=512", "eval.epochs=30", "eval.step_size=15", "eval.runs=2", "eval.test_every=0",
]
PROFILES = {
    "quick": {"datasets": {"modelnet10.yaml": [], "shapes.yaml": ["data.builtin.train_per_class=40"]},
              "settings": ["aligned", "rotated"], "cpcs": [1, 10], "overrides": QUICK},
    "paper": {"datasets": {"modelnet10.yaml": [], "shapes.yaml": []},
              "settings": ["aligned", "rotated"], "cpcs": [1, 10], "overrides": []},
}


def main() -> None:
    parser = grid_parser(__doc__, "methods", METHODS)
    args = parser.parse_args()
    name = profile_of(parser, args)
    spec = PROFILES[name]
    cells = [Cell(f"{Path(config).stem}-{setting}-cpc{cpc}-{method}", config, spec["overrides"] + extra + [
                 f"data.setting={setting}", f"distill.method={method}", f"distill.cpc={cpc}"])
             for config, extra in spec["datasets"].items() for setting in spec["settings"]
             for cpc in spec["cpcs"] for method in args.methods.split(",")]
    run_grid(cells, args.out or REPO / "runs" / "bench-accuracy" / name, f"Accuracy grid ({name} profile)",
             spec["overrides"])


if __name__ == "__main__":
    main()
