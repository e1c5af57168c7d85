"""Part-segmentation distillation: noise partition, per-part matching, BatchNorm freezing, end to end."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import REPO, assert_one_line_error, gradient_step_change, run_cli

from dd3d.config import Config, load_config
from dd3d.data import load_train_split
from dd3d.distill import build_method
from dd3d.distill.matching import class_distance, matched_parameters, term_gradients
from dd3d.distill.run import build_context
from dd3d.metrics import segmentation_metrics
from dd3d.nn.generator import PointGenerator
from dd3d.nn.partition import NoisePartition, generate_labelled
from dd3d.train import Task

CPU = torch.device("cpu")
TINY_SEG = [
    "data.resolution=64", "data.builtin.train_per_class=4", "data.builtin.test_per_class=2", "data.max_classes=3",
    "distill.resolution=48", "eval.resolution=64", "distill.real_batch=3", "distill.batchnorm_clouds=2",
    "distill.iterations=2", "distill.generator.width=32", "distill.checkpoint_every=1",
    "eval.epochs=2", "eval.runs=2", "eval.batch_size=4", "eval.test_every=1", "device=cpu",
]


def tiny_seg(*extra: str) -> Config:
    return load_config(REPO / "configs" / "shapes-seg.yaml", TINY_SEG + list(extra))


def test_partition_follows_the_stored_proportions_and_yields_every_part() -> None:
    partition = NoisePartition([[0, 1, 2, 3], [4, 5], [6, 7, 8]], [[0.45, 0.33, 0.13, 0.09], [0.5, 0.5], [0.2, 0, 0.8]])
    # segment edges: the cumulative proportions
    noise = torch.tensor([[0.0, 0.449, 0.451, 0.779, 0.781, 0.909, 0.911, 0.999]])
    assert partition.labels(noise, torch.tensor([0])).tolist() == [[0, 0, 1, 1, 2, 2, 3, 3]]
    assert partition.labels(torch.tensor([[0.1, 0.19, 0.21, 0.9]]), torch.tensor([2])).tolist() == [[6, 6, 8, 8]]
    noise = torch.rand(3, 20000, generator=torch.Generator().manual_seed(0))
    labels = partition.labels(noise, torch.tensor([0, 1, 2]))
    for row, (ids, share) in enumerate(zip(partition.part_ids, partition.proportions)):
        counts = np.array([(labels[row] == i).float().mean().item() for i in ids])
        np.testing.assert_allclose(counts, share, atol=0.015)
        present = {i for i, s in zip(ids, share) if s > 0}
        assert set(labels[row].unique().tolist()) == present  # every part with a share, nothing else


def test_partition_proportions_come_from_the_training_split() -> None:
    cfg = tiny_seg()
    real = load_train_split(cfg)
    partition = NoisePartition.from_data(real)
    for k, (ids, share) in enumerate(zip(partition.part_ids, partition.proportions)):
        assert ids == real.category_parts[k] and sum(share) == pytest.approx(1.0)
        points = real.parts[real.labels == k]
        assert share == pytest.approx([(points == i).mean() for i in ids])
    assert NoisePartition.from_payload(json.loads(json.dumps(partition.to_payload()))).proportions == \
        partition.proportions


def test_part_mask_selects_exactly_that_parts_points() -> None:
    task = Task("segmentation", num_classes=2, num_parts=4, category_parts={0: [0, 1], 1: [2, 3]})
    logits = torch.randn(2, 5, 4, requires_grad=True)
    parts = torch.tensor([[0, 1, 1, 0, 1], [1, 1, 0, 0, 0]])
    loss = task.loss(logits, torch.tensor([0, 0]), parts, only_part=1)
    chosen = parts.reshape(-1) == 1
    expected = F.cross_entropy(logits.reshape(-1, 4)[chosen], parts.reshape(-1)[chosen])
    assert float(loss.detach()) == pytest.approx(float(expected.detach()))
    loss.backward()
    grad = logits.grad.reshape(-1, 4)
    assert (grad[~chosen] == 0).all() and (grad[chosen] != 0).any()  # other points ignored
    assert task.loss(logits, torch.tensor([0, 0]), parts, only_part=3) is None  # part absent


def test_batchnorm_statistics_set_from_real_clouds_then_frozen() -> None:
    ctx = build_context(tiny_seg(), CPU)
    net = ctx.new_network()
    state = ctx.rng.get_state()
    ctx.freeze_batchnorm(net)
    norm = net.backbone.norm1
    assert not norm.training and norm.momentum == 0.1
    ctx.rng.set_state(state)  # the same clouds again: the statistics are exactly theirs
    index = np.concatenate([ctx.sample_indices(c, 2) for c in range(ctx.num_classes)])
    features = net.backbone.conv1(torch.from_numpy(ctx.real.points[index]).transpose(1, 2))
    torch.testing.assert_close(norm.running_mean, features.mean(dim=(0, 2)), atol=1e-5, rtol=1e-5)
    before = norm.running_mean.clone()
    net(torch.randn(2, 48, 3), torch.tensor([0, 1]))  # matching forward passes do not move them
    assert torch.equal(norm.running_mean, before)


def test_per_part_distance_sums_the_masked_terms() -> None:
    cfg = tiny_seg()
    ctx = build_context(cfg, CPU)
    net = ctx.new_network()
    ctx.freeze_batchnorm(net)
    params = matched_parameters(net)
    real, syn = ctx.real_batch(0), ctx.real_batch(0)
    parts = ctx.task.category_parts[0]
    total = class_distance(ctx.task, net, params, 0, real, syn, parts)
    each = [class_distance(ctx.task, net, params, 0, real, syn, [p]) for p in parts]
    assert float(total.detach()) == pytest.approx(float(sum(each).detach()), rel=1e-5)
    grads = term_gradients(ctx.task, net, params, real[0], 0, real[1], [None, parts[0], 999], create_graph=False)
    assert grads[2] is None and not torch.equal(grads[0][0], grads[1][0])


@pytest.mark.parametrize("mode,expected", [("alternate", [False, True, False, True]), ("whole", [False] * 4),
                                           ("part", [True] * 4)])
def test_outer_steps_alternate_whole_and_per_part(mode: str, expected: list[bool]) -> None:
    method = build_method("gm", build_context(tiny_seg(f"distill.part_matching={mode}"), CPU))
    assert [method.per_part_step(o) for o in range(4)] == expected
    assert (method.outer, method.inner) == (10, 1)  # the release's segmentation schedule at cpc 1


@pytest.mark.parametrize("method", ["dd3d", "gm"])
def test_segmentation_loop_schedule_at_cpc_10(method: str) -> None:
    """cpc 10 takes (10, 2) for every gradient-matching method (the release), whatever the setting."""
    cfg = tiny_seg("distill.cpc=10", "data.builtin.train_per_class=10", "data.canonical=pca")
    m = build_method(method, build_context(cfg, CPU))
    assert (m.outer, m.inner) == (10, 2)


@pytest.mark.parametrize("per_part", [False, True])
@pytest.mark.parametrize("method", ["dd3d", "gm"])
def test_one_update_lowers_the_segmentation_matching_loss(method: str, per_part: bool) -> None:
    ctx = build_context(tiny_seg(), CPU)
    torch.manual_seed(ctx.cfg.seed)  # the generator's initialisation, as `dd3d distill` seeds it (not test order)
    m = build_method(method, ctx)
    net = ctx.new_network(m.rotator)
    ctx.freeze_batchnorm(net)
    state = ctx.rng.get_state()

    def loss() -> torch.Tensor:
        ctx.rng.set_state(state)
        return m.matching_loss(net, per_part)

    params = [p for group in m.optimizer.param_groups for p in group["params"] if p.requires_grad]
    before, after, predicted = gradient_step_change(loss, params)
    assert after < before - predicted / 4  # at least a quarter of the first-order prediction


def test_gm_keeps_the_part_labels_of_its_real_initialisation() -> None:
    ctx = build_context(tiny_seg(), CPU)
    gm = build_method("gm", ctx)
    synthetic = gm.synthetic(48)
    for parts, label in zip(synthetic.parts, synthetic.labels):
        assert set(parts.tolist()) <= set(ctx.task.category_parts[int(label)])


def test_metrics_by_hand_with_absent_parts_and_per_category() -> None:
    category_parts = {0: [0, 1, 2], 1: [3, 4]}
    target = np.array([[0, 0, 1, 1], [0, 0, 0, 0], [3, 3, 4, 4]])
    pred = np.array([[0, 1, 1, 1], [0, 0, 0, 0], [3, 4, 4, 4]])
    m = segmentation_metrics(pred, target, np.array([0, 0, 1]), category_parts)
    shape0 = (1 / 2 + 2 / 3 + 1) / 3  # part 2 absent from both: IoU 1
    shape1 = (1 + 1 + 1) / 3  # parts 1 and 2 absent from both
    shape2 = (1 / 2 + 2 / 3) / 2
    assert m["oa"] == pytest.approx(10 / 12)
    assert m["instance_miou"] == pytest.approx((shape0 + shape1 + shape2) / 3)
    assert m["category_miou"] == pytest.approx({0: (shape0 + shape1) / 2, 1: shape2})
    assert m["class_miou"] == pytest.approx(((shape0 + shape1) / 2 + shape2) / 2)


def test_max_classes_keeps_each_categorys_parts() -> None:
    full = load_train_split(tiny_seg("data.max_classes=null"))
    limited = load_train_split(tiny_seg())
    for i, name in enumerate(limited.class_names):
        assert limited.category_parts[i] == full.category_parts[full.class_names.index(name)]


@pytest.mark.parametrize("method", ["dd3d", "gm", "random"])
def test_segmentation_distil_evaluate_generate_end_to_end(tmp_path: Path, method: str) -> None:
    config = str(REPO / "configs" / "shapes-seg.yaml")
    flags = [f for item in TINY_SEG for f in ("--set", item)]
    flags += ["--set", "distill.outer_loop=2"]  # one whole-shape and one per-part step per iteration
    run = tmp_path / method
    result = run_cli("distill", "--config", config, "--method", method, "--cpc", "2", "--out", str(run), *flags)
    assert result.returncode == 0, result.stderr
    with h5py.File(run / "synthetic.h5") as f:  # the ShapeNet-part h5 layout
        assert f["data"].shape == (6, 64, 3) and f["label"].shape == (6, 1) and f["pid"].shape == (6, 64)
        pid, label = f["pid"][()], f["label"][()].reshape(-1)
    summary = json.loads((run / "distill.json").read_text())
    names = summary["class_names"]
    category_parts = dict(enumerate(load_train_split(tiny_seg()).category_parts.values()))
    for parts, c in zip(pid, label):
        assert set(parts.tolist()) <= set(category_parts[int(c)]), names[c]
    if method == "dd3d":
        assert summary["part_partition"]["part_ids"] == [category_parts[k] for k in range(3)]
    result = run_cli("eval", "--config", config, "--synthetic", str(run), *flags)
    assert result.returncode == 0, result.stderr
    assert "instance mIoU" in result.stdout
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    for key in ("oa", "instance_miou", "class_miou"):
        assert 0 < metrics[f"{key}_mean"] <= 1 and len(metrics[f"{key}_runs"]) == 2 and f"{key}_std" in metrics
    assert set(metrics["category_miou_mean"]) == set(names)
    if method != "dd3d":
        return
    ply = tmp_path / "set.ply"
    result = run_cli("generate", "--run", str(run), "--points", "500", "--out", str(ply))
    assert result.returncode == 0, result.stderr
    header, _, body = ply.read_bytes().partition(b"end_header\n")
    assert b"property uchar red" in header and b"property int part" in header
    rows = np.frombuffer(body, dtype=[("xyz", "<f4", 3), ("cloud", "<i4"), ("label", "<i4"), ("part", "<i4"),
                                      ("rgb", "u1", 3)])
    assert len(rows) == 6 * 500
    first = rows[rows["cloud"] == 0]
    assert set(first["part"].tolist()) == set(category_parts[0])  # 500 points: every part of the category
    from dd3d.palette import PART_COLORS

    for k, part in enumerate(category_parts[0]):
        assert (first["rgb"][first["part"] == part] == np.round(PART_COLORS[k] * 255)).all()


def test_segmentation_refuses_feature_methods_and_unlabelled_sets(tmp_path: Path) -> None:
    config = str(REPO / "configs" / "shapes-seg.yaml")
    flags = [f for item in TINY_SEG for f in ("--set", item)]
    result = run_cli("distill", "--config", config, "--method", "dm", "--out", str(tmp_path / "dm"), *flags)
    assert_one_line_error(result, "'dm' supports task 'classification' only")
    run = tmp_path / "cls"
    cls_flags = [f for item in TINY_SEG if "batchnorm" not in item for f in ("--set", item)]
    result = run_cli("distill", "--config", str(REPO / "configs" / "shapes.yaml"), "--method", "random",
                     "--out", str(run), *cls_flags)
    assert result.returncode == 0, result.stderr
    result = run_cli("eval", "--config", config, "--synthetic", str(run), *flags)
    assert_one_line_error(result, "no part labels")


def test_parts_follow_the_first_noise_coordinate_of_two_dimensional_noise() -> None:
    partition = NoisePartition([[0, 1]], [[0.5, 0.5]])
    generator = PointGenerator(2, width=16, noise_dim=2)
    rng = torch.Generator().manual_seed(0)
    clouds, parts = generate_labelled(generator, partition, torch.tensor([0, 1]), 2, 64, rng)
    noise = generator.sample_noise(2, 64, torch.Generator().manual_seed(0))
    assert clouds.shape == (2, 64, 3)
    assert torch.equal(parts, (noise[..., 0] >= 0.5).long())
