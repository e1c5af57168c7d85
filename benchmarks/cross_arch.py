"""Table-3-style cross-architecture grid: sets distilled with PointNet, evaluated by training other backbones.

    python -m benchmarks.cross_arch --quick    # ModelNet10, GM / DD3D at cpc 10, small backbones, reduced settings (printed)
    python -m benchmarks.cross_arch --paper    # ModelNet10, GM / DM / DD3D, paper settings, full backbones (GPU)

The distilled sets are the seed-0 cells of benchmarks/accuracy.py with the same profile (same names,
settings and default folder), so after the accuracy grid only the evaluations run here. Each backbone's
evaluation goes to ``<cell>/xeval-<backbone>``; the table has one column per backbone (``dd3d table
--by backbone``).
"""
from __future__ import annotations

from benchmarks.accuracy import budget, cell_name
from benchmarks.grid import REPO, Cell, Evaluation, grid_parser, run_grid
from benchmarks.harness import profile_of

from dd3d.models import CLASSIFIERS

# per profile: which of the accuracy grid's cpc-10 sets, and the evaluation settings on top of its own
# (quick: named deviations from the paper that fit about 30 minutes of a 2-core CPU)
CROSS = {
    "quick": {"methods": ["gm", "dd3d"],
              "evaluation": ["model.size=small", "eval.resolution=256", "eval.runs=1", "eval.epochs=20",
                             "eval.step_size=10"]},
    "paper": {"methods": ["gm", "dm", "dd3d"], "evaluation": []},
}


def main() -> None:
    parser = grid_parser(__doc__, "backbones", list(CLASSIFIERS))
    args = parser.parse_args()
    name = profile_of(parser, args)
    cross = CROSS[name]
    evaluations = [Evaluation(f"xeval-{b}", cross["evaluation"], b) for b in args.backbones]
    cells = [Cell(cell_name("aligned", 10, method, 0), "modelnet10.yaml", budget(method, name) + [
                  "data.setting=aligned", f"distill.method={method}", "distill.cpc=10", "seed=0"], evaluations)
             for method in cross["methods"]]
    run_grid(cells, args.out or REPO / "runs" / "bench-accuracy" / name,
             f"Cross-architecture grid ({name} profile)", budget("dd3d", name) + cross["evaluation"], by="backbone")

if __name__ == "__main__":
    main()
