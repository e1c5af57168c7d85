"""The point-wise generator g with its per-sample modulator c (paper §4.2, Eq. 10-12).

Noise u ~ U(0, 1)^D per point is mapped to a 3-D point, so N noise draws give an N-point cloud from the
same weights (low-resolution distillation, high-resolution evaluation):

    x = tanh(W_out [m_L ⊙ sin(W_L(… [m_1 ⊙ sin(ω0 (W_1 u + b_1))] …) + b_L)])      (Eq. 10, 12)

with W_out bias-free. The modulator (Eq. 11) holds one latent e per synthetic sample (num_classes ×
cpc rows; class c owns rows c·cpc … c·cpc+cpc−1, docs/reference-settings.md "Generator"): m_1 = ReLU(e),
m_{i+1} = ReLU(A_i m_i + a_i). Each modulation scales a sine layer's output, broadcast over points.

The paper draws one scalar per point (D = 1, Algorithm 2's "noise [B, N, 1]"), so each cloud is the
image of [0, 1]: a single curve in space. ``noise_dim`` 2 (beyond the paper, ``distill.generator.noise_dim``)
maps the unit square instead, a sheet folded onto the shape as in FoldingNet/AtlasNet, which is what
makes warm-started clouds recognisable surfaces (docs/fidelity.md). ``noise`` ``stratified`` (beyond the
paper, ``distill.generator.noise``) draws the N values of a cloud one per 1/N slice of [0, 1] instead of
independently, so the points are spread evenly along the curve (:func:`latin_hypercube`).
"""
from __future__ import annotations

from typing import get_args, get_type_hints

import torch
from torch import nn

from dd3d.config import GeneratorConfig
from dd3d.nn.siren import SineLayer, siren_init_

#: the values of ``distill.generator.noise`` (how :meth:`PointGenerator.sample_noise` draws), read from the
#: config's ``Literal`` so the two cannot drift apart
NOISE_SAMPLINGS: tuple[str, ...] = get_args(get_type_hints(GeneratorConfig)["noise"])


class PointGenerator(nn.Module):
    """Noise (B, N, D) in [0, 1] and sample indices (B,) -> point clouds (B, N, 3) in (−1, 1)."""

    def __init__(self, num_samples: int, width: int = GeneratorConfig.width, layers: int = GeneratorConfig.layers,
                 omega0: float = GeneratorConfig.omega0, noise_dim: int = GeneratorConfig.noise_dim,
                 noise: str = GeneratorConfig.noise) -> None:
        super().__init__()
        if noise not in NOISE_SAMPLINGS:
            raise ValueError(f"noise sampling {noise!r} is not one of {', '.join(NOISE_SAMPLINGS)}")
        self.noise_dim = noise_dim
        #: how :meth:`sample_noise` draws: ``uniform`` (the paper) or ``stratified`` (:func:`latin_hypercube`)
        self.noise = noise
        self.sines = nn.ModuleList(
            SineLayer(noise_dim if i == 0 else width, width, omega0, first=i == 0) for i in range(layers)
        )
        self.out = nn.Linear(width, 3, bias=False)
        siren_init_(self.out, first=False)
        self.latents = nn.Embedding(num_samples, width)
        self.modulator = nn.ModuleList(nn.Linear(width, width) for _ in range(layers - 1))

    def modulations(self, sample: torch.Tensor) -> list[torch.Tensor]:
        """The per-layer modulations m_1 … m_L for ``sample`` (B,), each (B, width) (Eq. 11)."""
        m = torch.relu(self.latents(sample))
        mods = [m]
        for linear in self.modulator:
            m = torch.relu(linear(m))
            mods.append(m)
        return mods

    def forward(self, noise: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        """Map noise (B, N, D) to points (B, N, 3) under the conditions of ``sample`` (B,) (Eq. 12).

        Activations stay (B, N, width): every Linear is one (B·N, width) GEMM and each modulation
        (B, 1, width) broadcasts over the points without being copied.
        """
        x = noise
        for layer, m in zip(self.sines, self.modulations(sample)):
            x = layer(x, m.unsqueeze(1))
        return torch.tanh(self.out(x))

    def sample_noise(self, batch: int, points: int, generator: torch.Generator | None = None,
                     device: torch.device | str | None = None) -> torch.Tensor:
        """U(0, 1) noise (batch, points, D), independent or stratified draws as ``noise`` says, drawn on the CPU
        (so a CPU ``generator`` works on any device) and moved to ``device`` (default: the module's) in the
        module's dtype."""
        ref = self.out.weight
        if self.noise == "stratified":
            noise = latin_hypercube(batch, points, self.noise_dim, generator, ref.dtype)
        else:
            noise = torch.rand(batch, points, self.noise_dim, generator=generator, dtype=ref.dtype)
        return noise.to(ref.device if device is None else device)

    def generate(self, sample: torch.Tensor, points: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Clouds (B, points, 3) for ``sample`` (B,) from fresh noise (:meth:`sample_noise`)."""
        return self(self.sample_noise(sample.shape[0], points, generator), sample)


def latin_hypercube(batch: int, points: int, dims: int, generator: torch.Generator | None,
                    dtype: torch.dtype) -> torch.Tensor:
    """Stratified U(0, 1) noise (batch, points, dims): along every coordinate of every cloud, exactly one of
    the ``points`` values falls in each slice [k/points, (k+1)/points), at a uniform place within it, and the
    slices are in random order (so any prefix of the points is still spread over [0, 1]).

    Written out rather than taken from ``scipy.stats.qmc.LatinHypercube`` so the draws come from the
    keyed torch ``generator`` like every other draw of a run.
    """
    slots = torch.rand(batch, points, dims, generator=generator).argsort(dim=1)
    within = torch.rand(batch, points, dims, generator=generator, dtype=torch.float64)
    below_one = torch.nextafter(torch.ones((), dtype=dtype), torch.zeros((), dtype=dtype))
    return ((slots + within) / points).to(dtype).clamp_max_(below_one)
