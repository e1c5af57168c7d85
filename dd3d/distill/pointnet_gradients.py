"""Per-class weight gradients of the classification PointNet, faster than one autograd pass per class.

Gradient matching (Eq. 13) needs, for every class k, ∇θ L_k with L_k the mean cross-entropy over the
class's clouds. Two ways to get them for a whole block of classes at once, the clouds of class k being
rows k·n … k·n + n − 1 of the batch (``groups`` equal blocks):

- :func:`analytic_gradients`, the real-data side (no graph needed: the real gradient is a constant of
  the distance). PointNet here is kernel-1 convolutions, InstanceNorm without affine, ReLU, max-pool and
  one Linear, so its weight gradients are a few matrix products written out by hand, channels last: the
  InstanceNorm backward r·(g − mean(g) − n·mean(g·n)), the max-pool backward a scatter into each channel's
  arg-max point (the single index of ``torch.max``, as the release's ``torch.max(x, 2)``; ``amax`` would
  split a tie evenly). The InstanceNorm statistics of the first two layers come from their input's
  covariance, so scale and shift fold into one product per layer; the last (1024-channel, only
  max-pooled) layer is reduced block by block while in cache, and its backward is taken from its input's
  covariance: its normalised output and its gradient are never formed. Nothing records a graph; the
  weight gradients of a block of classes are grouped products.
- :func:`grouped_gradients`, any side (``create_graph`` for the synthetic one): one autograd pass from
  the summed loss to every layer's *output*, then per-class weight gradients as one grouped product of
  output gradients and layer inputs. Classification PointNet treats every cloud independently (no
  BatchNorm), so a layer output's gradient under Σ_k L_k is its gradient under its own class's L_k.

Both return ``{weight: (groups, *weight.shape)}`` for the backbone's multi-dimensional weights
(:func:`dd3d.distill.matching.matched_parameters`); biases get no entry (they add 0 to the distance).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from dd3d.models.pointnet import PointNet
from dd3d.train import Task

EPS = 1e-5  # F.instance_norm's default, as in PointNet


def applies(task: Task, net: nn.Module) -> bool:
    """Whether these gradients are those of ``net``: classification with the PointNet backbone."""
    return task.kind == "classification" and isinstance(getattr(net, "backbone", None), PointNet)


def _normalised_layer(inputs: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """InstanceNorm(inputs @ weightᵀ) in one product, from the input's per-cloud statistics over the
    points (dim 1 of channels-last (N, P, in)): the output's mean is μ_x Wᵀ and its variance
    diag(W Σ_x Wᵀ) (the layer's bias cancels in the norm), so scale and shift fold into the weights.
    Returns (normalised (N, P, out), 1/σ (N, 1, out))."""
    mean = inputs.mean(dim=1, keepdim=True)
    centred = inputs - mean
    spread = torch.matmul(torch.bmm(centred.transpose(1, 2), centred) / inputs.shape[1], weight.t())  # Σ_x Wᵀ
    scale = torch.rsqrt((spread * weight.t()).sum(dim=1, keepdim=True) + EPS)
    return torch.baddbmm(-(mean @ weight.t()) * scale, inputs, weight.t() * scale), scale


def _norm_relu_backward(grad: torch.Tensor, normed: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Gradient at the input of ReLU(InstanceNorm(·)) from the gradient at its output (``grad`` is consumed).

    The ReLU's backward is aten's own ``threshold_backward`` (what autograd runs for ReLU): one vectorised
    pass, ≈10× faster on the CPU than ``masked_fill_`` with a ``normed <= 0`` mask."""
    grad = torch.ops.aten.threshold_backward(grad, normed, 0)
    mean = grad.mean(dim=1, keepdim=True)
    projection = torch.linalg.vecdot(grad, normed, dim=1).unsqueeze(1) / grad.shape[1]
    return grad.addcmul_(normed, projection, value=-1).sub_(mean).mul_(scale)


#: on the CPU, :func:`_pooled_statistics` works in blocks of clouds whose outputs fit in this many floats
#: (1 MiB: one cloud of 256 points × 1,024 channels, kept in cache between the product and its reductions)
CACHED_FLOATS = 2 ** 18


class Pooled(NamedTuple):
    """Per-cloud statistics over the points of a centred layer output ``centred @ weightᵀ``, (N, out) each."""

    top: torch.Tensor  #: the maximum, max_p (out_p − μ)
    where: torch.Tensor  #: the arg-max (the single index of ``torch.max``)
    variance: torch.Tensor  #: the biased variance (InstanceNorm's)


def _pooled_statistics(centred: torch.Tensor, weight: torch.Tensor) -> Pooled:
    """:class:`Pooled` of ``centred @ weightᵀ`` from channels-last (N, P, in) inputs whose mean over the
    points is zero (so is the output's).

    On the CPU the product is formed a block of clouds at a time and reduced while it is in cache: on the
    2-core build machine, max and arg-max of 32 clouds × 256 points × 1,024 channels took ≈ 31 ms in blocks
    of one cloud against ≈ 42 ms as one product. The (N, P, out) tensor is never held whole."""
    block = len(centred)
    if centred.device.type == "cpu":
        block = max(1, CACHED_FLOATS // (centred.shape[1] * weight.shape[0]))
    parts = []
    for chunk in centred.split(block):
        out = torch.matmul(chunk, weight.t())
        # the mean is zero, so the variance is the mean square (torch.var_mean along dim 1 is ≈ 15× slower)
        parts.append((*out.max(dim=1), (out * out).mean(dim=1)))
    return Pooled(*(torch.cat(column) for column in zip(*parts)))


def _grouped_outer(grad: torch.Tensor, inputs: torch.Tensor, groups: int) -> torch.Tensor:
    """Σ over each group's rows of grad ⊗ input: (groups, out, in) from channels-last (N, …, out), (N, …, in)."""
    return torch.bmm(grad.reshape(groups, -1, grad.shape[-1]).transpose(1, 2),
                     inputs.reshape(groups, -1, inputs.shape[-1]))


@torch.no_grad()
def analytic_gradients(net: nn.Module, points: torch.Tensor, labels: torch.Tensor,
                       groups: int = 1) -> dict[nn.Parameter, torch.Tensor]:
    """∇ of each group's mean cross-entropy w.r.t. PointNet's weights, written out (module docstring).

    ``net`` is a :class:`dd3d.nn.rotator.RotatedBackbone` around a :class:`PointNet`; ``points``
    (N, P, 3), ``labels`` (N,); N a multiple of ``groups``. No graph is built.
    """
    backbone: PointNet = net.backbone
    x = net.rotator(points)
    size, count = x.shape[0], x.shape[1]
    per_group = size // groups
    convs = [backbone.conv1, backbone.conv2, backbone.conv3]
    weights = [conv.weight[:, :, 0] for conv in convs]
    inputs, norms = [x], []
    for weight in weights[:2]:  # conv → InstanceNorm → ReLU
        normed, scale = _normalised_layer(inputs[-1], weight)
        norms.append((normed, scale))
        inputs.append(normed.clamp_min(0))
    # the last layer (N, P, 1024) is only max-pooled: its normalised values are never materialised
    hidden, weight = inputs[-1], weights[2]
    input_mean = hidden.mean(dim=1, keepdim=True)
    centred = hidden - input_mean  # the layer's bias and mean cancel in the InstanceNorm
    stats = _pooled_statistics(centred, weight)
    scale = torch.rsqrt(stats.variance + EPS)
    pooled = stats.top * scale  # = max_p (out_p − μ)/σ
    logits = backbone.fc(pooled)
    grad_logits = torch.softmax(logits, dim=1)
    grad_logits[torch.arange(size, device=x.device), labels] -= 1
    grad_logits /= per_group
    grads = {backbone.fc.weight: _grouped_outer(grad_logits, pooled, groups)}
    # ∂L/∂out_p = g·(δ_p,argmax − 1/P) − v·(out_p − μ) with g = ∂L/∂pooled·s, v = g·pooled·s/P; and
    # Σ_p (out_p − μ) ⊗ h_p = W·C with C = Σ_p (h_p − μ_h)ᵀ(h_p − μ_h), and Σ_i (out_p − μ)_i v_i W_i =
    # (h_p − μ_h)·Wᵀ diag(v) W, so no (N, P, 1024) gradient tensor is formed
    grad = (grad_logits @ backbone.fc.weight) * scale
    coefficient = grad * pooled * scale  # P·v
    # each channel's arg-max point as a row of the flattened (N·P, 128) input: whole rows are copied and
    # added (index_select / index_add_), several times faster than gather / scatter_add_ along dim 1
    rows = (stats.where + torch.arange(0, size * count, count, device=x.device).unsqueeze(1)).flatten()
    width = hidden.shape[-1]
    at_max = hidden.reshape(-1, width).index_select(0, rows).view(size, -1, width)  # (N, 1024, 128)
    peaks = (grad.unsqueeze(-1) * at_max).unflatten(0, (groups, per_group)).sum(dim=1)
    # Wᵀ diag(P·v) per cloud, built contiguous (N, 128, 1024); a group's Σ_n C_n Wᵀ diag(P·v_n) is then
    # one product of the side-by-side C_n with these stacked
    weighted = weight.t().contiguous() * coefficient.unsqueeze(1)
    scatter = torch.bmm(centred.transpose(1, 2), centred)  # C, (N, 128, 128)
    side_by_side = scatter.unflatten(0, (groups, per_group)).transpose(1, 2).reshape(groups, width, -1)
    spreads = torch.bmm(side_by_side, weighted.view(groups, -1, weighted.shape[-1])) / count
    grads[backbone.conv3.weight] = (peaks - _grouped_outer(grad, input_mean, groups)
                                    - spreads.transpose(1, 2)).unsqueeze(-1)
    grad_hidden = torch.zeros_like(hidden).view(-1, width).index_add_(
        0, rows, (grad.unsqueeze(-1) * weight).view(-1, width)).view_as(hidden)
    grad_hidden -= ((grad @ weight) / count).unsqueeze(1)
    grad_hidden -= torch.bmm(centred, torch.matmul(weighted, weight) / count)
    grad_out = _norm_relu_backward(grad_hidden, *norms[1])
    for layer in (1, 0):
        grads[convs[layer].weight] = _grouped_outer(grad_out, inputs[layer], groups).unsqueeze(-1)
        if layer:
            grad_out = _norm_relu_backward(torch.matmul(grad_out, weights[layer]), *norms[layer - 1])
    return grads


def grouped_gradients(net: nn.Module, points: torch.Tensor, labels: torch.Tensor, groups: int,
                      create_graph: bool) -> dict[nn.Parameter, torch.Tensor]:
    """∇ of each group's mean cross-entropy w.r.t. PointNet's weights in one autograd pass (module
    docstring); with ``create_graph`` differentiable w.r.t. ``points`` (and the rotator)."""
    taps = net.backbone.trace(net.rotator(points))
    loss = F.cross_entropy(taps[-1][2], labels, reduction="sum") / (len(points) // groups)
    outputs = torch.autograd.grad(loss, [out for _, _, out in taps], create_graph=create_graph)
    grads = {}
    with torch.set_grad_enabled(create_graph):
        for (weight, inputs, _), grad in zip(taps, outputs):
            grads[weight] = _tap_gradient(grad, inputs, groups)
    return grads


def _tap_gradient(grad: torch.Tensor, inputs: torch.Tensor, groups: int) -> torch.Tensor:
    """Per-group weight gradient of one layer from its output gradient and its input."""
    if grad.ndim == 3:  # a convolution, channels first (N, C, P): summed over the points too
        return torch.einsum("knop,knip->koi", grad.unflatten(0, (groups, -1)),
                            inputs.unflatten(0, (groups, -1))).unsqueeze(-1)
    return _grouped_outer(grad, inputs, groups)
