"""The fast gradient-matching paths equal the plain ones: PointNet's analytic and grouped weight
gradients against autograd, and an outer step with classes batched against the per-class loop."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_distill import tiny

from dd3d.distill import build_method, pointnet_gradients
from dd3d.distill.matching import matched_parameters
from dd3d.distill.pointnet_gradients import analytic_gradients, grouped_gradients
from dd3d.distill.run import build_context
from dd3d.models import build_network
from dd3d.nn.rotator import Rotator

CLASSES, PER_CLASS, POINTS = 3, 4, 40


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> bool:
    """Equal up to ``tol`` relative to the larger magnitude (float32 rounding of different summation orders)."""
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max()) <= tol * float(b.abs().max())


def per_class_autograd(net: torch.nn.Module, points: torch.Tensor, labels: torch.Tensor,
                       create_graph: bool = False) -> list[torch.Tensor]:
    """Every class's weight gradients by one autograd pass per class, stacked: (classes, *shape) per weight."""
    params = matched_parameters(net)
    grads = [torch.autograd.grad(F.cross_entropy(net(p), y), params, create_graph=create_graph)
             for p, y in zip(points.split(PER_CLASS), labels.split(PER_CLASS))]
    return [torch.stack(g) for g in zip(*grads)]


def tiny_batch(kind: str) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    net = build_network("pointnet", "classification", 5, Rotator(kind), size="small")
    points = torch.randn(CLASSES * PER_CLASS, POINTS, 3)
    return net, points, torch.tensor([4, 0, 2]).repeat_interleave(PER_CLASS)


@pytest.mark.parametrize("kind", ["none", "fixed"])
@pytest.mark.parametrize("block", [None, 1, 5])
def test_analytic_and_grouped_gradients_equal_autograd(kind: str, block: int | None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    net, points, labels = tiny_batch(kind)
    if block is not None:  # the CPU's last layer a block of `block` clouds at a time (5: uneven blocks)
        monkeypatch.setattr(pointnet_gradients, "CACHED_FLOATS", block * POINTS * net.backbone.conv3.out_channels)
    expected = per_class_autograd(net, points, labels)
    analytic = analytic_gradients(net, points, labels, CLASSES)
    grouped = grouped_gradients(net, points, labels, CLASSES, create_graph=False)
    for weight, want in zip(matched_parameters(net), expected):
        assert analytic[weight].shape == want.shape and close(analytic[weight], want)
        assert close(grouped[weight], want)


def test_grouped_gradients_differentiate_like_autograd() -> None:
    net, points, labels = tiny_batch("learned")
    points.requires_grad_(True)
    probe = [torch.randn_like(g) for g in per_class_autograd(net, points, labels)]

    def through(grads: list[torch.Tensor]) -> list[torch.Tensor]:
        score = sum((g * p).sum() for g, p in zip(grads, probe))
        return list(torch.autograd.grad(score, [points, net.rotator.weight]))

    grouped = grouped_gradients(net, points, labels, CLASSES, create_graph=True)
    got = through([grouped[w] for w in matched_parameters(net)])
    want = through(per_class_autograd(net, points, labels, create_graph=True))
    assert all(close(g, w) for g, w in zip(got, want))


@pytest.mark.parametrize("method", ["dd3d", "gm"])
def test_batched_and_analytic_steps_equal_the_autograd_loop(method: str) -> None:
    """Same draws, same network: the matching loss and the synthetic representation's gradient of one
    outer step agree to 1e-5 whichever way the real and synthetic gradients are computed."""
    ctx = build_context(tiny(f"distill.method={method}", "distill.cpc=2", "model.size=small"), torch.device("cpu"))
    start, results = ctx.rng.get_state(), []
    for real_grad, batching in [("autograd", "loop"), ("analytic", "loop"), ("analytic", "batched"),
                                ("autograd", "batched")]:
        ctx.cfg.distill.real_grad, ctx.cfg.distill.class_batching = real_grad, batching
        torch.manual_seed(0)
        ctx.rng.set_state(start)
        m = build_method(method, ctx)
        net = ctx.new_network(m.rotator)
        assert m.batches_classes(net, per_part=False) == (batching == "batched")
        params = [p for group in m.optimizer.param_groups for p in group["params"]]
        grads, loss = m.summed_gradients(params, net, per_part=False, iteration=0, outer=0)
        results.append((loss, [g for g in grads if g is not None]))
    (loss0, grads0), *others = results
    assert float(loss0) > 0 and grads0
    for loss, grads in others:
        assert close(loss, loss0) and len(grads) == len(grads0)
        assert all(close(g, g0) for g, g0 in zip(grads, grads0))
