"""Table-1-style accuracy grid on ModelNet10: every method × setting × cpc × distillation seed.

    python -m benchmarks.accuracy --quick    # equal budget of 200 updates, 3 seeds (2 CPU cores: many hours, resumable)
    python -m benchmarks.accuracy --paper    # the configs' paper settings (400 iterations, Table 8 evaluation; GPU)

Quick profile ("equal budget"): every iterative method updates its synthetic set 200 times, each update
from 32 real clouds per class at 256 points (drawn fresh every step), without real-side augmentation:
gradient matching (gm, pcc, dd3d) runs 20 iterations × 10 outer steps × 1 inner epoch (the reference
benchmark's loop, benchmarks/reference.py), and the methods with one update per iteration (dm, sadm, tm)
run 200 iterations. An update of dd3d costs more than one of dm (a second-order gradient through the
generator), so the budget is equal in updates and real data seen, not in time: distill.json records each
cell's wall time. Evaluation as the reference benchmark (PointNet, Adam, cosine, batch 256, 100 epochs,
1,024 points, 3 runs, final epoch). Each cell is reported as mean ± std over distillation seeds 0-2.
The dd3d-warm column is DD3D started from the herding clouds (``distill.generator.init=real``, beyond the
paper; the fit is not counted in the budget). Cells run cpc 1 first; each is a resumable run folder under
``--out``.
"""
from __future__ import annotations

from benchmarks.grid import DD3D_STRATIFIED, DD3D_WARM, DD3D_WARM_STRATIFIED, REPO, Cell, Evaluation, column_overrides, comma_ints, grid_parser, print_figures, run_grid
from benchmarks.harness import profile_of
from benchmarks.reference import EVAL, LOOP
from benchmarks.seeds import summarise

METHODS = ["random", "herding", "kcenter", "gm", "dm", "sadm", "pcc", "dd3d", "dd3d-warm", "dd3d-stratified",
           "dd3d-warm-stratified", "tm"]
#: columns that are a method with options (beyond the paper): dd3d-warm is DD3D started from the herding clouds,
#: -stratified draws each cloud's noise stratified
VARIANTS = {"dd3d-warm": DD3D_WARM, "dd3d-stratified": DD3D_STRATIFIED,
            "dd3d-warm-stratified": DD3D_WARM_STRATIFIED}
SEEDS = [0, 1, 2]
SETTINGS = ["aligned", "rotated"]
CPCS = [1, 10]
#: the loop's budget in updates of the synthetic set; LOOP fixes 10 outer steps × 1 inner epoch per iteration
UPDATES = 200
MATCHING = {"gm", "pcc", "dd3d", *VARIANTS}
TM_QUICK = ["distill.tm.experts=2", "distill.tm.expert_epochs=10", "distill.tm.max_start_epoch=5",
            "distill.tm.target_epochs=2", "distill.tm.student_steps=10"]


def budget(method: str, profile: str) -> list[str]:
    """The method's share of the equal budget (quick), or the configs' paper settings."""
    if profile == "paper":
        return []
    shared = [o for o in LOOP if not o.startswith(("data.setting", "distill.cpc"))] + EVAL + ["eval.epochs=100"]
    if method in MATCHING:
        return shared + [f"distill.iterations={UPDATES // 10}"]
    extra = TM_QUICK if method == "tm" else []
    return [o for o in shared if not o.startswith(("distill.outer_loop", "distill.inner_loop"))] + extra + \
        [f"distill.iterations={UPDATES}"]


def cell_name(setting: str, cpc: int, method: str, seed: int) -> str:
    return f"modelnet10-{setting}-cpc{cpc}-{method}-s{seed}"


def main() -> None:
    parser = grid_parser(__doc__, "methods", METHODS, SEEDS)
    parser.add_argument("--cpcs", type=comma_ints, default=",".join(map(str, CPCS)), help="comma-separated cpc values")
    parser.add_argument("--table", action="store_true",
                        help="only print the table of the cells finished so far (no runs, no figures)")
    args = parser.parse_args()
    name, methods, seeds, cpcs = profile_of(parser, args), args.methods, args.seeds, args.cpcs
    cells = [Cell(cell_name(setting, cpc, method, seed), "modelnet10.yaml", budget(method, name) + [
                 f"data.setting={setting}", *column_overrides(method, VARIANTS), f"distill.cpc={cpc}", f"seed={seed}"],
                  [Evaluation()])
             for cpc in cpcs for setting in SETTINGS for seed in seeds for method in methods]
    out = args.out or REPO / "runs" / "bench-accuracy" / name
    if not args.table:
        run_grid(cells, out, f"Accuracy grid ({name} profile)", budget("dd3d", name), table=False)
    print("\n| setting | cpc | " + " | ".join(methods) + " |\n|---|---|" + "---|" * len(methods))
    for cpc in cpcs:
        for setting in SETTINGS:
            row = [summarise([out / cell_name(setting, cpc, m, s) / "eval" for s in seeds]) for m in methods]
            print(f"| {setting} | {cpc} | " + " | ".join("—" if r is None else f"{r.cell()} ({r.seeds})" for r in row) + " |")
    if not args.table:
        print_figures(out)


if __name__ == "__main__":
    main()
