"""Table-4-style ablation of the rotator: DD3D on rotated ModelNet10, cpc 1, with the rotator replaced.

    python -m benchmarks.rotator_ablation --quick   # the accuracy grid's equal budget, seeds 0-2 (2 CPU cores: hours, resumable)
    python -m benchmarks.rotator_ablation --paper   # the configs' paper settings (GPU)

Rows (``model.rotator.kind``, used while distilling and in every evaluation network): ``none`` (the raw
rotated clouds), ``pca`` (principal axes, sign-ambiguous: Eq. 7 alone), ``fixed`` (PCA + the release's
parameter-free sign) and ``learned`` (PCA + the paper's learned sign, Eq. 8-9). Loop and evaluation are
the equal-budget accuracy grid's (benchmarks/accuracy.py); each row is mean ± std over distillation seeds.
"""
from __future__ import annotations

from benchmarks.accuracy import budget
from benchmarks.grid import REPO, Cell, Evaluation, grid_parser, print_figures, run_grid
from benchmarks.harness import profile_of
from benchmarks.seeds import markdown_rows, summarise

KINDS = ["none", "pca", "fixed", "learned"]
SEEDS = [0, 1, 2]


def cell_name(kind: str, seed: int) -> str:
    return f"modelnet10-rotated-cpc1-dd3d-rotator-{kind}-s{seed}"


def main() -> None:
    parser = grid_parser(__doc__, "kinds", KINDS, SEEDS)
    args = parser.parse_args()
    name, kinds, seeds = profile_of(parser, args), args.kinds, args.seeds
    cells = [Cell(cell_name(kind, seed), "modelnet10.yaml", budget("dd3d", name) + [
                  "data.setting=rotated", "distill.method=dd3d", "distill.cpc=1", f"model.rotator.kind={kind}",
                  f"seed={seed}"], [Evaluation()])
             for seed in seeds for kind in kinds]
    out = args.out or REPO / "runs" / "bench-rotator" / name
    run_grid(cells, out, f"Rotator ablation ({name} profile)", budget("dd3d", name), table=False)
    print("\n" + markdown_rows({f"rotator {k}": summarise([out / cell_name(k, s) / "eval" for s in seeds])
                                for k in kinds}))
    print_figures(out)


if __name__ == "__main__":
    main()
