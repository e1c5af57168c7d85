"""Does the lab's live view look like distillation? Chamfer distance of the distilled clouds to the real data
against wall time, with the lab's own profile.

    python -m benchmarks.lab_fidelity --quick    # built-in shapes, lab profile, 5 minutes per variant, 1 thread
    python -m benchmarks.lab_fidelity --paper    # the same for 30 minutes per variant

Variants: gm (point tensors from random real clouds), dd3d (the paper: generator from noise, scalar noise per
point, ω0 100), dd3d-warm (the same generator first fitted to the herding clouds,
``distill.generator.init=real``; its fitting time is counted) and dd3d-warm-sheet (the lab profile as shipped:
that warm start with 2-D noise per point at ω0 30, beyond the paper). Each runs alone, as the lab's
training thread does (one torch thread, the lab profile of ``dd3d.engine.profile``), for the time budget;
every ``--every`` seconds the current synthetic set is drawn at 1,024 points and the mean over synthetic
clouds of the Chamfer distance to the nearest real training cloud of the same class (unit sphere, squared
distances) is recorded. Lower is closer to a real shape.
Writes lab_fidelity.json, lab_fidelity.png/.pdf and lab_fidelity_clouds.png (each variant's clouds at the end
beside the real cloud each was nearest to) (the shared figure style of :mod:`dd3d.plots`) under ``--out``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from benchmarks.grid import DD3D_WARM, comma_list
from benchmarks.harness import REPO, profile_of, profile_parser
from dd3d.distill import build_method
from dd3d.distill.run import build_context
from dd3d.distill.warm_start import chamfer_distance
from dd3d.engine.profile import LAB_CPU_THREADS, load_lab_config
from dd3d.palette import method_color
from dd3d.plots import figure_style, new_figure, save_figure
from dd3d.provenance import command, machine

PAPER_GENERATOR = ["distill.generator.noise_dim=1", "distill.generator.omega0=100"]
VARIANTS = {"gm": ["distill.method=gm"],
            "dd3d": ["distill.method=dd3d", "distill.generator.init=noise", *PAPER_GENERATOR],
            "dd3d-warm": [*DD3D_WARM, *PAPER_GENERATOR],
            "dd3d-warm-sheet": ["distill.method=dd3d"]}
MINUTES = {"quick": 5.0, "paper": 30.0}
POINTS = 1024


@torch.no_grad()
def nearest_real(method, real: torch.Tensor, labels: torch.Tensor) -> tuple[float, list[tuple]]:
    """Mean over synthetic clouds of the Chamfer distance to the nearest real cloud of the same class, and
    each (synthetic cloud, that real cloud) pair."""
    synthetic = method.synthetic(POINTS, torch.Generator().manual_seed(0))
    distances, pairs = [], []
    for cloud, label in zip(torch.from_numpy(synthetic.points), synthetic.labels):
        pool = real[labels == int(label)]
        distance = chamfer_distance(cloud.expand(len(pool), -1, -1), pool)
        distances.append(float(distance.min()))
        pairs.append((cloud.numpy(), pool[int(distance.argmin())].numpy()))
    return sum(distances) / len(distances), pairs


def measure(variant: str, seconds: float, every: float) -> tuple[list[tuple[float, int, float]], list[tuple]]:
    """(seconds, iterations, Chamfer) samples of one variant running alone for ``seconds``, and its final
    (synthetic, nearest real) cloud pairs."""
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
            samples.append((round(spent, 1), iteration, nearest_real(method, real, labels)[0]))
            print(f"{variant}: {spent:6.0f} s, iteration {iteration}, Chamfer {samples[-1][2]:.4f}", flush=True)
            next_sample += every
        tick = time.perf_counter()
        method.step(iteration)
        iteration += 1
        spent += time.perf_counter() - tick
    distance, pairs = nearest_real(method, real, labels)
    samples.append((round(spent, 1), iteration, distance))
    return samples, pairs


def draw_clouds(finals: dict[str, list[tuple]], path: Path, columns: int = 5) -> None:
    """One row per variant of its final clouds (the first ``columns`` classes' first sample), and a last row
    of the real clouds the last variant's were nearest to."""
    names = list(finals)
    count = len(finals[names[0]])
    shown = list(range(0, count, max(1, count // columns)))[:columns]
    rows = [(name, [finals[name][i][0] for i in shown]) for name in names]
    rows.append((f"nearest real ({names[-1]})", [finals[names[-1]][i][1] for i in shown]))
    with figure_style():
        figure = new_figure(2.0 * columns, 2.0 * len(rows))
        for r, (name, clouds) in enumerate(rows):
            for c, cloud in enumerate(clouds):
                axes = figure.add_subplot(len(rows), columns, r * columns + c + 1, projection="3d")
                axes.scatter(cloud[:, 0], cloud[:, 2], cloud[:, 1], s=0.5, color=method_color(name.split(" ")[0]))
                axes.set_axis_off()
                if c == 0:
                    axes.set_title(name, loc="left", fontsize=8)
        save_figure(figure, path)


def main() -> None:
    parser = profile_parser(__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench-lab-fidelity")
    parser.add_argument("--every", type=float, default=15.0, help="seconds between measurements")
    parser.add_argument("--variants", type=comma_list, default=",".join(VARIANTS))
    parser.add_argument("--minutes", type=float, help="time per variant (default: 5 quick, 30 paper)")
    args = parser.parse_args()
    seconds = 60 * (args.minutes or MINUTES[profile_of(parser, args)])
    measured = {v: measure(v, seconds, args.every) for v in args.variants}
    curves = {v: samples for v, (samples, _) in measured.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    draw_clouds({v: pairs for v, (_, pairs) in measured.items()}, args.out / "lab_fidelity_clouds")
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
    print(f"\nplots: {args.out / 'lab_fidelity.png'}, {args.out / 'lab_fidelity_clouds.png'}")


if __name__ == "__main__":
    main()
