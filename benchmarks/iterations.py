"""Accuracy against distillation iterations, and what the warm start (``distill.generator.init=real``) adds.

    python -m benchmarks.iterations --quick   # 0/5/20/80 iterations, ModelNet10 + built-in parts, cpc 1 and 10 (2 CPU cores: hours)
    python -m benchmarks.iterations --paper   # 0/50/100/200/400 iterations, same cells (GPU)

Columns: herding (the coreset; iterations do not apply), gm-herding (GM started from the herding clouds,
``distill.init_clouds=herding``), dd3d (the paper: generator from noise), dd3d-warm (generator first
fitted to the same herding clouds) and dd3d-warm-stratified (that with stratified noise, docs/fidelity.md
§5). 0 iterations is the starting point itself. Loop and evaluation are the reference benchmark's
(benchmarks/reference.py) for ModelNet10 and the segmentation grid's for the built-in parts set
(benchmarks/segmentation.py); each cell is mean ± std over distillation seeds.
Segmentation cells also report part coherence of the distilled set (within-part / total variance).
"""
from __future__ import annotations

import h5py
import numpy as np
from benchmarks.grid import DD3D_WARM, DD3D_WARM_STRATIFIED, REPO, Cell, Evaluation, comma_ints, comma_list, grid_parser, print_figures, run_grid
from benchmarks.harness import profile_of
from benchmarks.reference import EVAL, LOOP
from benchmarks.seeds import summarise
from benchmarks.segmentation import SEG_BUDGET

from dd3d.metrics import part_coherence

VARIANTS = {"herding": ["distill.method=herding"],
            "gm-herding": ["distill.method=gm", "distill.init_clouds=herding"],
            "dd3d": ["distill.method=dd3d"],
            "dd3d-warm": DD3D_WARM,
            "dd3d-warm-stratified": DD3D_WARM_STRATIFIED}
DATASETS = {"modelnet10": ("modelnet10.yaml", [o for o in LOOP if not o.startswith("distill.cpc")] + EVAL +
                           ["eval.epochs=100"]),
            "parts": ("shapes-seg.yaml", SEG_BUDGET)}
ITERATIONS = {"quick": [0, 5, 20, 80], "paper": [0, 50, 100, 200, 400]}
SEEDS = [0, 1, 2]


def cell_name(dataset: str, cpc: int, variant: str, iterations: int, seed: int) -> str:
    return f"{dataset}-cpc{cpc}-{variant}-it{iterations}-s{seed}"


def coherence(folder) -> float | None:
    """Mean part coherence of a segmentation run's synthetic.h5 (None for classification sets)."""
    with h5py.File(folder / "synthetic.h5", "r") as f:
        if "pid" not in f:
            return None
        return float(np.mean([part_coherence(c, p) for c, p in zip(f["data"][:], f["pid"][:])]))


def main() -> None:
    parser = grid_parser(__doc__, "variants", list(VARIANTS), SEEDS)
    parser.add_argument("--datasets", type=comma_list, default=",".join(DATASETS),
                        help="comma-separated subset of modelnet10, parts")
    parser.add_argument("--cpcs", type=comma_ints, default="1,10", help="comma-separated cpc values")
    args = parser.parse_args()
    name = profile_of(parser, args)
    variants, datasets, cpcs, seeds = args.variants, args.datasets, args.cpcs, args.seeds
    steps = ITERATIONS[name]

    def counts(variant: str) -> list[int]:
        return [0] if variant == "herding" else steps

    cells = [Cell(cell_name(d, cpc, v, n, seed), DATASETS[d][0], DATASETS[d][1] + VARIANTS[v] + [
                  f"distill.cpc={cpc}", f"distill.iterations={n}", f"seed={seed}"], [Evaluation()])
             for d in datasets for cpc in cpcs for n in steps for seed in seeds for v in variants if n in counts(v)]
    out = args.out or REPO / "runs" / "bench-iterations" / name
    run_grid(cells, out, f"Accuracy by iterations ({name} profile)", [], table=False)
    for d in datasets:
        for cpc in cpcs:
            print(f"\n{d}, cpc {cpc}: OA (%) mean ± std over seeds [part coherence]\n| iterations | "
                  + " | ".join(variants) + " |\n|---|" + "---|" * len(variants))
            for n in steps:
                cells_text = []
                for v in variants:
                    folders = [out / cell_name(d, cpc, v, 0 if v == "herding" else n, s) for s in seeds]
                    summary = summarise([f / "eval" for f in folders])
                    done = [coherence(f) for f in folders if (f / "synthetic.h5").is_file()]
                    tag = f" [{np.mean(done):.2f}]" if done and done[0] is not None else ""
                    cells_text.append("—" if summary is None else summary.cell() + tag)
                print(f"| {n} | " + " | ".join(cells_text) + " |")
    print_figures(out)


if __name__ == "__main__":
    main()
