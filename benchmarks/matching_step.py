"""One gradient-matching outer step: the plain reference loop vs dd3d's, side by side in one run.

    python -m benchmarks.matching_step --quick   # 10 classes × (32 real + 10 synthetic) × 1,024 points, 2 repeats
    python -m benchmarks.matching_step --paper   # same problem, 5 repeats (use on a GPU machine too)

The reference is the plain per-class loop of the released code: PointNet with InstanceNorm then
max-pool, gradients of every parameter (biases included, then ignored by the distance), glibc's
default allocator. Ours (dd3d.distill.matching): the real-data gradient written out by hand
(``distill.real_grad: analytic``, dd3d.distill.pointnet_gradients), the fused InstanceNorm/max-pool
identity on the synthetic side, gradients of multi-dimensional weights only (1-D tensors add 0 to the
distance), and glibc told to keep freed blocks (dd3d.device.keep_freed_memory). Both compute the loss on the same network, real batches and
synthetic clouds; the script checks the losses agree within 1e-4 and prints time per step and ratio.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from dd3d.config import DistillConfig, load_config
from dd3d.data import load_train_split, prepare_at
from dd3d.device import keep_freed_memory
from dd3d.distill.matching import class_distance, layerwise_distance, matched_parameters
from dd3d.errors import DD3DError
from dd3d.models import build_network
from dd3d.nn.rotator import Rotator
from dd3d.provenance import command, machine
from dd3d.train import Task

REPO = Path(__file__).resolve().parents[1]


def release_logits(net: torch.nn.Module, points: torch.Tensor) -> torch.Tensor:
    """PointNet's logits as the released code computes them: normalise the (B, 1024, P) tensor, then
    max-pool (``net`` a PointNet, or a rotator-wrapped one)."""
    if hasattr(net, "backbone"):
        net, points = net.backbone, net.rotator(points)
    x = F.relu(F.instance_norm(net.conv1(points.transpose(1, 2))))
    x = F.relu(F.instance_norm(net.conv2(x)))
    return net.fc(F.instance_norm(net.conv3(x)).amax(dim=2))


def release_gradients(net: torch.nn.Module, points: torch.Tensor, c: int,
                      create_graph: bool) -> tuple[torch.Tensor, ...]:
    """The release's gradient of the class-``c`` loss: plain autograd w.r.t. every parameter (biases too)."""
    labels = torch.full((len(points),), c, device=points.device)
    return torch.autograd.grad(F.cross_entropy(release_logits(net, points), labels), list(net.parameters()),
                               create_graph=create_graph)


def reference_loss(net: torch.nn.Module, real: list[torch.Tensor], syn: list[torch.Tensor]) -> torch.Tensor:
    total = 0.0
    for c, (r, s) in enumerate(zip(real, syn)):
        g_real = [g.detach() for g in release_gradients(net, r, c, create_graph=False)]
        total = total + layerwise_distance(g_real, release_gradients(net, s, c, create_graph=True))
    return total


def ours_loss(net: torch.nn.Module, real: list[torch.Tensor], syn: list[torch.Tensor]) -> torch.Tensor:
    """The shipped per-class distance (:func:`dd3d.distill.matching.class_distance`), summed over classes
    (the shipped step takes each class's gradient separately: the same work, less memory)."""
    params = matched_parameters(net)
    task = Task("classification", len(real))
    real_grad = DistillConfig().real_grad
    return sum(class_distance(task, net, params, c, (r, None), (s, None), real_grad=real_grad)
               for c, (r, s) in enumerate(zip(real, syn)))


def timed_step(loss_fn: Callable, net: torch.nn.Module, real: list[torch.Tensor], syn_leaf: torch.Tensor,
               cpc: int, repeats: int) -> tuple[float, float]:
    """Median seconds of (loss + backward to the synthetic clouds), and the loss value."""
    times, value = [], 0.0
    for _ in range(repeats):
        syn_leaf.grad = None
        syn = list(syn_leaf.split(cpc))
        start = time.perf_counter()
        loss = loss_fn(net, real, syn)
        loss.backward()
        times.append(time.perf_counter() - start)
        value = float(loss.detach())
    return statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    profile = parser.add_mutually_exclusive_group(required=True)
    profile.add_argument("--quick", action="store_true")
    profile.add_argument("--paper", action="store_true")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--real", type=int, default=32)
    parser.add_argument("--cpc", type=int, default=10)
    parser.add_argument("--points", type=int, default=1024)
    args = parser.parse_args()
    repeats = 2 if args.quick else 5
    try:
        cfg = load_config(REPO / "configs" / "modelnet10.yaml", [f"data.resolution={args.points}"])
        train = load_train_split(cfg)
        source = "ModelNet10 (shared/data)"
    except DD3DError:
        cfg = load_config(REPO / "configs" / "shapes.yaml", [f"data.resolution={args.points}"])
        train = load_train_split(cfg)
        source = "built-in shapes"
    train = prepare_at(train, cfg, "train", args.points)
    g = torch.Generator().manual_seed(0)
    real, syn = [], []
    for c in range(args.classes):
        idx = torch.from_numpy((train.labels == c).nonzero()[0])
        pick = idx[torch.randperm(len(idx), generator=g)[: args.real + args.cpc]]
        clouds = torch.from_numpy(train.points[pick.numpy()])
        real.append(clouds[: args.real])
        syn.append(clouds[args.real:])
    syn_leaf = torch.cat(syn).clone().requires_grad_(True)
    torch.manual_seed(0)
    ref_net = build_network("pointnet", "classification", args.classes, Rotator("none"))
    our_net = build_network("pointnet", "classification", args.classes, Rotator("none"))
    our_net.load_state_dict(ref_net.state_dict())

    rows = []
    t_ref, loss_ref = timed_step(reference_loss, ref_net, real, syn_leaf, args.cpc, repeats)
    rows.append(("reference loop (default allocator)", t_ref, loss_ref))
    t_ours_plain, loss_ours = timed_step(ours_loss, our_net, real, syn_leaf, args.cpc, repeats)
    rows.append(("dd3d loop (default allocator)", t_ours_plain, loss_ours))
    kept = keep_freed_memory()
    t_ref_kept, _ = timed_step(reference_loss, ref_net, real, syn_leaf, args.cpc, repeats)
    rows.append(("reference loop (freed memory kept)", t_ref_kept, loss_ref))
    t_ours, loss_ours2 = timed_step(ours_loss, our_net, real, syn_leaf, args.cpc, repeats)
    rows.append(("dd3d loop (freed memory kept) = shipped", t_ours, loss_ours2))

    print(f"Matching step: {args.classes} classes × ({args.real} real + {args.cpc} synthetic) × {args.points} points, "
          f"PointNet, {source}; median of {repeats}; allocator setting applied: {kept}")
    print(f"command: {command()}\nmachine: {machine()}\n")
    print("| implementation | s / outer step | loss |\n| --- | --- | --- |")
    for name, t, loss in rows:
        print(f"| {name} | {t:.2f} | {loss:.6f} |")
    diff = max(abs(loss_ours - loss_ref), abs(loss_ours2 - loss_ref)) / max(abs(loss_ref), 1e-12)
    print(f"\nrelative loss difference (ours vs reference): {diff:.2e} ({'OK' if diff < 1e-4 else 'MISMATCH'} at 1e-4)")
    print(f"speed-up of the shipped loop over the reference: {t_ref / t_ours:.2f}×")


if __name__ == "__main__":
    main()
