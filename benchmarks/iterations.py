"""Accuracy against the number of distillation iterations: DD3D (a generator trained from scratch) vs
GM (point tensors that start as real clouds).

    python benchmarks/iterations.py --quick    # built-in shapes, aligned, cpc 1, 10/40/160 iterations (~30 min, 2 CPU cores)
    python benchmarks/iterations.py --paper    # ModelNet10, aligned, cpc 1, 50/100/200/400 iterations (GPU)

Why: the quick accuracy grid gives every method the same 10 iterations, which favours methods that
start from real clouds. This grid shows how many iterations DD3D needs to catch up. Settings are the
accuracy grid's (benchmarks/accuracy.py) apart from ``distill.iterations``; cells are resumable.
"""
from __future__ import annotations

from accuracy import PROFILES
from grid import REPO, Cell, grid_parser, print_figures, run_grid
from harness import profile_of

from dd3d.table import collect

METHODS = ["gm", "dd3d"]
SCHEDULES = {
    "quick": {"config": "shapes.yaml", "iterations": [10, 40, 160]},
    "paper": {"config": "modelnet10.yaml", "iterations": [50, 100, 200, 400]},
}


def main() -> None:
    parser = grid_parser(__doc__, "methods", METHODS)
    args = parser.parse_args()
    name = profile_of(parser, args)
    spec, schedule = PROFILES[name], SCHEDULES[name]
    config = schedule["config"]
    extra = spec["datasets"][config]
    cells = [Cell(f"{config.removesuffix('.yaml')}-aligned-cpc1-{method}-it{n}", config, spec["overrides"] + extra + [
                  "data.setting=aligned", f"distill.method={method}", "distill.cpc=1", f"distill.iterations={n}"])
             for n in schedule["iterations"] for method in args.methods.split(",")]
    methods = args.methods.split(",")
    out = args.out or REPO / "runs" / "bench-iterations" / name
    folders = run_grid(cells, out,
                       f"Accuracy by distillation iterations ({name} profile)", spec["overrides"], table=False)
    found = {f.parent.name: m for f, m in zip(folders, collect(folders))}
    print("| iterations | " + " | ".join(methods) + " |\n|---" * 1 + "|---" * len(methods) + "|")
    for n in schedule["iterations"]:
        row = [found.get(f"{config.removesuffix('.yaml')}-aligned-cpc1-{m}-it{n}") for m in methods]
        print(f"| {n} | " + " | ".join("—" if r is None else f"{100 * r['oa_mean']:.2f} ± {100 * r['oa_std']:.2f}"
                                       for r in row) + " |")
    if folders:
        print_figures(out)


if __name__ == "__main__":
    main()
