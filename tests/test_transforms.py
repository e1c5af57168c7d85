"""Transforms: normalisation, resampling, rotations, PCA canonicalisation, augmentation."""
from __future__ import annotations

import torch

from dd3d.config import AugmentConfig
from dd3d.data.transforms import (
    augment,
    euler_to_matrix,
    farthest_point_indices,
    normalize_unit_sphere,
    pca_canonicalize,
    random_rotations,
    random_subset_indices,
    rotate,
)


def anisotropic_clouds(b: int = 6, p: int = 300, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, p, 3, generator=g, dtype=torch.float64) * torch.tensor([3.0, 1.5, 0.5], dtype=torch.float64) + 2.0


def test_normalize_unit_sphere() -> None:
    x = normalize_unit_sphere(anisotropic_clouds())
    assert torch.allclose(x.mean(dim=1), torch.zeros(6, 3, dtype=x.dtype), atol=1e-9)
    assert torch.allclose(x.norm(dim=2).amax(dim=1), torch.ones(6, dtype=x.dtype))


def test_random_rotations_are_proper() -> None:
    r = random_rotations(50, torch.Generator().manual_seed(1), dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64).expand(50, 3, 3)
    assert torch.allclose(r @ r.transpose(1, 2), eye, atol=1e-10)
    assert torch.allclose(torch.linalg.det(r), torch.ones(50, dtype=torch.float64))
    assert not torch.allclose(r[0], r[1])


def test_euler_matrix_proper_and_differentiable() -> None:
    angles = torch.tensor([[0.3, -1.2, 2.0]], dtype=torch.float64, requires_grad=True)
    r = euler_to_matrix(angles)
    assert torch.allclose(r[0] @ r[0].T, torch.eye(3, dtype=torch.float64), atol=1e-12)
    assert torch.isclose(torch.linalg.det(r[0]), torch.tensor(1.0, dtype=torch.float64))
    r.sum().backward()
    assert angles.grad is not None and angles.grad.abs().sum() > 0


def test_pca_is_rotation_invariant_up_to_axis_signs() -> None:
    x = anisotropic_clouds()
    canon = pca_canonicalize(x)
    turned = pca_canonicalize(rotate(x, random_rotations(6, torch.Generator().manual_seed(2), torch.float64)))
    # same up to one sign per axis and cloud
    signs = torch.sign((canon * turned).sum(dim=1, keepdim=True))
    assert torch.allclose(canon, turned * signs, atol=1e-8)
    # principal axes come in descending variance order
    var = canon.var(dim=1)
    assert (var[:, 0] >= var[:, 1]).all() and (var[:, 1] >= var[:, 2]).all()


def test_pca_without_rotation_not_identity() -> None:
    x = rotate(anisotropic_clouds(), random_rotations(6, torch.Generator().manual_seed(3), torch.float64))
    assert not torch.allclose(pca_canonicalize(x), x - x.mean(dim=1, keepdim=True), atol=1e-3)


def test_random_subset_and_fps() -> None:
    g = torch.Generator().manual_seed(0)
    idx = random_subset_indices(4, 100, 30, g)
    assert idx.shape == (4, 30)
    assert all(len(set(row.tolist())) == 30 for row in idx)
    up = random_subset_indices(2, 10, 25, g)
    assert up.shape == (2, 25) and up.max() < 10
    x = anisotropic_clouds(b=3, p=400)
    fps = farthest_point_indices(x, 32, g)
    assert all(len(set(row.tolist())) == 32 for row in fps)

    def coverage(index: torch.Tensor) -> torch.Tensor:
        sample = torch.gather(x, 1, index[:, :, None].expand(-1, -1, 3))
        return torch.cdist(x, sample).amin(dim=2).amax(dim=1)

    assert (coverage(fps) < coverage(random_subset_indices(3, 400, 32, g))).all()


def test_augment_keeps_shape_and_ranges() -> None:
    cfg = AugmentConfig()
    x = normalize_unit_sphere(anisotropic_clouds().float())
    out = augment(x, cfg, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert not torch.allclose(out, x)
    radius = out.norm(dim=2).amax(dim=1)
    assert (radius <= cfg.scale_high + 3 ** 0.5 * cfg.jitter_clip + 1e-5).all()
    assert (radius >= cfg.scale_low - 3 ** 0.5 * cfg.jitter_clip - 1e-5).all()
    off = AugmentConfig(enabled=False)
    assert augment(x, off, torch.Generator()) is x


def test_augment_jitter_is_clipped() -> None:
    cfg = AugmentConfig(scale_low=1.0, scale_high=1.0, rotate_sigma=0.0, jitter_sigma=1.0, jitter_clip=0.05)
    x = torch.zeros(2, 500, 3)
    out = augment(x, cfg, torch.Generator().manual_seed(0))
    assert out.abs().max() <= 0.05 + 1e-7 and out.abs().max() > 0.04
