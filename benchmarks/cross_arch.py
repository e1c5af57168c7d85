"""Table-3-style cross-architecture grid: sets distilled with PointNet, evaluated by training other backbones.

    python benchmarks/cross_arch.py --quick    # GM / DM / DD3D at cpc 10, small backbones, reduced settings (printed)
    python benchmarks/cross_arch.py --paper    # the configs' paper settings, full-size backbones (GPU)

The distilled sets are the cells of benchmarks/accuracy.py with the same profile (same names, settings
and default folder), so after the accuracy grid only the evaluations run here. Each backbone's
evaluation goes to ``<cell>/eval-<backbone>``; the table has one column per backbone (``dd3d table
--by backbone``).
"""
from __future__ import annotations

from pathlib import Path

from accuracy import PROFILES
from grid import REPO, Cell, Evaluation, grid_parser, run_grid
from harness import profile_of

METHODS = ["gm", "dm", "dd3d"]
BACKBONES = ["pointnet", "pointnet2", "dgcnn", "pct", "pointmlp", "pointnext"]
# evaluation settings of the quick profile on top of the accuracy grid's (named deviations from the paper)
QUICK_EVAL = ["model.size=small", "eval.runs=1", "eval.epochs=20", "eval.step_size=10"]


def main() -> None:
    parser = grid_parser(__doc__, "backbones", BACKBONES)
    args = parser.parse_args()
    name = profile_of(parser, args)
    spec = PROFILES[name]
    evaluation = QUICK_EVAL if args.quick else []
    evaluations = [Evaluation(f"eval-{b}", evaluation, b) for b in args.backbones.split(",")]
    cells = [Cell(f"{Path(config).stem}-aligned-cpc10-{method}", config, spec["overrides"] + extra + [
                  "data.setting=aligned", f"distill.method={method}", "distill.cpc=10"], evaluations)
             for config, extra in spec["datasets"].items() for method in METHODS]
    run_grid(cells, args.out or REPO / "runs" / "bench-accuracy" / name,
             f"Cross-architecture grid ({name} profile)", spec["overrides"] + evaluation, by="backbone")


if __name__ == "__main__":
    main()
