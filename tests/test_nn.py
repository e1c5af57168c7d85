"""DD3D neural modules: SIREN layers, the point-wise generator and the point cloud rotator."""
from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch

from dd3d.data.transforms import random_rotations, rotate
from dd3d.models.pointnet import PointNet, PointNetSeg
from dd3d.nn.generator import PointGenerator, latin_hypercube
from dd3d.nn.rotator import RotatedBackbone, Rotator, _StraightThroughSign
from dd3d.nn.siren import SineLayer

SCALES = torch.tensor([3.0, 1.5, 0.5], dtype=torch.float64)
# all 8 axis-sign reflections Q = diag(±1, ±1, ±1)
FLIPS = [torch.tensor(s, dtype=torch.float64) for s in itertools.product((1.0, -1.0), repeat=3)]


def skewed_clouds(b: int = 4, n: int = 512, seed: int = 0) -> torch.Tensor:
    """Anisotropic (well-separated PCA axes), skewed (non-zero sign features), randomly rotated clouds."""
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(b, n, 3, generator=gen, dtype=torch.float64) ** 2 - 1 / 3) * SCALES
    return rotate(x, random_rotations(b, gen, torch.float64))


def make_rotator(kind: str) -> Rotator:
    """A float64 rotator; the learned one gets a random, non-trivial decoder w."""
    rot = Rotator(kind, fourier=8).double()
    if kind == "learned":
        with torch.no_grad():
            rot.weight.copy_(torch.randn(8, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    return rot


def decision_margin(rot: Rotator, aligned: torch.Tensor) -> float:
    """min |h·w| over clouds and axes: how far each sign decision is from a tie (Eq. 9)."""
    pooled = torch.sin(aligned.unsqueeze(-1) * rot.freqs).mean(dim=1)
    return (pooled @ rot.weight).abs().min().item()


# ---------------------------------------------------------------- rotator


@pytest.mark.parametrize("kind", ["fixed", "learned"])
def test_sign_fix_is_invariant_to_all_axis_flips(kind: str) -> None:
    rot = make_rotator(kind)
    aligned = rot.align(skewed_clouds())
    assert decision_margin(rot, aligned) > 1e-6  # no h·w = 0 ties, where Sign(0) = +1 breaks symmetry
    expected = rot.reflect(aligned)
    for q in FLIPS:
        assert torch.allclose(rot.reflect(aligned * q), expected, atol=1e-5), q


def test_pca_alone_is_not_sign_invariant() -> None:
    rot = make_rotator("pca")
    aligned = rot.align(skewed_clouds())
    changed = [not torch.allclose(rot.reflect(aligned * q), rot.reflect(aligned), atol=1e-5) for q in FLIPS]
    assert changed == [False] + [True] * 7


@pytest.mark.parametrize("kind", ["fixed", "learned"])
def test_rotator_is_rotation_invariant(kind: str) -> None:
    rot = make_rotator(kind)
    x = skewed_clouds()
    assert decision_margin(rot, rot.align(x)) > 1e-6  # far above the rounding of the PCA projection
    expected = rot(x)
    for seed in range(4):
        rotations = random_rotations(x.shape[0], torch.Generator().manual_seed(100 + seed), torch.float64)
        assert torch.allclose(rot(rotate(x, rotations)), expected, atol=1e-5)


def test_pca_is_rotation_invariant_only_up_to_signs() -> None:
    rot = make_rotator("pca")
    x = skewed_clouds()
    expected = rot(x)
    rotated = [rot(rotate(x, random_rotations(x.shape[0], torch.Generator().manual_seed(100 + s), torch.float64)))
               for s in range(4)]
    assert all(torch.allclose(out.abs(), expected.abs(), atol=1e-5) for out in rotated)
    assert not all(torch.allclose(out, expected, atol=1e-5) for out in rotated)


def test_none_is_identity_and_only_learned_has_parameters() -> None:
    x = skewed_clouds(b=2, n=16)
    assert torch.equal(Rotator("none")(x), x)
    assert [len(list(Rotator(k).parameters())) for k in ("none", "pca", "fixed", "learned")] == [0, 0, 0, 1]
    assert list(Rotator("learned").state_dict()) == ["weight"]
    assert Rotator("fixed").state_dict() == {}
    with pytest.raises(ValueError, match="rotator kind"):
        Rotator("auto")


def test_learned_rotator_starts_as_the_fixed_one() -> None:
    x = skewed_clouds()
    assert torch.equal(Rotator("learned", omega=2.0).double()(x), Rotator("fixed", omega=2.0).double()(x))


def test_straight_through_sign_forward_exact_backward_tanh() -> None:
    z = torch.tensor([-2.0, -1e-9, 0.0, 0.5, 3.0], dtype=torch.float64, requires_grad=True)
    s = _StraightThroughSign.apply(z)
    assert s.tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]
    s.backward(torch.ones_like(s))
    assert torch.allclose(z.grad, 1 - torch.tanh(z.detach()) ** 2)


def test_gradients_reach_learned_decoder_and_points() -> None:
    rot = make_rotator("learned")
    x = skewed_clouds().requires_grad_(True)
    target = torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    (rot(x) * target).sum().backward()
    assert rot.weight.grad is not None and rot.weight.grad.abs().min() > 0
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_rotated_backbone_classifier_and_segmenter() -> None:
    torch.manual_seed(0)
    x = skewed_clouds(b=3, n=64).float()
    clf = RotatedBackbone(Rotator("learned"), PointNet(5))
    rotations = random_rotations(3, torch.Generator().manual_seed(5))
    assert clf(x).shape == (3, 5)
    assert torch.allclose(clf(rotate(x, rotations)), clf(x), atol=1e-4)
    seg = RotatedBackbone(Rotator("fixed"), PointNetSeg(num_parts=6, num_categories=4))
    assert seg(x, torch.tensor([0, 3, 1])).shape == (3, 64, 6)


def _segmenter_channels_first(net: PointNetSeg, points: torch.Tensor, categories: torch.Tensor) -> torch.Tensor:
    """PointNetSeg written as the original implementation: Conv1d on (B, C, P) and the concatenated head."""
    n = points.shape[1]
    f1 = torch.relu(net.norm1(net.conv1(points.transpose(1, 2))))
    f2 = torch.relu(net.norm2(net.conv2(f1)))
    pooled = net.norm3(net.conv3(f2)).amax(dim=2, keepdim=True)
    onehot = torch.nn.functional.one_hot(categories, net.num_categories).float()[:, :, None]
    features = torch.cat([pooled.expand(-1, -1, n), onehot.expand(-1, -1, n), f1, f2], dim=1)
    return net.head(features).transpose(1, 2)


@pytest.mark.parametrize("train", [True, False])
def test_segmenter_equals_the_channels_first_form(train: bool) -> None:
    torch.manual_seed(0)
    net = PointNetSeg(num_parts=6, num_categories=4, size="small").train(train)
    for norm in (net.norm1, net.norm2, net.norm3):  # non-trivial running statistics for eval mode
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
    reference = copy.deepcopy(net)
    x, categories = torch.randn(5, 40, 3), torch.tensor([0, 3, 1, 1, 2])
    ours, theirs = net(x, categories), _segmenter_channels_first(reference, x, categories)
    assert torch.allclose(ours, theirs, atol=1e-5)
    ours.square().sum().backward()
    theirs.square().sum().backward()
    # the convolutions' biases before train-mode BatchNorm have zero gradient up to rounding: compare every
    # gradient against the largest one
    scale = max(float(b.grad.abs().max()) for b in reference.parameters())
    for a, b in zip(net.parameters(), reference.parameters()):
        assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-5 * scale)
    for a, b in zip(net.buffers(), reference.buffers()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)


