"""Forward+backward time and peak memory of every classification backbone at batch 16 × 1,024 points.

    python -m benchmarks.backbones --quick    # size 'small' only, 1 warm-up + 3 timed repetitions
    python -m benchmarks.backbones --paper    # sizes 'full' and 'small', 1 warm-up + 5 repetitions

One step = zero_grad, forward, cross-entropy (40 classes), backward, in training mode. Time is the
median over the timed repetitions after the warm-up. Each (backbone, size) runs in a fresh child
process; its peak memory is measured over the warm-up and repetitions, above what the model and
the batch already hold: on CUDA torch.cuda.max_memory_allocated, on CPU the peak resident set
(resource.getrusage ru_maxrss, reset through /proc/self/clear_refs before the steps) minus the
resident set before them (the first step's one-time allocations included).
"""
from __future__ import annotations

import json
import statistics
import time

from benchmarks.harness import profile_of, profile_parser, run_child
BATCH, POINTS, CLASSES = 16, 1024, 40
PROFILES = {"quick": {"sizes": ["small"], "reps": 3}, "paper": {"sizes": ["full", "small"], "reps": 5}}


def child(spec: dict) -> dict:
    """Time and measure one backbone at one size (runs in a fresh process)."""
    import torch
    import torch.nn.functional as F

    from dd3d.models import build_model
    from dd3d.provenance import peak_memory_bytes

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    torch.manual_seed(0)
    model = build_model(spec["name"], "classification", CLASSES, size=spec["size"]).to(device).train()
    points = (torch.rand(BATCH, POINTS, 3, device=device) * 2 - 1)
    labels = torch.randint(CLASSES, (BATCH,), device=device)

    def step() -> float:
        start = time.perf_counter()
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(points), labels).backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    else:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset the peak resident set so imports and set-up do not count
        except OSError:
            pass
        before = peak_memory_bytes(device)
    step()
    seconds = statistics.median(step() for _ in range(spec["reps"]))
    return {"seconds": seconds, "peak_bytes": max(peak_memory_bytes(device) - before, 0),
            "parameters": sum(p.numel() for p in model.parameters())}


def main() -> None:
    parser = profile_parser(__doc__, child=True)
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    spec = PROFILES[profile_of(parser, args)]
    import torch

    from dd3d.models import CLASSIFIERS
    from dd3d.provenance import command, machine

    if args.threads:
        torch.set_num_threads(args.threads)  # so that machine() reports the threads the children use
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    memory = ("peak CUDA allocation (torch.cuda.max_memory_allocated)" if device == "cuda" else
              "peak resident set (resource ru_maxrss)")
    print(f"command: {command()}\nmachine: {machine()}\ndevice: {device}\n")
    print(f"Forward+backward of one training step, batch {BATCH} × {POINTS} points, {CLASSES} classes: median of "
          f"{spec['reps']} repetitions after 1 warm-up; peak memory = {memory} during the steps minus that "
          f"before them (model and batch excluded; on CPU it includes the first step's one-time "
          f"allocations), one fresh process per row.\n")
    print("| backbone | size | parameters | fwd+bwd (s) | peak memory (MiB) |\n| --- | --- | --- | --- | --- |")
    for size in spec["sizes"]:
        for name in CLASSIFIERS:
            r = run_child(__spec__.name, {"name": name, "size": size, "reps": spec["reps"], "device": device, "threads": args.threads})
            if "error" in r:
                print(f"| {name} | {size} | {r['error']} | | |", flush=True)
                continue
            print(f"| {name} | {size} | {r['parameters']:,} | {r['seconds']:.3f} | {r['peak_bytes'] / 2**20:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
