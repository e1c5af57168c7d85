"""Does the lab's live view look like distillation? Chamfer distance of the distilled clouds to the real data
against wall time, with the lab's own profile.

    python -m benchmarks.lab_fidelity --quick    # built-in shapes, lab profile, 5 minutes per variant, 1 thread
    python -m benchmarks.lab_fidelity --paper    # the same for 30 minutes per variant

Variants: gm (point tensors from random real clouds), dd3d (the paper: generator from noise) and dd3d-warm
(``distill.generator.init=real``, the generator first fitted to the herding clouds; its fitting time is
counted). Each runs alone, as the lab's training thread does (one torch thread, the lab profile of
``dd3d.engine.profile``), for the time budget; every ``--every`` seconds the current synthetic set is drawn
at 1,024 points and the mean over synthetic clouds of the Chamfer distance to the nearest real training
cloud of the same class (unit sphere, squared distances) is recorded. Lower is closer to a real shape.
Writes lab_fidelity.json and lab_fidelity.png/.pdf (the shared figure style of :mod:`dd3d.plots`) under ``--out``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from benchmarks.grid import comma_list
from benchmarks.harness import REPO, profile_of, profile_parser
from dd3d.distill import build_method
from dd3d.distill.run import build_context
from dd3d.distill.warm_start import chamfer_distance
from dd3d.engine.profile import LAB_CPU_THREADS, load_lab_config
from dd3d.palette import method_color
from dd3d.plots import figure_style, new_figure, save_figure
from dd3d.provenance import command, machine

VARIANTS = {"gm": ["distill.method=gm"], "dd3d": ["distill.method=dd3d"],
            "dd3d-warm": ["distill.method=dd3d", "distill.generator.init=real"]}
MINUTES = {"quick": 5.0, "paper": 30.0}
POINTS = 1024


@torch.no_grad()
def nearest_real_chamfer(method, real: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over synthetic clouds of the Chamfer distance to the nearest real cloud of the same class."""
    synthetic = method.synthetic(POINTS, torch.Generator().manual_seed(0))
    distances = []
    for cloud, label in zip(torch.from_numpy(synthetic.points), synthetic.labels):
        pool = real[labels == int(label)]
        distances.append(float(chamfer_distance(cloud.expand(len(pool), -1, -1), pool).min()))
    return sum(distances) / len(distances)


def measure(variant: str, seconds: float, every: float) -> list[tuple[float, int, float]]:
    """(seconds, iterations, Chamfer) samples of one variant running alone for ``seconds``."""
    cfg = load_lab_config(REPO / "configs" / "shapes.yaml", VARIANTS[variant] + ["distill.iterations=100000"])
    torch.set_num_threads(LAB_CPU_THREADS)
    ctx = build_context(cfg, torch.device("cpu"))
    real, labels = torch.from_numpy(ctx.real_full.points[:, :POINTS]), torch.from_numpy(ctx.real_full.labels)
    began = time.perf_counter()
    torch.manual_seed(cfg.seed)
    method = build_method(cfg.distill.method, ctx)  # dd3d-warm: the fit happens here, inside the clock
    samples, spent, iteration, next_sample = [], time.perf_counter() - began, 0, 0.0
    while spent < seconds:
        if spent >= next_sample:
            samples.append((round(spent, 1), iteration, nearest_real_chamfer(method, real, labels)))
            print(f"{variant}: {spent:6.0f} s, iteration {iteration}, Chamfer {samples[-1][2]:.4f}", flush=True)
            next_sample += every
        tick = time.perf_counter()
        method.step(iteration)
        iteration += 1
        spent += time.perf_counter() - tick
    samples.append((round(spent, 1), iteration, nearest_real_chamfer(method, real, labels)))
    return samples


def main() -> None:
    parser = profile_parser(__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench-lab-fidelity")
    parser.add_argument("--every", type=float, default=15.0, help="seconds between measurements")
    parser.add_argument("--variants", type=comma_list, default=",".join(VARIANTS))
    parser.add_argument("--minutes", type=float, help="time per variant (default: 5 quick, 30 paper)")
    args = parser.parse_args()
    seconds = 60 * (args.minutes or MINUTES[profile_of(parser, args)])
    curves = {v: measure(v, seconds, args.every) for v in args.variants}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lab_fidelity.json").write_text(json.dumps({"command": command(), "machine": machine(),
                                                            "curves": curves}, indent=1))
    with figure_style():
        figure = new_figure(6.0, 3.5)
        axes = figure.add_subplot()
        for variant, samples in curves.items():
            axes.plot([s[0] / 60 for s in samples], [s[2] for s in samples], marker=".", label=variant,
                      color=method_color(variant))
        axes.set_xlabel("wall time (min, one CPU thread)")
        axes.set_ylabel("Chamfer to nearest real cloud")
        axes.set_yscale("log")
        axes.legend()
        save_figure(figure, args.out / "lab_fidelity")
    print(f"\ncommand: {command()}\nmachine: {machine()}\n\n| variant | " + " | ".join(
        f"{m:g} min" for m in (0, 1, 2, 5)) + " |\n|---|---|---|---|---|")
    for variant, samples in curves.items():
        at = [min(samples, key=lambda s: abs(s[0] - 60 * m))[2] for m in (0, 1, 2, 5)]
        print(f"| {variant} | " + " | ".join(f"{v:.4f}" for v in at) + " |")
    print(f"\nplot: {args.out / 'lab_fidelity.png'}")


if __name__ == "__main__":
    main()