# ---------------------------------------------------------------- SIREN and generator


def test_sine_layer_first_scales_by_omega0_and_modulates() -> None:
    torch.manual_seed(0)
    x = torch.rand(5, 4)
    first = SineLayer(4, 7, omega0=30.0, first=True)
    w, b = first.linear.weight, first.linear.bias
    assert torch.allclose(first(x), torch.sin(30.0 * (x @ w.T + b)), atol=1e-5)
    later = SineLayer(4, 7, omega0=30.0, first=False)
    manual = torch.sin(x @ later.linear.weight.T + later.linear.bias)
    assert torch.allclose(later(x), manual, atol=1e-6)
    m = torch.rand(7)
    assert torch.allclose(later(x, m), manual * m, atol=1e-6)


def assert_uniform_within(t: torch.Tensor, bound: float) -> None:
    """All values in ±bound and the range actually used (a narrower default init would fail)."""
    assert t.abs().max() <= bound
    assert t.abs().max() > 0.9 * bound


def test_siren_initialisation_ranges() -> None:
    torch.manual_seed(0)
    first = SineLayer(4, 256, omega0=100.0, first=True)
    assert_uniform_within(first.linear.weight, 1 / 4)
    assert_uniform_within(first.linear.bias, 1 / 4)
    gen = PointGenerator(num_samples=6, width=64, layers=3)
    assert_uniform_within(gen.sines[0].linear.weight, 1.0)
    for layer in gen.sines[1:]:
        assert_uniform_within(layer.linear.weight, math.sqrt(6 / 64))
    assert_uniform_within(gen.out.weight, math.sqrt(6 / 64))
    assert gen.out.bias is None


def test_generator_any_resolution_from_same_weights() -> None:
    torch.manual_seed(0)
    # float64: float32 GEMMs block differently for different point counts, which changes the last bits
    # (amplified by ω0) on some CPUs; in float64 any real dependence between points would still show
    gen = PointGenerator(num_samples=6, width=64).double()
    sample = torch.tensor([0, 5])
    noise = gen.sample_noise(2, 8192, torch.Generator().manual_seed(0))
    full = gen(noise, sample)
    for n in (64, 1024, 8192):
        out = gen(noise[:, :n], sample)
        assert out.shape == (2, n, 3)
        assert out.abs().max() < 1
        assert torch.allclose(out, full[:, :n], atol=1e-6)  # point-wise: each point depends on its noise only


