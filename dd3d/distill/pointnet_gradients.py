"""Per-class weight gradients of the classification PointNet, faster than one autograd pass per class.

Gradient matching (Eq. 13) needs, for every class k, ∇θ L_k with L_k the mean cross-entropy over the
class's clouds. Two ways to get them for a whole block of classes at once, the clouds of class k being
rows k·n … k·n + n − 1 of the batch (``groups`` equal blocks):

- :func:`analytic_gradients`, the real-data side (no graph needed: the real gradient is a constant of
  the distance). PointNet here is kernel-1 convolutions, InstanceNorm without affine, ReLU, max-pool and
  one Linear, so its weight gradients are a few matrix products written out by hand, channels last: the
  InstanceNorm backward r·(g − mean(g) − n·mean(g·n)), the max-pool backward a scatter into each channel's
  arg-max point (the single index of ``torch.max``, as the release's ``torch.max(x, 2)``; ``amax`` would
  split a tie evenly). The InstanceNorm statistics come from the previous layer's covariance, so scale
  and shift fold into one product per layer, and the last (1024-channel, only max-pooled) layer's
  backward is taken from that covariance too: its normalised output and its gradient are never
  formed. Nothing records a graph; the weight gradients of a block of classes are grouped products.
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


class Moments(NamedTuple):
    """Per-cloud statistics of a kernel-1 layer's output ``inputs @ weightᵀ`` over the points (dim 1 of
    channels-last (N, P, C)), from the input's: mean μ_x Wᵀ and variance diag(W Σ_x Wᵀ) (the layer's
    bias cancels in the InstanceNorm after it)."""

    centred: torch.Tensor  #: inputs − μ_x, (N, P, in)
    input_mean: torch.Tensor  #: μ_x, (N, 1, in)
    spread: torch.Tensor  #: Σ_x Wᵀ, (N, in, out)
    scale: torch.Tensor  #: 1/σ of the output, (N, 1, out)

    @classmethod
    def of(cls, inputs: torch.Tensor, weight: torch.Tensor) -> "Moments":
        mean = inputs.mean(dim=1, keepdim=True)
        centred = inputs - mean
        spread = torch.matmul(torch.bmm(centred.transpose(1, 2), centred) / inputs.shape[1], weight.t())
        scale = torch.rsqrt((spread * weight.t()).sum(dim=1, keepdim=True) + EPS)
        return cls(centred, mean, spread, scale)

    def output_mean(self, weight: torch.Tensor) -> torch.Tensor:
        """μ of the output (without the bias), (N, 1, out)."""
        return self.input_mean @ weight.t()


def _normalised_layer(inputs: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """InstanceNorm(inputs @ weightᵀ) in one product: the per-cloud scale and shift (:class:`Moments`)
    fold into the weights. Returns (normalised (N, P, out), 1/σ (N, 1, out))."""
    moments = Moments.of(inputs, weight)
    scale = moments.scale
    return torch.baddbmm(-moments.output_mean(weight) * scale, inputs, weight.t() * scale), scale


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
    # the last layer (N, P, 1024) is only max-pooled: its normalised values are never materialised
    hidden, weight = inputs[-1], weights[2]
    moments = Moments.of(hidden, weight)
    scale = moments.scale.squeeze(1)
    top, where = torch.matmul(hidden, weight.t()).max(dim=1)
    pooled = (top - moments.output_mean(weight).squeeze(1)) * scale  # = max_p (out_p − μ)/σ
    logits = backbone.fc(pooled)
    grad_logits = torch.softmax(logits, dim=1)
    grad_logits[torch.arange(size, device=x.device), labels] -= 1
    grad_logits /= per_group
    grads = {backbone.fc.weight: _grouped_outer(grad_logits, pooled, groups)}
    # ∂L/∂out_p = g·(δ_p,argmax − 1/P) − v·(out_p − μ) with g = ∂L/∂pooled·s, v = g·pooled·s/P; and
    # Σ_p (out_p − μ) ⊗ h_p = P·(Σ_h Wᵀ)ᵀ and Σ_i (out_p − μ)_i v_i W_i = (h_p − μ_h)·Wᵀ diag(v) W, so no
    # (N, P, 1024) gradient tensor is formed
    grad = (grad_logits @ backbone.fc.weight) * scale
    coefficient = grad * pooled * scale  # P·v
    index = where.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])  # each channel's arg-max point, (N, 1024, 128)
    at_max = torch.gather(hidden, 1, index)
    peaks = (grad.unsqueeze(-1) * at_max).unflatten(0, (groups, per_group)).sum(dim=1)
    spreads = (coefficient.unsqueeze(1) * moments.spread).unflatten(0, (groups, per_group)).sum(dim=1)
    grads[backbone.conv3.weight] = (peaks - _grouped_outer(grad, moments.input_mean, groups)
                                    - spreads.transpose(1, 2)).unsqueeze(-1)
    grad_hidden = torch.zeros_like(hidden).scatter_add_(1, index, grad.unsqueeze(-1) * weight)
    grad_hidden -= ((grad @ weight) / count).unsqueeze(1)
    grad_hidden -= torch.bmm(moments.centred, torch.matmul(weight.t() * (coefficient / count).unsqueeze(1), weight))
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
