"""Rival 3D distillation methods under one protocol: Random, GM, DM, SADM, PCC and DD3D on ModelNet10.

    python -m benchmarks.rivals --quick    # CPU profile (~30 min on 2 cores; reduced settings, printed)
    python -m benchmarks.rivals --paper    # the methods' published settings (GPU; many hours)

Every (method, cpc, seed) is one run folder under ``--out`` (default runs/bench-rivals/<profile>),
evaluated under both evaluation protocols: ``eval-dd3d/`` (DD3D's: Adam lr 1e-3, StepLR, batch 8,
200 epochs) and ``eval-sadm/`` (SADM's: SGD lr 0.01 momentum 0.9 wd 5e-4, ×0.1 at 250 of 500
epochs, batch 8); both use our augmentation and report the final epoch. One grid per protocol is
run and tabulated (distillations are shared: the second grid only evaluates). Finished steps are
skipped, so an interrupted run resumes. Each table cell pools the evaluation runs of every seed.

SADM's published ModelNet10 numbers (their protocol; cpc 1/3/10): Random 35.5/75.2/85.3,
DM 31.9/77.6/86.1, DC 43.9/75.0/86.1, SADM 44.7/84.4/87.8, full data 91.4.
"""
from __future__ import annotations

from pathlib import Path

from benchmarks.grid import REPO, Cell, Evaluation, grid_parser, run_grid
from benchmarks.harness import profile_of

METHODS = ["random", "gm", "dm", "sadm", "pcc", "dd3d"]
CONFIG = "modelnet10.yaml"
CPCS = [1, 10]
PROTOCOL = {"dd3d": ["eval.protocol=dd3d"], "sadm": ["eval.protocol=sadm"]}

# Reduced settings that fit a 2-core CPU; every value is a named deviation from the published ones.
# DM and SADM iterations are far cheaper than GM's, so they get more of them; SADM's point learning
# rate is raised as its iterations are cut 50× (1,500 -> 30). Each protocol keeps 1/10 of its epochs.
PROFILES = {
    "quick": {
        "common": ["distill.resolution=256", "distill.real_batch=8", "distill.iterations=5",
                   "distill.outer_loop=3", "distill.inner_loop=1",
                   "eval.resolution=256", "eval.runs=1", "eval.test_every=0"],
        "methods": {"dm": ["distill.iterations=60"], "sadm": ["distill.iterations=30", "distill.sadm.lr=10"]},
        "protocols": {"dd3d": ["eval.epochs=20", "eval.step_size=10"], "sadm": ["eval.epochs=50", "eval.step_size=25"]},
        "seeds": 2,
    },
    "paper": {
        "common": [],
        "methods": {"sadm": ["distill.iterations=1500"]},
        "protocols": {"dd3d": [], "sadm": []},
        "seeds": 2,
    },
}


def cells(spec: dict, protocol: str, methods: list[str], seeds: int) -> list[Cell]:
    """One cell per (method, cpc, seed), evaluated under ``protocol`` into ``eval-<protocol>/``."""
    evaluation = Evaluation(f"eval-{protocol}", PROTOCOL[protocol] + spec["protocols"][protocol])
    return [Cell(f"{Path(CONFIG).stem}-cpc{cpc}-{method}-seed{seed}", CONFIG,
                 spec["common"] + spec["methods"].get(method, []) +
                 [f"distill.method={method}", f"distill.cpc={cpc}", f"seed={seed}"], [evaluation])
            for cpc in CPCS for method in methods for seed in range(seeds)]


def main() -> None:
    parser = grid_parser(__doc__, "methods", METHODS)
    parser.add_argument("--seeds", type=int, help="distillation seeds per cell (default: the profile's)")
    args = parser.parse_args()
    name = profile_of(parser, args)
    spec = PROFILES[name]
    methods = args.methods
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"--methods: unknown {', '.join(unknown)} (choose from {', '.join(METHODS)})")
    seeds = args.seeds or spec["seeds"]
    out = args.out or REPO / "runs" / "bench-rivals" / name
    for protocol in PROTOCOL:
        settings = spec["common"] + [f"{m}: {' '.join(o)}" for m, o in spec["methods"].items()] + \
            [f"eval-{protocol}: {' '.join(PROTOCOL[protocol] + spec['protocols'][protocol])}", f"seeds: {seeds}"]
        run_grid(cells(spec, protocol, methods, seeds), out,
                 f"Rival methods on ModelNet10, {protocol} evaluation protocol ({name} profile)", settings)
        print()


if __name__ == "__main__":
    main()
