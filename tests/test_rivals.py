"""Rival 3D distillation methods: SADM (sorted-feature MMD, learned Euler angles), PCC (GM from the
nearest-to-mean clouds), and the ``eval.protocol`` switch."""
from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from conftest import REPO
from dd3d.config import Config, load_config
from dd3d.data.transforms import euler_to_matrix
from dd3d.distill import build_method
from dd3d.distill.pcc import PCC
from dd3d.distill.run import build_context, distill
from dd3d.distill.sadm import SADM, aligned_features, mmd, point_features, sort_channels, wrap_angles
from dd3d.distill.selection import embed_real, nearest_mean_order
from dd3d.errors import ConfigError
from dd3d.evaluate import evaluate_synthetic
from dd3d.io import load_checkpoint, save_checkpoint
from dd3d.models.pointnet import PointNet

CPU = torch.device("cpu")
TINY = [
    "data.resolution=48", "data.builtin.train_per_class=6", "data.builtin.test_per_class=3", "data.max_classes=3",
    "distill.resolution=48", "eval.resolution=64", "distill.cpc=2", "distill.iterations=2",
    "distill.outer_loop=2", "distill.inner_loop=1", "distill.real_batch=4", "distill.sadm.real_clouds=4",
    "model.size=small", "eval.epochs=1", "eval.runs=1", "eval.test_every=0", "device=cpu",
]


def tiny(*extra: str) -> Config:
    return load_config(REPO / "configs" / "shapes.yaml", TINY + list(extra))


def sadm(*extra: str, seed: int = 0) -> SADM:
    cfg = tiny("distill.method=sadm", f"seed={seed}", *extra)
    return SADM(build_context(cfg, CPU))


# ---------------------------------------------------------------------------------------------
# SADM's pieces
# ---------------------------------------------------------------------------------------------


def test_sorted_features_are_invariant_to_the_order_of_points() -> None:
    torch.manual_seed(0)
    net = PointNet(3, size="small")
    points = torch.randn(2, 40, 3)
    shuffled = points[:, torch.randperm(40)]
    features, features_shuffled = point_features(net, points), point_features(net, shuffled)
    assert not torch.allclose(features, features_shuffled)  # per-point features follow the points
    for a, b in zip(aligned_features(features), aligned_features(features_shuffled)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_point_features_max_pool_to_pointnet_embedding() -> None:
    torch.manual_seed(0)
    net = PointNet(3, size="small")
    points = torch.randn(3, 32, 3)
    flat, top = aligned_features(point_features(net, points))
    embedding = net.embed(points)
    torch.testing.assert_close(top, embedding, atol=1e-5, rtol=1e-5)
    assert flat.shape == (3, 32 * embedding.shape[1])
    torch.testing.assert_close(flat[:, :embedding.shape[1]], embedding, atol=1e-5, rtol=1e-5)  # rank 1 first


def test_sort_channels_matches_torch_sort_in_values_and_gradient() -> None:
    x = torch.randn(2, 5, 17, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(2, 5, 17, dtype=torch.float64)
    ours = sort_channels(x)
    (grad,) = torch.autograd.grad((ours * weights).sum(), x)
    reference = x.sort(dim=2, descending=True).values
    (expected,) = torch.autograd.grad((reference * weights).sum(), x)
    assert torch.equal(ours, reference) and torch.equal(grad, expected)
    assert torch.equal(sort_channels(x.detach()), reference.detach())  # the no-gradient path


def test_mmd_is_zero_for_identical_sets_and_positive_otherwise() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 50, generator=g), torch.randn(4, 50, generator=g)
    assert abs(float(mmd(x, x))) < 1e-6
    assert abs(float(mmd(x, x.flip(0)))) < 1e-6  # a set: the order of its rows does not matter
    assert float(mmd(x, x + 0.3)) > 1e-3
    assert float(mmd(x, y)) > 1e-3
    assert float(mmd(x, y)) == pytest.approx(float(mmd(y, x)), rel=1e-5)


def test_learned_rotations_are_proper_and_train_every_angle() -> None:
    m = sadm()
    with torch.no_grad():
        m.angles.uniform_(-math.pi, math.pi, generator=torch.Generator().manual_seed(0))
    r = m.rotations()
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(len(r)), atol=1e-5, rtol=0)
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3).expand_as(r), atol=1e-5, rtol=0)
    m.matching_loss(m.new_network()).backward()
    assert m.angles.grad is not None and (m.angles.grad.abs().sum(dim=0) > 0).all()
    angles = torch.tensor([[3 * math.pi / 2, -7.0, 0.5]])
    wrapped = wrap_angles(angles)
    assert ((wrapped >= -math.pi) & (wrapped < math.pi)).all() and not torch.allclose(wrapped, angles)
    torch.testing.assert_close(euler_to_matrix(wrapped), euler_to_matrix(angles), atol=1e-5, rtol=0)


def test_yaw_learns_faster_and_the_exported_set_is_rotated() -> None:
    fast, slow = sadm(), sadm("distill.sadm.yaw_lr_factor=1")  # same seed: same networks and real batches
    fast_z = sadm("data.up_axis=z")  # z-up data (e.g. clouds sampled from ModelNet's .off meshes): z turns faster
    for m in (fast, slow, fast_z):
        m.step(0)
    torch.testing.assert_close(fast.angles[:, 1], 10 * slow.angles[:, 1], atol=1e-7, rtol=1e-5)
    torch.testing.assert_close(fast.angles[:, [0, 2]], slow.angles[:, [0, 2]], atol=1e-7, rtol=1e-5)
    torch.testing.assert_close(fast_z.angles[:, 2], 10 * slow.angles[:, 2], atol=1e-7, rtol=1e-5)
    torch.testing.assert_close(fast_z.angles[:, [0, 1]], slow.angles[:, [0, 1]], atol=1e-7, rtol=1e-5)
    with torch.no_grad():
        fast.angles.zero_()
        fast.angles[:, 1] = math.pi / 2
    exported = fast.synthetic(48).points  # rotation commutes with the unit-sphere normalisation
    with torch.no_grad():
        fast.angles.zero_()
    upright = fast.synthetic(48).points
    # Ry(π/2) maps (x, y, z) to (z, y, −x)
    np.testing.assert_allclose(exported, np.stack([upright[..., 2], upright[..., 1], -upright[..., 0]], -1), atol=1e-5)


