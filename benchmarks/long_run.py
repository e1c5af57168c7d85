"""Accuracy along one long distillation: the run's snapshots (``distill.snapshot_every``) evaluated.

    python -m benchmarks.long_run --quick   # dd3d, dd3d-table7, dd3d-table7-stratified, dd3d-warm, gm; ModelNet10 aligned cpc 1, 400 iterations, seed 0 (one CPU core: ≈ 1.5 h each)
    python -m benchmarks.long_run --paper   # the configs' paper settings (400 iterations, Table 8 evaluation; GPU)

Quick profile: the reference benchmark's loop and evaluation (benchmarks/reference.py: 10 outer steps × 1
inner epoch, 256 points drawn fresh, 32 real clouds per class; PointNet, Adam, cosine, 100 epochs, 1,024
points, 3 runs, final epoch) run for the paper's 400 iterations instead of 20, so the generator's one ×0.1
step comes at iteration 200 (the release: half the run). The run is kept every 25 iterations; the
snapshots after 25, 50, 100 and 200 iterations and the final set are evaluated. The accuracy at N
iterations is that of this run as it stood after N: not of a run of N iterations, whose rate would drop
earlier (the grids' 200 updates are a 20-iteration run). Variants: dd3d (the paper's start, the release's
schedule), dd3d-table7 (the same with Table 7's ×0.1 every 100 iterations), dd3d-table7-stratified (that with
each cloud's noise drawn stratified, ``distill.generator.noise``), dd3d-warm (started from the herding clouds),
gm. Each distillation is one resumable run folder under ``--out``.
"""
from __future__ import annotations

from pathlib import Path

from benchmarks.grid import DD3D_WARM, REPO, STRATIFIED, Cell, Evaluation, column_overrides, grid_parser, run_grid
from benchmarks.harness import profile_of
from benchmarks.reference import PROFILES as REFERENCE_PROFILES
from benchmarks.seeds import summarise

from dd3d.distill.run import snapshot_folder
from dd3d.plots import plot_folders

#: dd3d-table7: the paper's Table 7 schedule, ×0.1 every 100 iterations (the release: once, at half the run)
#: dd3d-table7-stratified: the same with each cloud's noise drawn stratified (``distill.generator.noise``)
DD3D_TABLE7 = ["distill.method=dd3d", "distill.lr_step=100"]
VARIANTS = {"dd3d-warm": DD3D_WARM, "dd3d-table7": DD3D_TABLE7, "dd3d-table7-stratified": [*DD3D_TABLE7, *STRATIFIED]}
ITERATIONS = 400
EVALUATED = [25, 50, 100, 200, ITERATIONS]
PROFILES = {"quick": [o for o in REFERENCE_PROFILES["quick"] if not o.startswith("distill.iterations")],
            "paper": []}


def cell_name(variant: str, seed: int) -> str:
    return f"modelnet10-aligned-cpc1-{variant}-s{seed}"


def evaluation(iterations: int) -> Evaluation:
    """The evaluation of the run as it stood after ``iterations`` (the run folder itself at the end)."""
    if iterations == ITERATIONS:
        return Evaluation()
    source = snapshot_folder(Path(), iterations).as_posix()
    return Evaluation(folder=f"{source}/eval", source=source)


def main() -> None:
    parser = grid_parser(__doc__, "variants", ["dd3d", "dd3d-table7", "dd3d-table7-stratified", "dd3d-warm", "gm"], [0])
    args = parser.parse_args()
    name, variants, seeds = profile_of(parser, args), args.variants, args.seeds
    settings = PROFILES[name] + ["data.setting=aligned", "distill.cpc=1", f"distill.iterations={ITERATIONS}",
                                 f"distill.snapshot_every={EVALUATED[0]}"]
    cells = [Cell(cell_name(variant, seed), "modelnet10.yaml",
                  settings + [*column_overrides(variant, VARIANTS), f"seed={seed}"], [evaluation(n) for n in EVALUATED])
             for seed in seeds for variant in variants]
    out = args.out or REPO / "runs" / "bench-long-run" / name
    run_grid(cells, out, f"Accuracy along one run ({name} profile)", settings, table=False)
    print("\n| variant | " + " | ".join(f"it {n}" for n in EVALUATED) + " |\n|---|" + "---|" * len(EVALUATED))
    for variant in variants:
        row = [summarise([out / cell_name(variant, s) / evaluation(n).folder for s in seeds]) for n in EVALUATED]
        print(f"| {variant} | " + " | ".join("—" if r is None else f"{r.cell()} ({r.seeds})" for r in row) + " |")
    print("figures:", *draw_figures(out) or ["none yet (no finished run)"], sep="\n  ")


def draw_figures(out: Path) -> list[Path]:
    """Into ``out``: the finished runs' matching-loss curves and accuracy against iterations (each run's
    evaluated snapshots and final set; runs of one variant pooled over seeds); the files written."""
    finished = [f for f in sorted(out.iterdir()) if (f / "distill.json").is_file()]
    return plot_folders(finished, out) if finished else []


if __name__ == "__main__":
    main()
