"""Table-2-style part-segmentation grid: Random / GM / DD3D at cpc 1 and 10, distilled then evaluated.

    python benchmarks/segmentation.py --quick    # built-in parts dataset, reduced settings (printed); ~30-40 min on 2 CPU cores
    python benchmarks/segmentation.py --paper    # ShapeNet-part (configs/shapenet.yaml, paper settings; GPU) + built-in

Each cell is a run folder under ``--out`` (default runs/bench-segmentation/<profile>), resumable
(benchmarks/grid.py). The table has one row per metric: point OA, instance mIoU, class mIoU (final
epoch, mean ± std over evaluation runs). ShapeNet-part is reported as skipped where it is absent.
"""
from __future__ import annotations

from pathlib import Path

from grid import REPO, Cell, grid_parser, run_grid
from harness import profile_of

METHODS = ["random", "gm", "dd3d"]

# Reduced settings that fit a 2-core CPU; every value here is a named deviation from the paper.
QUICK = [
    "data.builtin.train_per_class=30", "data.builtin.test_per_class=20", "data.resolution=512",
    "distill.iterations=10", "distill.resolution=256", "distill.real_batch=8", "distill.outer_loop=4",
    "eval.resolution=512", "eval.epochs=30", "eval.batch_size=16", "eval.runs=2", "eval.test_every=0",
]
PROFILES = {
    "quick": {"configs": ["shapes-seg.yaml"], "cpcs": [1, 10], "overrides": QUICK},
    "paper": {"configs": ["shapenet.yaml", "shapes-seg.yaml"], "cpcs": [1, 10], "overrides": []},
}


def main() -> None:
    parser = grid_parser(__doc__, "methods", METHODS)
    args = parser.parse_args()
    name = profile_of(parser, args)
    spec = PROFILES[name]
    cells = [Cell(f"{Path(config).stem}-cpc{cpc}-{method}", config,
                  spec["overrides"] + [f"distill.method={method}", f"distill.cpc={cpc}"])
             for config in spec["configs"] for cpc in spec["cpcs"] for method in args.methods.split(",")]
    run_grid(cells, args.out or REPO / "runs" / "bench-segmentation" / name,
             f"Segmentation grid ({name} profile)", spec["overrides"])


if __name__ == "__main__":
    main()
