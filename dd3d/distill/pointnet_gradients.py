"""Per-class weight gradients of the classification PointNet, faster than one autograd pass per class.

Gradient matching (Eq. 13) needs, for every class k, ∇θ L_k with L_k the mean cross-entropy over the
class's clouds. Two ways to get them for a whole block of classes at once, the clouds of class k being
rows k·n … k·n + n − 1 of the batch (``groups`` equal blocks):

- :func:`analytic_gradients`, the real-data side (no graph needed: the real gradient is a constant of
  the distance). PointNet here is kernel-1 convolutions, InstanceNorm without affine, ReLU, max-pool and
  one Linear, so its weight gradients are a few matrix products written out by hand, channels last: the
  InstanceNorm backward r·(g − mean(g) − n·mean(g·n)), the max-pool backward a scatter into each channel's
  arg-max point (the single index of ``torch.max``, as the release's ``torch.max(x, 2)``; ``amax`` would
  split a tie evenly), and the last norm's backward folded into the same tensor as the scatter. Nothing
  records a graph, and the weight gradients of a block are one ``bmm`` per layer.
- :func:`grouped_gradients`, any side (``create_graph`` for the synthetic one): one autograd pass from
  the summed loss to every layer's *output*, then per-class weight gradients as one grouped product of
  output gradients and layer inputs. Classification PointNet treats every cloud independently (no
  BatchNorm), so a layer output's gradient under Σ_k L_k is its gradient under its own class's L_k.

Both return ``{weight: (groups, *weight.shape)}`` for the backbone's multi-dimensional weights
(:func:`dd3d.distill.matching.matched_parameters`); biases get no entry (they add 0 to the distance).
"""
from __future__ import annotations

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
    """InstanceNorm(inputs @ weightᵀ) over the points (dim 1) of channels-last (N, P, C) in one product:
    the output's mean and variance come from the input's (μ_x Wᵀ and the rows of W Σ_x Wᵀ), so the
    per-cloud scale and shift fold into the weights (the layer's bias cancels in the norm).
    Returns (normalised (N, P, out), 1/σ (N, 1, out))."""
    mean = inputs.mean(dim=1, keepdim=True)
    centred = inputs - mean
    covariance = torch.bmm(centred.transpose(1, 2), centred) / inputs.shape[1]
    var = (torch.matmul(covariance, weight.t()) * weight.t()).sum(dim=1, keepdim=True)
    scale = torch.rsqrt(var + EPS)
    return torch.baddbmm(-(mean @ weight.t()) * scale, inputs, weight.t() * scale), scale


def _norm_relu_backward(grad: torch.Tensor, normed: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Gradient at the input of ReLU(InstanceNorm(·)) from the gradient at its output, in place on ``grad``."""
    grad = grad.masked_fill_(normed <= 0, 0)
    mean = grad.mean(dim=1, keepdim=True)
    projection = torch.linalg.vecdot(grad, normed, dim=1).unsqueeze(1) / grad.shape[1]
    return grad.addcmul_(normed, projection, value=-1).sub_(mean).mul_(scale)


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
    normed, scale = _normalised_layer(inputs[-1], weights[2])  # (N, P, 1024): the last norm, no ReLU
    pooled, where = normed.max(dim=1)  # = (max − μ)/σ
    logits = backbone.fc(pooled)
    grad_logits = torch.softmax(logits, dim=1)
    grad_logits[torch.arange(size, device=x.device), labels] -= 1
    grad_logits /= per_group
    grads = {backbone.fc.weight: _grouped_outer(grad_logits, pooled, groups)}
    # pooled = max_p n_p with n = (out − μ)·s: ∂/∂out_p = g·s·(δ_p,argmax − 1/P − pooled·n_p/P)
    grad_pooled = (grad_logits @ backbone.fc.weight) * scale.squeeze(1)
    grad_out = torch.addcmul((grad_pooled / -count).unsqueeze(1), normed, (grad_pooled * pooled / -count).unsqueeze(1))
    grad_out.scatter_add_(1, where.unsqueeze(1), grad_pooled.unsqueeze(1))
    for layer in (2, 1, 0):
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
    for (weight, inputs, _), grad in zip(taps, outputs):
        if grad.ndim == 3:  # a convolution, channels first (N, C, P): summed over the points too
            grads[weight] = torch.einsum("knop,knip->koi", grad.unflatten(0, (groups, -1)),
                                         inputs.unflatten(0, (groups, -1))).unsqueeze(-1)
        else:
            grads[weight] = _grouped_outer(grad, inputs, groups)
    return grads
