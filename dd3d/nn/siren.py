"""SIREN sine layers (Sitzmann et al., 2020) as used by the DD3D generator (paper Appendix B).

Initialisation follows the reference code (docs/reference-settings.md "Generator"): the first layer's weights and
biases are U(−1/fan_in, 1/fan_in) and its pre-activation is scaled by ω0; later layers are
U(±sqrt(6/fan_in)) (the SIREN bound sqrt(6/fan_in)/w with hidden w = 1, because ω0 lives in the
first activation only).
"""
from __future__ import annotations

import math

import torch
from torch import nn


def siren_bound(fan_in: int, first: bool) -> float:
    """Half-width of the uniform initialisation: 1/fan_in for a first layer, sqrt(6/fan_in) after."""
    return 1.0 / fan_in if first else math.sqrt(6.0 / fan_in)


def siren_init_(linear: nn.Linear, first: bool) -> None:
    """Initialise ``linear``'s weight (and bias, if any) uniformly within ±siren_bound."""
    bound = siren_bound(linear.in_features, first)
    with torch.no_grad():
        linear.weight.uniform_(-bound, bound)
        if linear.bias is not None:
            linear.bias.uniform_(-bound, bound)


class SineLayer(nn.Module):
    """y = sin(ω0 (W x + b)) for the first layer, y = sin(W x + b) after; optionally y ⊙ modulation."""

    def __init__(self, in_features: int, out_features: int, omega0: float, first: bool, bias: bool = True) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.scale = omega0 if first else 1.0
        siren_init_(self.linear, first)

    def forward(self, x: torch.Tensor, modulation: torch.Tensor | None = None) -> torch.Tensor:
        """x (..., in) -> (..., out); ``modulation`` multiplies the output and broadcasts against it."""
        y = torch.sin(self.scale * self.linear(x))
        return y if modulation is None else y * modulation