def test_generator_determinism_and_conditioning() -> None:
    torch.manual_seed(0)
    gen = PointGenerator(num_samples=6, width=64)
    noise = gen.sample_noise(1, 256, torch.Generator().manual_seed(0))
    a = gen(noise, torch.tensor([2]))
    assert torch.equal(a, gen(noise, torch.tensor([2])))
    assert (a - gen(noise, torch.tensor([3]))).abs().max() > 1e-2


def test_generate_reproducible_with_seeded_generator() -> None:
    torch.manual_seed(0)
    gen = PointGenerator(num_samples=6, width=64)
    sample = torch.arange(6)
    a = gen.generate(sample, 128, torch.Generator().manual_seed(7))
    assert a.shape == (6, 128, 3)
    assert torch.equal(a, gen.generate(sample, 128, torch.Generator().manual_seed(7)))
    assert not torch.equal(a, gen.generate(sample, 128, torch.Generator().manual_seed(8)))
    noise = gen.sample_noise(3, 4096, torch.Generator().manual_seed(0))
    assert noise.min() >= 0 and noise.max() < 1 and abs(noise.mean().item() - 0.5) < 0.02


def test_generator_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    gen = PointGenerator(num_samples=6, width=32, layers=3)
    gen.generate(torch.arange(6), 64, torch.Generator().manual_seed(0)).square().sum().backward()
    for name, p in gen.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_two_dimensional_noise_draws_a_surface_and_keeps_resolution_freedom() -> None:
    """noise_dim 2 (beyond the paper): noise (B, N, 2) in [0, 1]², point-wise like the paper's scalar noise."""
    torch.manual_seed(0)
    gen = PointGenerator(num_samples=4, width=64, noise_dim=2).double()
    assert gen.sines[0].linear.in_features == 2
    noise = gen.sample_noise(2, 2048, torch.Generator().manual_seed(0))
    assert noise.shape == (2, 2048, 2) and noise.min() >= 0 and noise.max() < 1
    full = gen(noise, torch.tensor([0, 3]))
    assert torch.allclose(gen(noise[:, :256], torch.tensor([0, 3])), full[:, :256], atol=1e-6)
    # a curve's points have one degree of freedom: along [0, 1]; a sheet's move under either coordinate
    moved = noise.clone()
    moved[..., 1] = torch.rand(2, 2048, generator=torch.Generator().manual_seed(1), dtype=noise.dtype)
    assert (gen(moved, torch.tensor([0, 3])) - full).norm(dim=-1).mean() > 1e-2


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_stratified_noise_puts_one_value_in_each_slice(dtype: torch.dtype) -> None:
    """``generator.noise: stratified``: per cloud and coordinate, exactly one of N values in each [k/N, (k+1)/N)
    (to float32 rounding), in [0, 1) even in float32 at large N, in random order, fresh for every draw."""
    n = 4096
    noise = latin_hypercube(3, n, 2, torch.Generator().manual_seed(0), dtype)
    assert noise.dtype == dtype and noise.min() >= 0 and noise.max() < 1
    slices = (noise.double() * n).floor().long().sort(dim=1).values
    off = (slices - torch.arange(n).view(1, n, 1)).abs().max().item()
    assert off == 0 if dtype == torch.float64 else off <= 1  # float32: a value at a slice's edge may round over it
    prefix = noise[:, :64].double()  # random order: a prefix is spread over [0, 1], not the first 64 slices
    assert prefix.max() > 0.5 and prefix.min() < 0.5
    again = latin_hypercube(3, n, 2, torch.Generator().manual_seed(0), dtype)
    assert torch.equal(noise, again)
    assert not torch.equal(noise, latin_hypercube(3, n, 2, torch.Generator().manual_seed(1), dtype))


def test_stratified_noise_covers_a_curve_more_evenly_than_independent_draws() -> None:
    """The largest gap between neighbouring noise values (the longest stretch of the curve without a point) is
    below 2/N for stratified draws; independent draws leave gaps of several times 1/N."""
    n = 256
    gaps = {}
    for noise in ("uniform", "stratified"):
        gen = PointGenerator(num_samples=1, width=16, noise=noise)
        values = gen.sample_noise(64, n, torch.Generator().manual_seed(0))[..., 0].sort(dim=1).values
        gaps[noise] = (values.diff(dim=1).amax(dim=1) * n).mean().item()
    assert gaps["stratified"] < 2 < 4 < gaps["uniform"]


def test_an_unknown_noise_sampling_is_refused() -> None:
    with pytest.raises(ValueError, match="noise sampling 'sobol' is not one of uniform, stratified"):
        PointGenerator(num_samples=1, width=8, noise="sobol")