def test_one_sadm_update_lowers_its_loss_on_a_fixed_network() -> None:
    m = sadm("distill.sadm.lr=0.5", "distill.sadm.angle_lr=0.01", "distill.augment_real=false")
    net = m.new_network()
    state = m.ctx.rng.get_state()
    before = m.matching_loss(net)
    m.optimizer.zero_grad()
    before.backward()
    m.optimizer.step()
    m.ctx.rng.set_state(state)  # the same real batches: only the synthetic clouds changed
    assert float(m.matching_loss(net).detach()) < float(before.detach())


def test_sadm_needs_pointnet_and_a_rotator_freezes_the_angles() -> None:
    with pytest.raises(ConfigError, match="model.name.*'sadm'.*'dgcnn'"):
        sadm("model.name=dgcnn")
    m = sadm("model.rotator.kind=pca")
    m.step(0)
    assert torch.equal(m.angles, torch.zeros_like(m.angles))


# ---------------------------------------------------------------------------------------------
# PCC
# ---------------------------------------------------------------------------------------------


def test_nearest_mean_order_on_known_features() -> None:
    features = torch.tensor([[0.0], [1.0], [2.0], [10.0], [3.0]])  # mean 3.2
    assert nearest_mean_order(features, 3).tolist() == [4, 2, 1]


def test_pcc_starts_from_each_class_nearest_mean_clouds() -> None:
    cfg = tiny("distill.method=pcc")
    ctx = build_context(cfg, CPU)
    m = PCC(ctx)
    features = embed_real(build_context(cfg, CPU))  # the same seed draws the same feature network
    for c, pool in enumerate(ctx.by_class):
        expected = pool[nearest_mean_order(features[torch.from_numpy(pool)], ctx.cpc)]
        assert torch.equal(m.points[c * ctx.cpc:(c + 1) * ctx.cpc].detach(), ctx.real_points[expected])


# ---------------------------------------------------------------------------------------------
# Run folders, checkpoints and the evaluation protocol
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["sadm", "pcc"])
def test_tiny_run_end_to_end_under_the_sadm_protocol(method: str, tmp_path: Path) -> None:
    cfg = tiny(f"distill.method={method}", "eval.protocol=sadm", "eval.epochs=2")
    summary = distill(cfg, tmp_path, progress=False)
    assert summary["method"] == method and len(summary["loss_curve"]) == 2
    assert all(math.isfinite(v) for v in summary["loss_curve"])
    with h5py.File(tmp_path / "synthetic.h5") as f:
        assert f["data"].shape == (6, 64, 3) and f["label"][:, 0].tolist() == [0, 0, 1, 1, 2, 2]
        assert np.isfinite(f["data"][:]).all()
    evaluate_synthetic(cfg, tmp_path, tmp_path / "eval", progress=False)
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["protocol"] == "sadm" and metrics["epochs"] == 2 and metrics["method"] == method
    assert metrics["training"]["optimizer"] == "sgd" and metrics["training"]["lr"] == 0.01


@pytest.mark.parametrize("method", ["sadm", "pcc"])
def test_state_dict_round_trips_through_a_checkpoint(method: str, tmp_path: Path) -> None:
    def build(seed: int):
        return build_method(method, build_context(tiny(f"distill.method={method}", f"seed={seed}"), CPU))

    m = build(0)
    m.step(0)
    save_checkpoint(tmp_path / "state.pt", m.state_dict())
    restored = build(1)
    restored.load_state_dict(load_checkpoint(tmp_path / "state.pt"))
    assert np.array_equal(restored.synthetic(64).points, m.synthetic(64).points)
    assert restored.losses == m.losses
    if method == "sadm":
        assert restored.scheduler.last_epoch == m.scheduler.last_epoch == 1


def test_eval_protocol_presets_and_explicit_values_win() -> None:
    default = load_config(REPO / "configs" / "shapes.yaml").eval
    assert (default.protocol, default.optimizer, default.lr, default.epochs) == ("dd3d", "adam", 1e-3, 200)
    e = load_config(REPO / "configs" / "shapes.yaml", ["eval.protocol=sadm"]).eval
    assert (e.optimizer, e.lr, e.momentum, e.weight_decay) == ("sgd", 0.01, 0.9, 5e-4)
    assert (e.scheduler, e.step_size, e.gamma, e.epochs, e.batch_size) == ("step", 250, 0.1, 500, 8)
    short = load_config(REPO / "configs" / "shapes.yaml", ["eval.protocol=sadm", "eval.epochs=30"]).eval
    assert short.epochs == 30 and short.optimizer == "sgd"
    with pytest.raises(ConfigError, match="eval.protocol.*'dd3d', 'sadm'"):
        load_config(REPO / "configs" / "shapes.yaml", ["eval.protocol=pcc"])
    preset = load_config(REPO / "configs" / "modelnet10-sadm.yaml")
    assert preset.distill.method == "sadm" and preset.distill.iterations == 1500 and preset.eval.protocol == "sadm"
