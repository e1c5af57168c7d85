"""How far each start is from the real data: the matching distance of Eq. 13 before any matching.

    python -m benchmarks.start_distance --quick   # ModelNet10 reference-short, cpc 1, seed 0, 6 networks (2 CPU cores: ~5 min)
    python -m benchmarks.start_distance --paper   # the same, seeds 0-2, 20 networks each

For fresh networks (as an iteration draws them, BatchNorm statistics frozen from real clouds) and real
batches as matching draws them, the per-class distance D(∇L(real), ∇L(syn)) averaged over classes, for
each synthetic start:
- the herding clouds as fixed point tensors (where PCC and gm-herding start);
- the herding clouds re-drawn: a fresh ``distill.resolution``-point subset of each for every network;
- DD3D's generator after the warm start (``distill.generator.init=real``), drawing each cloud's noise
  independently (``distill.generator.noise=uniform``, the paper) or stratified (``stratified``), or on an
  even grid of [0, 1];
- one random real cloud per class (for scale).
Lower is closer. The generator is fitted once per seed and the same fit is drawn every way, so the rows
differ only in how the noise is drawn. Loop and data are the reference benchmark's (benchmarks/reference.py).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from benchmarks.harness import REPO, profile_of, profile_parser
from benchmarks.reference import PROFILES
from dd3d.config import load_config
from dd3d.data.transforms import normalize_unit_sphere
from dd3d.distill import build_method
from dd3d.distill.matching import BATCHNORM, CLASS, NETWORK, class_distance, matched_parameters
from dd3d.distill.run import build_context
from dd3d.distill.selection import herding_order, select_per_class

SETTINGS = {"quick": {"seeds": [0], "networks": 6}, "paper": {"seeds": [0, 1, 2], "networks": 20}}
#: keys of the networks and real batches drawn here, apart from any a run's iterations use
FIRST_KEY = 1000


def start_distances(seed: int, networks: int) -> dict[str, list[float]]:
    """The mean per-class matching distance of every start (module docstring) on ``networks`` fresh networks."""
    cfg = load_config(REPO / "configs" / "modelnet10.yaml", PROFILES["quick"] + [
        "distill.method=dd3d", "distill.generator.init=real", f"seed={seed}"])
    ctx = build_context(cfg, torch.device("cpu"))
    method = build_method("dd3d", ctx)
    method.start(progress=True)
    generator, points = method.generator, cfg.distill.resolution
    index = select_per_class(ctx, herding_order)
    fixed = ctx.real_points[torch.from_numpy(index)]
    full = torch.from_numpy(ctx.real_source.points[index])
    draw = np.random.default_rng(seed)

    def resampled(c: int) -> torch.Tensor:
        return normalize_unit_sphere(full[c:c + 1, draw.choice(full.shape[1], points, replace=False)])

    def generated(noise: str) -> Callable[[int], torch.Tensor]:
        def clouds(c: int) -> torch.Tensor:
            sample = torch.tensor([c])
            if noise == "grid":
                return generator(torch.linspace(0, 1, points).reshape(1, points, 1), sample)
            generator.noise = noise
            return generator.generate(sample, points, ctx.rng)
        return clouds

    def random_cloud(c: int) -> torch.Tensor:
        i = draw.choice(np.flatnonzero(ctx.real.labels == c))
        return torch.as_tensor(ctx.real_points[i:i + 1])

    starts = {"herding clouds, fixed points": lambda c: fixed[c:c + 1], "herding clouds, re-drawn": resampled,
              "warm generator, uniform noise": generated("uniform"),
              "warm generator, stratified noise": generated("stratified"),
              "warm generator, grid noise": generated("grid"), "random cloud": random_cloud}
    found: dict[str, list[float]] = {name: [] for name in starts}
    for k in range(FIRST_KEY, FIRST_KEY + networks):
        with ctx.drawing(NETWORK, k):
            net = ctx.new_network(method.rotator)
        with ctx.drawing(BATCHNORM, k, 0):
            ctx.freeze_batchnorm(net, list(range(ctx.num_classes)))
        params = matched_parameters(net)
        for name, start in starts.items():
            total = 0.0
            for c in range(ctx.num_classes):
                with ctx.drawing(CLASS, k, 0, c):
                    real = ctx.real_batch(c)
                with torch.no_grad():
                    syn = start(c)
                distance = class_distance(ctx.task, net, params, c, real, (syn.requires_grad_(True), None))
                total += float(distance.detach())
            found[name].append(total / ctx.num_classes)
    return found


def main() -> None:
    parser = profile_parser(__doc__)
    args = parser.parse_args()
    settings = SETTINGS[profile_of(parser, args)]
    rows: dict[str, list[float]] = {}
    for seed in settings["seeds"]:
        for name, values in start_distances(seed, settings["networks"]).items():
            rows.setdefault(name, []).extend(values)
    print(f"\nmatching distance at the start (mean ± std over {settings['networks']} networks × seeds "
          f"{settings['seeds']})\n| start | distance |\n|---|---|")
    for name, values in rows.items():
        print(f"| {name} | {np.mean(values):.1f} ± {np.std(values):.1f} |")


if __name__ == "__main__":
    main()
