"""Cross-architecture backbones (PointNet++, DGCNN, PCT, PointMLP-elite, PointNeXt-S) and their point operators.

Every model runs at ``size='small'`` on 64-128-point clouds so the file stays fast on a CPU.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dd3d.errors import ConfigError
from dd3d.models import CLASSIFIERS, SEGMENTERS, build_model
from dd3d.models.ops import ball_query, farthest_point_sample, interpolate, knn
from dd3d.models.pointnet2 import PointNet2
from dd3d.nn.rotator import RotatedBackbone, Rotator

NEW_CLASSIFIERS = ["pointnet2", "dgcnn", "pct", "pointmlp", "pointnext"]
NEW_SEGMENTERS = ["pointnet2", "dgcnn"]
#: Published parameter counts of the full configurations (40 classes): PointNet++ SSG, DGCNN and
#: PointNeXt-S as tabulated by PointNeXt (Qian et al. 2022), PCT (Guo et al. 2021a), PointMLP-elite (Ma et al. 2022).
PUBLISHED_PARAMETERS = {"pointnet2": 1.48e6, "dgcnn": 1.8e6, "pct": 2.88e6, "pointmlp": 0.68e6, "pointnext": 1.4e6}


@pytest.fixture(autouse=True)
def one_thread():
    """Tensors here are tiny: one intra-op thread avoids OpenMP overhead (≈8× faster on a busy 2-core CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def cloud(batch: int, points: int, seed: int = 0) -> torch.Tensor:
    """Uniform points in [-1, 1]³, reproducible."""
    return torch.rand(batch, points, 3, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def assert_every_parameter_learns(model: torch.nn.Module) -> None:
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


# --- operators -------------------------------------------------------------------------------------


def test_fps_indices_are_distinct_and_cover_better_than_random() -> None:
    points = cloud(3, 256)
    index = farthest_point_sample(points, 32)
    assert index.shape == (3, 32)
    assert all(len(set(row.tolist())) == 32 for row in index)

    def covering_radius(subset: torch.Tensor) -> float:
        """Largest distance from a point of cloud 0 to its nearest chosen sample."""
        return torch.cdist(points[0], points[0, subset]).amin(dim=1).max().item()

    randoms = [covering_radius(torch.randperm(256, generator=torch.Generator().manual_seed(s))[:32]) for s in range(5)]
    assert covering_radius(index[0]) < min(randoms)


def test_fps_is_batched_per_cloud_clamped_and_seedable() -> None:
    points = cloud(4, 100)
    batched = farthest_point_sample(points, 10)
    assert all(torch.equal(batched[b], farthest_point_sample(points[b:b + 1], 10)[0]) for b in range(4))
    assert torch.equal(farthest_point_sample(points, 500).sort(dim=1).values, torch.arange(100).expand(4, -1))
    first = farthest_point_sample(points, 10, torch.Generator().manual_seed(1))
    assert torch.equal(first, farthest_point_sample(points, 10, torch.Generator().manual_seed(1)))
    assert not torch.equal(first[:, 0], batched[:, 0])  # a random start instead of point 0


def test_knn_matches_brute_force() -> None:
    support, queries = cloud(2, 20, seed=1), cloud(2, 5, seed=2)
    found = knn(queries, support, 4)
    for b in range(2):
        for s in range(5):
            dist = [float(((support[b, j] - queries[b, s]) ** 2).sum()) for j in range(20)]
            assert found[b, s].tolist() == sorted(range(20), key=dist.__getitem__)[:4]
    assert knn(queries, support, 50).shape == (2, 5, 20)


def test_ball_query_matches_brute_force() -> None:
    points = cloud(2, 20, seed=3)
    centres = torch.cat([points[:, :4], torch.full((2, 1, 3), 5.0)], dim=1)  # the last ball is empty
    radius, nsample = 0.8, 6
    found = ball_query(centres, points, radius, nsample)
    for b in range(2):
        for s in range(5):
            dist = [float(((points[b, j] - centres[b, s]) ** 2).sum()) for j in range(20)]
            inside = [j for j in range(20) if dist[j] <= radius ** 2] or [min(range(20), key=dist.__getitem__)]
            expected = (inside + [inside[0]] * nsample)[:nsample]
            assert found[b, s].tolist() == expected
    assert ball_query(centres, points, radius, 99).shape == (2, 5, 20)


def test_interpolation_reproduces_features_at_coincident_points() -> None:
    sources = cloud(2, 16, seed=4)
    features = torch.randn(2, 16, 5, requires_grad=True)
    targets = torch.cat([sources[:, [3, 7, 11]], cloud(2, 4, seed=5)], dim=1)
    out = interpolate(targets, sources, features)
    assert out.shape == (2, 7, 5)
    assert torch.allclose(out[:, :3], features[:, [3, 7, 11]], atol=1e-5)
    out.sum().backward()
    assert features.grad is not None and features.grad.abs().sum() > 0
    single = interpolate(targets, sources[:, :1], features[:, :1])  # one source: broadcast
    assert torch.allclose(single, features[:, :1].expand(-1, 7, -1))


# --- classifiers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NEW_CLASSIFIERS)
def test_classifier_shapes_and_gradients(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, "classification", num_classes=4, size="small")
    x = cloud(4, 128).requires_grad_()
    logits = model(x)
    assert logits.shape == (4, 4)
    F.cross_entropy(logits, torch.tensor([0, 1, 2, 3])).backward()
    assert_every_parameter_learns(model)
    assert x.grad is not None and x.grad.abs().sum() > 0  # distillation moves the points themselves
    assert model.embed(cloud(2, 64)).shape[0] == 2


@pytest.mark.parametrize("name", NEW_CLASSIFIERS)
def test_classifier_handles_clouds_smaller_than_its_configuration(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, "classification", num_classes=3).eval()  # full size: 512 centres, k up to 64
    assert model(cloud(2, 24)).shape == (2, 3)


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_translation_invariance(name: str) -> None:
    """In eval mode, behind a centring rotator every backbone ignores translations (FPS starts at
    point 0, kNN and balls are relative). Alone, only PointNet is invariant (its first InstanceNorm
    removes the shift); the others read absolute coordinates (module docstrings)."""
    torch.manual_seed(0)
    model = build_model(name, "classification", num_classes=5, size="small").eval()
    x, shift = cloud(2, 128), torch.tensor([0.3, -0.2, 0.5])
    wrapped = RotatedBackbone(Rotator("pca"), model)
    with torch.no_grad():
        assert torch.allclose(wrapped(x), wrapped(x + shift), atol=1e-5)
        assert torch.allclose(model(x), model(x + shift), atol=1e-5) == (name == "pointnet")


def test_pointnet2_local_abstractions_are_translation_invariant() -> None:
    torch.manual_seed(0)
    encoder = PointNet2(3, size="small").eval().encoder
    x, shift = cloud(2, 128), torch.tensor([0.3, -0.2, 0.5])
    with torch.no_grad():
        (levels, _), (shifted, _) = encoder(x), encoder(x + shift)
    for (xyz, feats), (xyz_s, feats_s) in zip(levels[1:], shifted[1:]):
        assert torch.allclose(xyz + shift, xyz_s, atol=1e-6)
        assert torch.allclose(feats, feats_s, atol=1e-5)


@pytest.mark.parametrize("name", NEW_CLASSIFIERS)
def test_a_few_adam_steps_reduce_the_loss(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, "classification", num_classes=3, size="small")
    x, y = cloud(6, 64, seed=7), torch.tensor([0, 1, 2, 0, 1, 2])
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss() -> torch.Tensor:
        torch.manual_seed(1)  # the same dropout masks before and after training
        return F.cross_entropy(model(x), y)

    before = loss().item()
    for _ in range(8):
        optimiser.zero_grad()
        loss().backward()
        optimiser.step()
    assert loss().item() < 0.7 * before


@pytest.mark.parametrize("name", NEW_CLASSIFIERS)
def test_full_configuration_matches_published_size(name: str) -> None:
    count = sum(p.numel() for p in build_model(name, "classification", num_classes=40).parameters())
    assert abs(count / PUBLISHED_PARAMETERS[name] - 1) < 0.06
    small = sum(p.numel() for p in build_model(name, "classification", num_classes=40, size="small").parameters())
    assert small < count / 8


# --- segmenters and sizes --------------------------------------------------------------------------


@pytest.mark.parametrize("name", NEW_SEGMENTERS)
def test_segmenter_shapes_gradients_and_category_dependence(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, "segmentation", num_classes=3, num_parts=6, size="small")
    x = cloud(3, 128)
    logits = model(x, torch.tensor([0, 2, 1]))
    assert logits.shape == (3, 128, 6)
    F.cross_entropy(logits.reshape(-1, 6), torch.randint(6, (3 * 128,))).backward()
    assert_every_parameter_learns(model)
    model.eval()
    with torch.no_grad():
        assert not torch.allclose(model(x, torch.tensor([0, 0, 0])), model(x, torch.tensor([1, 1, 1])), atol=1e-4)


def test_small_pointnet_divides_widths_and_full_is_unchanged() -> None:
    assert build_model("pointnet", "classification", 3).embed(cloud(2, 32)).shape == (2, 1024)
    assert build_model("pointnet", "classification", 3, size="small").embed(cloud(2, 32)).shape == (2, 256)
    seg = build_model("pointnet", "segmentation", 3, 5, size="small")
    assert seg(cloud(2, 32), torch.tensor([0, 1])).shape == (2, 32, 5)


@pytest.mark.parametrize(("name", "task"), [(n, "classification") for n in CLASSIFIERS] +
                         [(n, "segmentation") for n in SEGMENTERS])
def test_unknown_size_is_a_config_error(name: str, task: str) -> None:
    with pytest.raises(ConfigError, match="model.size: .*'huge'"):
        build_model(name, task, 3, 4, size="huge")
