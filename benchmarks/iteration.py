"""Seconds per distillation iteration: the release's plain loop vs dd3d-lab's, back to back in one run.

    python -m benchmarks.iteration --quick   # reference-short, 3 iterations per variant, one round
    python -m benchmarks.iteration --paper   # the same settings, 10 iterations per variant, two rounds
    python -m benchmarks.iteration --quick --profile   # where dd3d-lab's time goes: top ops of one iteration

Reference-short settings (the fidelity issue, docs/reference-settings.md): DD3D, ModelNet10 aligned
(the built-in shapes, 10 classes, when ../shared/data has no ModelNet10), cpc 1, 10 outer steps × 1
inner epoch per iteration, 32 real + 1 synthetic clouds of 256 points per class and outer step,
real points drawn fresh, no real-side augmentation.

Variants, each in a fresh child process (so peak memory and allocator state stay apart), same seed,
same keyed draws, same generator initialisation:

- ``release``: the plain loop of the authors' release: per class, autograd gradients of every
  parameter of a PointNet that normalises the (B, 1024, P) tensor before max-pooling, the real one
  detached, the synthetic one with ``create_graph``; the distance summed over classes, then one
  backward; glibc's default allocator.
- ``dd3d-lab``: the shipped loop (``dd3d.distill.matching``, the config's defaults: on the CPU one
  class at a time, the real gradient written out by hand).
- ``dd3d-lab-batched``: the same with ``distill.class_batching: batched`` (the CUDA default) on the CPU.

The machine may be shared with other work, so only the ratio of variants measured back to back means
anything. Each iteration is timed as wall seconds and as the process's CPU seconds; with one torch thread
(``--threads 1``, the default) the CPU seconds hardly depend on what else runs, while two threads on a
loaded 2-core machine spend much of their time waiting for each other. The loss curves should agree to float
rounding (the same computation in a different order); their largest relative difference is printed.
``--profile`` instead runs dd3d-lab alone for two iterations and prints torch.profiler's top operators
by self CPU time over the second.
"""
from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING, Callable

from benchmarks.harness import REPO, profile_of, profile_parser, run_child, served_child
from dd3d.provenance import command, machine

if TYPE_CHECKING:
    from dd3d.distill.base import DistillContext, Method

SETTINGS = ["data.setting=aligned", "distill.method=dd3d", "distill.cpc=1", "distill.outer_loop=10",
            "distill.inner_loop=1", "distill.resolution=256", "distill.real_batch=32", "distill.augment_real=false",
            "distill.real_sampling=fresh", "seed=0"]
#: config file and extra overrides: ModelNet10 when present, else the built-in shapes cut to 10 classes
SOURCES = [("modelnet10.yaml", []), ("shapes.yaml", ["data.max_classes=10"])]
#: variant → its config overrides (``release`` swaps in the release's matching step, :func:`release_method`)
VARIANTS = {"release": [], "dd3d-lab": [], "dd3d-lab-batched": ["distill.class_batching=batched"]}
PROFILES = {"quick": {"iterations": 3, "rounds": 1}, "paper": {"iterations": 10, "rounds": 2}}


def status_bytes(field: str) -> int:
    """A ``/proc/self/status`` memory field in bytes (Linux)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))


def release_method(ctx: "DistillContext") -> "Method":
    """The DD3D method with the release's plain matching step (module docstring); imports torch, so it
    runs in the child only."""
    import torch

    from benchmarks.matching_step import release_gradients
    from dd3d.distill.dd3d import DD3D
    from dd3d.distill.matching import CLASS, layerwise_distance

    class ReleaseLoop(DD3D):
        def summed_gradients(self, params: list[torch.Tensor], net: torch.nn.Module, per_part: bool, iteration: int,
                             outer: int) -> tuple[list[torch.Tensor | None], torch.Tensor]:
            ctx, total = self.ctx, 0.0
            for c in self.classes:
                with ctx.drawing(CLASS, iteration, outer, c):
                    (real, _), (syn, _) = ctx.real_batch(c), self.synthetic_batch(c)
                g_real = [g.detach() for g in release_gradients(net, real, c, create_graph=False)]
                total = total + layerwise_distance(g_real, release_gradients(net, syn, c, create_graph=True))
            grads = torch.autograd.grad(total, params, allow_unused=True)
            return [None if g is None else g.double() for g in grads], total.detach().double()

    return ReleaseLoop(ctx)


def child(spec: dict) -> dict:
    """Run ``spec['iterations']`` iterations of one variant; seconds and loss per iteration, peak memory."""
    import torch

    from dd3d.config import load_config
    from dd3d.device import resolve_device
    from dd3d.distill import build_method
    from dd3d.distill.run import build_context
    from dd3d.errors import DD3DError

    for config, extra in SOURCES:
        cfg = load_config(REPO / "configs" / config, SETTINGS + extra + VARIANTS[spec["variant"]] + [
            f"distill.iterations={spec['iterations']}",
            f"threads={spec['threads']}"])
        try:
            # the release ran with glibc's default allocator; resolve_device applies dd3d-lab's setting
            if spec["variant"] == "release":
                torch.set_num_threads(cfg.threads or torch.get_num_threads())
                device = torch.device("cpu")
            else:
                device = resolve_device(cfg.device, cfg.threads)
            ctx = build_context(cfg, device)
            break
        except DD3DError:
            continue
    torch.manual_seed(cfg.seed)  # the generator's initialisation, as `dd3d distill` seeds it
    method = release_method(ctx) if spec["variant"] == "release" else build_method("dd3d", ctx)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak resident set: data loading does not count
    before = status_bytes("VmRSS")
    seconds, cpu_seconds, losses = [], [], []
    for iteration in range(spec["iterations"]):
        start, cpu = time.perf_counter(), time.process_time()
        losses.append(method.step(iteration))
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu)
    result = {"seconds": seconds, "cpu_seconds": cpu_seconds, "losses": losses,
              "peak_bytes": max(status_bytes("VmHWM") - before, 0), "data": ctx.real.source,
              "classes": ctx.num_classes, "threads": torch.get_num_threads()}
    if spec.get("profile"):
        result["profile"] = top_operators(lambda: method.step(spec["iterations"]))
    return result


def top_operators(run: Callable[[], object], count: int = 12) -> list[dict]:
    """torch.profiler's ``count`` operators with the most self CPU time while ``run`` runs."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        run()
        wall = time.perf_counter() - start
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [{"op": e.key, "self_s": e.self_cpu_time_total / 1e6, "share": e.self_cpu_time_total / total,
             "calls": e.count, "wall_s": wall} for e in events[:count]]


