"""Neural building blocks shared by the backbones: model sizes, 1×1 units, MLP stacks, the FC head.

Every backbone works channels-last: a ``Unit`` is the original implementations' 1×1 Conv1d/Conv2d
+ BatchNorm + activation written as Linear + BatchNorm over the last dimension of a (…, C) tensor
(the same function and the same per-channel batch statistics over all other dimensions).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dd3d.errors import ConfigError

#: ``model.size`` → divisor of every channel width (and of the number of sampled centres).
SIZES = {"full": 1, "small": 4}


def width_divisor(size: str) -> int:
    """The width divisor of ``size`` ('full' → 1, 'small' → 4); anything else is a ``ConfigError``."""
    if size not in SIZES:
        raise ConfigError(f"model.size: expected one of {', '.join(SIZES)}, got {size!r}")
    return SIZES[size]


def shrink(value: int, divisor: int) -> int:
    """``value // divisor``, at least 1: a width or centre count of a smaller model."""
    return max(1, value // divisor)


def scaled(values: Sequence[int], divisor: int) -> tuple[int, ...]:
    """Every one of ``values`` shrunk by ``divisor``."""
    return tuple(shrink(v, divisor) for v in values)


def activation(kind: str) -> nn.Module:
    """'relu', 'leaky' (LeakyReLU 0.2, as DGCNN and PCT use) or 'none'."""
    return {"relu": nn.ReLU, "leaky": lambda: nn.LeakyReLU(0.2), "none": nn.Identity}[kind]()


class Unit(nn.Module):
    """Linear (no bias) → BatchNorm → activation over the last dimension of a (…, C) tensor.

    The bias is left out because BatchNorm's shift makes it redundant (in training mode its
    gradient is exactly zero).
    """

    def __init__(self, in_channels: int, out_channels: int, act: str = "relu") -> None:
        super().__init__()
        self.linear = nn.Linear(in_channels, out_channels, bias=False)
        self.norm = nn.BatchNorm1d(out_channels)
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)
        return self.act(self.norm(y.reshape(-1, y.shape[-1])).view_as(y))


def mlp(widths: Sequence[int], act: str = "relu", last_act: bool = True) -> nn.Sequential:
    """Units widths[0] → widths[1] → … → widths[-1]; the last one without activation unless ``last_act``."""
    pairs = list(zip(widths[:-1], widths[1:]))
    return nn.Sequential(*(Unit(cin, cout, act if last_act or i < len(pairs) - 1 else "none")
                           for i, (cin, cout) in enumerate(pairs)))


class ClassifierHead(nn.Sequential):
    """Global feature → [Linear → BatchNorm → act → Dropout(0.5)] per hidden width → Linear(num_classes).

    The FC 512-256-C head of PointNet++, DGCNN, PCT, PointMLP and PointNeXt (``hidden`` = (512, 256)
    at full size), and per point (on (B, P, C)) PointNet++'s 128 → dropout → parts segmentation head.
    """

    def __init__(self, in_channels: int, hidden: Sequence[int], num_classes: int, act: str = "relu") -> None:
        layers: list[nn.Module] = []
        for cin, cout in zip((in_channels, *hidden[:-1]), hidden):
            layers += [Unit(cin, cout, act), nn.Dropout(0.5)]
        super().__init__(*layers, nn.Linear(hidden[-1], num_classes))
