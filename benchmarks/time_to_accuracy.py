"""Wall time to the release's accuracy: one distillation plus its evaluation at the reference-short settings,
dd3d-lab against the authors' release, as one ratio.

    python -m benchmarks.time_to_accuracy --quick --release CLONE    # seed 0, both sides back to back
    python -m benchmarks.time_to_accuracy --quick                     # dd3d-lab's side only
    python -m benchmarks.time_to_accuracy --paper --release CLONE    # the same at the paper's 400 iterations

The settings are :mod:`benchmarks.reference`'s (ModelNet10 aligned cpc 1, 20 iterations × 10 outer steps,
256 points; evaluation PointNet, 100 epochs, 1,024 points, 3 runs, final epoch). There dd3d-lab's DD3D
reaches the release's accuracy over seeds (the reference benchmark's table: the means over seeds of the same
20 iterations are level), so the time to reach it is the time of the same run; dd3d-warm (the generator first
fitted to the herding clouds, beyond the paper) is timed too, after the same 20 iterations and alone
(``dd3d-warm-it0``: the fit is already above the release's accuracy before any matching). Each side runs as
its own child process, one after the other, with the same torch threads; wall seconds and the children's CPU
seconds are both reported. Take the wall ratio only from a run that had the machine to itself.

``--release CLONE`` is a clone (or the bare git directory) of github.com/bdy9527/DD3D; it is run with
``--tools`` (default ``../shared/tools/release``: patched only to run on ModelNet10, never copied into this
project): ``run_short.sh`` for the distillation, ``release_eval.py`` (the release's own evaluation, 3 runs,
final epoch) for the evaluation. Writes ``time_to_accuracy.json`` under ``--out``; rows measured there before with the
same profile and seed are kept, so ``--variants`` can add or redo rows without re-running the release.
"""
from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.grid import comma_list
from benchmarks.harness import REPO, profile_of, profile_parser
from benchmarks.reference import PROFILES, VARIANTS
from dd3d.provenance import command, machine

RELEASE_ITERATIONS = {"quick": 20, "paper": 400}
RELEASE_EPOCHS = {"quick": 100, "paper": 200}
#: dd3d-lab's rows: the paper's DD3D, the warm start then 20 iterations, and the warm start alone (its fit is
#: already above the release's accuracy: benchmarks/records/iterations-quick)
OURS = {"dd3d": VARIANTS["dd3d"], "dd3d-warm": VARIANTS["dd3d-warm"],
        "dd3d-warm-it0": VARIANTS["dd3d-warm"] + ["distill.iterations=0"]}


def timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run ``argv``; (wall seconds, CPU seconds of the child, its stdout). Exits with its stderr's last line
    when it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv[:3])}...: failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result.stdout


def ours(variant: str, profile: str, seed: int, out: Path) -> dict:
    """One dd3d-lab distillation and evaluation of ``variant``: times and final-epoch OA."""
    folder = out / f"ours-{variant}-s{seed}"
    shutil.rmtree(folder, ignore_errors=True)
    sets = [a for o in PROFILES[profile] + OURS[variant] + [f"seed={seed}"] for a in ("--set", o)]
    dd3d = [sys.executable, "-m", "dd3d"]
    config = ["--config", str(REPO / "configs" / "modelnet10.yaml")]
    distill = timed(dd3d + ["distill", *config, "--out", str(folder), *sets], REPO)
    evaluate = timed(dd3d + ["eval", *config, "--synthetic", str(folder), *sets], REPO)
    metrics = json.loads((folder / "eval" / "metrics.json").read_text())
    return {"distill_s": distill[0], "eval_s": evaluate[0], "cpu_s": distill[1] + evaluate[1],
            "oa": 100 * metrics["oa_mean"]}


def release(clone: Path, tools: Path, profile: str, seed: int, out: Path) -> dict:
    """The release's distillation (``run_short.sh``) and its own evaluation: times and final-epoch OA."""
    work = out / f"release-s{seed}"
    shutil.rmtree(work, ignore_errors=True)
    env = {**os.environ, "RELEASE": str(clone), "PY": sys.executable, "W": str(work),
           "REL_IT": str(RELEASE_ITERATIONS[profile]), "REL_ARGS": f"--seed {seed}"}
    distill = timed(["bash", str(tools / "run_short.sh")], REPO, env)
    evaluate = timed([sys.executable, str(tools / "release_eval.py"), "final.npz", str(RELEASE_EPOCHS[profile]), "3"],
                     work, {**os.environ, "PYTHONPATH": f"{tools / 'stubs'}:."})
    found = re.search(r"RELEASE-EVAL mean ([0-9.]+)", evaluate[2])
    return {"distill_s": distill[0], "eval_s": evaluate[0], "cpu_s": distill[1] + evaluate[1],
            "oa": 100 * float(found.group(1)) if found else None}


def main() -> None:
    parser = profile_parser(__doc__)
    parser.add_argument("--release", type=Path, help="clone (or bare git directory) of bdy9527/DD3D")
    parser.add_argument("--tools", type=Path, default=REPO.parent / "shared" / "tools" / "release",
                        help="the release runner (run_short.sh, release_eval.py)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench-time-to-accuracy")
    parser.add_argument("--variants", type=comma_list, default=",".join(OURS), help="dd3d-lab rows to run")
    args = parser.parse_args()
    profile = profile_of(parser, args)
    if args.release is not None and not any((args.release / f).exists() for f in ("gm_inr.py", "HEAD")):
        parser.error(f"--release {args.release}: not a clone or bare git directory of bdy9527/DD3D "
                     "(no gm_inr.py, no HEAD)")
    if args.release is not None and not (args.tools / "run_short.sh").is_file():
        parser.error(f"--tools {args.tools}: no run_short.sh (the release runner of ../shared/tools/release)")
    args.out.mkdir(parents=True, exist_ok=True)
    record = args.out / "time_to_accuracy.json"
    earlier = json.loads(record.read_text()) if record.is_file() else {}
    # rows measured earlier with the same profile and seed are kept (a later run may add or redo some)
    rows = earlier.get("rows", {}) if (earlier.get("profile"), earlier.get("seed")) == (profile, args.seed) else {}
    if args.release is not None:
        rows["release"] = release(args.release.resolve(), args.tools.resolve(), profile, args.seed, args.out.resolve())
    for variant in args.variants:
        rows[variant] = ours(variant, profile, args.seed, args.out)
        print(f"{variant}: {rows[variant]}", flush=True)
    print(f"\ncommand: {command()}\nmachine: {machine()}\n")
    print("| run | distillation (s) | evaluation (s) | total (s) | CPU (s) | final-epoch OA (seed "
          f"{args.seed}) |\n|---|---|---|---|---|---|")
    for name, row in rows.items():
        row["total_s"] = row["distill_s"] + row["eval_s"]
        oa = "—" if row["oa"] is None else f"{row['oa']:.1f}"
        print(f"| {name} | {row['distill_s']:.0f} | {row['eval_s']:.0f} | {row['total_s']:.0f} | {row['cpu_s']:.0f} "
              f"| {oa} |")
    if "release" in rows:
        for variant in [v for v in rows if v != "release"]:
            print(f"\n{variant}: {rows['release']['total_s'] / rows[variant]['total_s']:.2f}× less wall time than the "
                  f"release (CPU {rows['release']['cpu_s'] / rows[variant]['cpu_s']:.2f}×)")
    record.write_text(json.dumps(
        {"command": command(), "machine": machine(), "profile": profile, "seed": args.seed, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