def print_profile(threads: int) -> None:
    """Profile the second of two dd3d-lab iterations in a child process and print the top operators."""
    result = run_child(__spec__.name, {"variant": "dd3d-lab", "iterations": 1, "profile": True, "threads": threads})
    if "error" in result:
        raise SystemExit(f"dd3d-lab: {result['error']}")
    rows = result["profile"]
    print(f"Top operators by self CPU time, one dd3d-lab iteration at reference-short ({result['data']}), "
          f"{rows[0]['wall_s']:.1f} s under the profiler, {result['threads']} torch threads")
    print(f"command: {command()}\nmachine: {machine()}\n")
    print("| operator | self CPU s | share | calls |\n| --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['op']} | {row['self_s']:.2f} | {100 * row['share']:.1f} % | {row['calls']} |")


def main() -> None:
    parser = profile_parser(__doc__, child=True)
    parser.add_argument("--profile", action="store_true", help="top operators of one dd3d-lab iteration instead")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per variant (0: torch's default)")
    args = parser.parse_args()
    if served_child(args, child):
        return
    profile = PROFILES[profile_of(parser, args)]
    if args.profile:
        print_profile(args.threads)
        return
    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for _ in range(profile["rounds"]):
        for variant in VARIANTS:  # back to back, alternating
            result = run_child(__spec__.name, {"variant": variant, "iterations": profile["iterations"],
                                               "threads": args.threads})
            if "error" in result:
                raise SystemExit(f"{variant}: {result['error']}")
            runs[variant].append(result)
            print(f"{variant}: {', '.join(f'{s:.2f}' for s in result['seconds'])} s/iteration (CPU "
                  f"{', '.join(f'{s:.2f}' for s in result['cpu_seconds'])} s)", flush=True)
    first = runs["release"][0]
    print(f"\nIteration time, reference-short: DD3D on {first['data']} ({first['classes']} classes), cpc 1, "
          f"10 outer steps × 1 inner epoch, 32 real + 1 synthetic clouds of 256 points; "
          f"{profile['iterations']} iterations × {profile['rounds']} round(s) per variant, alternating, "
          f"{first['threads']} torch threads")
    print(f"command: {command()}\nmachine: {machine()}")
    print("Only the ratio below counts: the variants ran back to back on a machine that may be shared.\n")
    print("| variant | wall s / iteration (median) | CPU s / iteration (median) | peak memory | losses |\n"
          "| --- | --- | --- | --- | --- |")
    wall, cpu = {}, {}
    for variant, results in runs.items():
        wall[variant] = statistics.median(s for r in results for s in r["seconds"])
        cpu[variant] = statistics.median(s for r in results for s in r["cpu_seconds"])
        peak = max(r["peak_bytes"] for r in results) / 2**30
        losses = ", ".join(f"{x:.4f}" for x in results[0]["losses"])
        print(f"| {variant} | {wall[variant]:.2f} | {cpu[variant]:.2f} | {peak:.2f} GiB | {losses} |")
    reference = runs["release"][0]["losses"]
    for variant in list(VARIANTS)[1:]:
        gap = max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(reference, runs[variant][0]["losses"]))
        print(f"\n{variant} over the release loop: {wall['release'] / wall[variant]:.2f}× in wall time, "
              f"{cpu['release'] / cpu[variant]:.2f}× in CPU time; loss curves differ by at most {gap:.1e} (relative)")


if __name__ == "__main__":
    main()
