"""Table-2-style part-segmentation grid: Random / GM / DD3D (and DD3D warm-started) at cpc 1 and 10, over seeds.

    python -m benchmarks.segmentation --quick    # built-in parts dataset, 200 updates, 3 seeds (2 CPU cores: hours, resumable)
    python -m benchmarks.segmentation --paper    # ShapeNet-part (configs/shapenet.yaml, paper settings; GPU) + built-in

Quick profile (named deviations from the paper): the built-in parts set (30 training / 20 test shapes per
category, 512 points), 20 iterations × 10 outer steps × 1 inner epoch = 200 updates of the synthetic set
(whole-shape and per-part matching alternate), 256 training points drawn fresh from each real cloud per
step, 8 real clouds per category; evaluation PointNetSeg, Adam 1e-3 batch 16, 100 epochs, 512 points, 3 runs,
final epoch. The dd3d-warm column (beyond the paper) first fits each part's noise interval to that part of
the herding clouds (``distill.generator.init=real``). Each cell is a resumable run folder under ``--out``;
the table gives point OA, instance mIoU and class mIoU as mean ± std over distillation seeds.
"""
from __future__ import annotations

from benchmarks.grid import DD3D_WARM, REPO, Cell, Evaluation, column_overrides, comma_ints, grid_parser, print_figures, run_grid
from benchmarks.harness import profile_of
from benchmarks.seeds import summarise

METHODS = ["random", "gm", "dd3d", "dd3d-warm"]
VARIANTS = {"dd3d-warm": DD3D_WARM}
SEEDS = [0, 1, 2]
SEG_BUDGET = [
    "data.builtin.train_per_class=30", "data.builtin.test_per_class=20", "data.resolution=512",
    "distill.iterations=20", "distill.outer_loop=10", "distill.inner_loop=1", "distill.resolution=256",
    "distill.real_batch=8", "eval.resolution=512", "eval.epochs=100", "eval.batch_size=16", "eval.runs=3",
    "eval.test_every=0",
]
PROFILES = {
    "quick": {"configs": ["shapes-seg.yaml"], "cpcs": [1, 10], "overrides": SEG_BUDGET},
    "paper": {"configs": ["shapenet.yaml", "shapes-seg.yaml"], "cpcs": [1, 10], "overrides": []},
}
METRIC_KEYS = {"oa": "point OA", "instance_miou": "instance mIoU", "class_miou": "class mIoU"}


def cell_name(config: str, cpc: int, method: str, seed: int) -> str:
    return f"{config.removesuffix('.yaml')}-cpc{cpc}-{method}-s{seed}"


def main() -> None:
    parser = grid_parser(__doc__, "methods", METHODS, SEEDS)
    parser.add_argument("--cpcs", type=comma_ints, help="comma-separated cpc values (default: the profile's, 1,10)")
    args = parser.parse_args()
    name = profile_of(parser, args)
    spec = PROFILES[name]
    methods, seeds, cpcs = args.methods, args.seeds, args.cpcs or spec["cpcs"]
    cells = [Cell(cell_name(config, cpc, method, seed), config,
                  spec["overrides"] + [*column_overrides(method, VARIANTS), f"distill.cpc={cpc}", f"seed={seed}"], [Evaluation()])
             for config in spec["configs"] for cpc in cpcs for seed in seeds for method in methods]
    out = args.out or REPO / "runs" / "bench-segmentation" / name
    run_grid(cells, out, f"Segmentation grid ({name} profile)", spec["overrides"], table=False)
    print("\n| data | cpc | metric | " + " | ".join(methods) + " |\n|---|---|---|" + "---|" * len(methods))
    for config in spec["configs"]:
        for cpc in cpcs:
            for key, label in METRIC_KEYS.items():
                row = [summarise([out / cell_name(config, cpc, m, s) / "eval" for s in seeds], key) for m in methods]
                row = ["—" if r is None else f"{r.cell()} ({r.seeds})" for r in row]
                print(f"| {config.removesuffix('.yaml')} | {cpc} | {label} | " + " | ".join(row) + " |")
    print_figures(out)


if __name__ == "__main__":
    main()
