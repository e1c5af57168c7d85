"""Start DD3D's generator from real clouds (``distill.generator.init: real``; beyond the paper).

The paper starts matching from a freshly initialised generator. Here, before the first iteration,
the generator and every sample's latent are fitted for ``generator.init_steps`` Adam steps (lr
``generator.init_lr``) so that sample s, the k-th of its class, reproduces the k-th real cloud that
herding chooses for that class (:func:`dd3d.distill.selection.herding_order`; for cpc 1 the cloud
whose feature is nearest the class mean), by the Chamfer distance

    CD(X, Y) = mean_x min_y ‖x − y‖² + mean_y min_x ‖x − y‖²

between the sample's cloud generated from fresh noise at ``distill.resolution`` points (every step)
and the real cloud at ``data.resolution`` points. Matching then starts where the herding coreset is.
For segmentation a generated point is matched only to real points of its own part (its noise
interval, :class:`dd3d.nn.partition.NoisePartition`), so each part's interval maps onto that part
and part labels are spatially coherent from the start; a part missing from the real cloud (or from
the generated one) is matched against the whole cloud.

The distance is a dense (N, M) squared-distance matrix plus minima (O(N·M) memory per cloud,
processed ``FIT_CHUNK`` clouds at a time for the backward pass): no maintained Chamfer package installs
beside the pinned CPU torch (PyTorch3D's is a compiled extension), and the dense form is exact and fast
at these sizes.
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from dd3d.distill.base import DistillContext
from dd3d.distill.selection import herding_order, select_per_class
from dd3d.nn.generator import PointGenerator
from dd3d.nn.partition import NoisePartition, generate_labelled

FIT_CHUNK = 16  # clouds per Chamfer evaluation (bounds the (chunk, N, M) distance tensor)


def chamfer_distance(a: torch.Tensor, b: torch.Tensor, a_parts: torch.Tensor | None = None,
                     b_parts: torch.Tensor | None = None) -> torch.Tensor:
    """Squared-distance Chamfer distance (B,) between clouds a (B, N, 3) and b (B, M, 3).

    With part labels (B, N) and (B, M) a point's nearest neighbour is taken among the other cloud's
    points of the same part, or among all its points when that part is absent there.
    """
    d = (a.square().sum(dim=2)[:, :, None] + b.square().sum(dim=2)[:, None, :]
         - 2 * a @ b.transpose(1, 2)).clamp_min(0)  # gradient-safe at coincident points, unlike cdist
    if a_parts is None or b_parts is None:
        return d.amin(dim=2).mean(dim=1) + d.amin(dim=1).mean(dim=1)
    same = a_parts[:, :, None] == b_parts[:, None, :]
    a_allowed = same | ~same.any(dim=2, keepdim=True)
    b_allowed = same | ~same.any(dim=1, keepdim=True)
    inf = d.new_tensor(float("inf"))
    return (torch.where(a_allowed, d, inf).amin(dim=2).mean(dim=1)
            + torch.where(b_allowed, d, inf).amin(dim=1).mean(dim=1))


def herding_targets(ctx: DistillContext) -> tuple[torch.Tensor, torch.Tensor | None, np.ndarray]:
    """The real cloud each synthetic sample is fitted to (K·cpc, P, 3) at ``data.resolution``, their part
    labels or None, and their training indices (class-block order, like the synthetic samples)."""
    index = select_per_class(ctx, herding_order)
    source = ctx.real_source if ctx.real_source is not None else ctx.real_full
    points = torch.from_numpy(source.points[index]).to(ctx.device)
    parts = None if source.parts is None else torch.from_numpy(source.parts[index]).to(ctx.device)
    return points, parts, index


def fit_to_clouds(generator: PointGenerator, partition: NoisePartition | None, targets: torch.Tensor,
                  target_parts: torch.Tensor | None, cpc: int, steps: int, lr: float, points: int,
                  rng: torch.Generator, progress: bool = True) -> list[float]:
    """Fit ``generator`` so that sample s generates ``targets[s]``: ``steps`` Adam steps on the summed
    Chamfer distance of all samples, fresh noise every step. Returns the mean distance per step."""
    optimizer = torch.optim.Adam(generator.parameters(), lr=lr)
    samples = torch.arange(len(targets), device=targets.device)
    curve = []
    for _ in tqdm(range(steps), desc="dd3d warm start", unit="step", leave=False, disable=not progress):
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for chunk in samples.split(FIT_CHUNK):
            clouds, parts = generate_labelled(generator, partition, chunk, cpc, points, rng)
            distance = chamfer_distance(clouds, targets[chunk], parts,
                                        None if target_parts is None else target_parts[chunk]).sum()
            distance.backward()
            total += float(distance.detach())
        optimizer.step()
        curve.append(total / len(targets))
    return curve
