"""What makes DD3D match the authors' release: real clouds re-drawn every matching step, schedules that
follow the run's length, and (beyond the paper) the warm start from the herding clouds."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO

from dd3d.config import Config, load_config
from dd3d.data.transforms import gather_points, normalize_unit_sphere, random_subset_indices
from dd3d.distill import build_method
from dd3d.distill.dd3d import DD3D
from dd3d.distill.matching import GradientMatching
from dd3d.distill.run import build_context, distill
from dd3d.distill.selection import herding_order, select_per_class
from dd3d.distill.warm_start import chamfer_distance, fit_to_clouds, herding_targets
from dd3d.metrics import part_coherence
from dd3d.nn.generator import PointGenerator

CPU = torch.device("cpu")
# real clouds kept at 64 points, matched at 32: fresh draws have points to choose from
TINY = [
    "data.resolution=64", "data.builtin.train_per_class=6", "data.builtin.test_per_class=2", "data.max_classes=3",
    "distill.resolution=32", "eval.resolution=64", "distill.real_batch=4", "distill.iterations=2",
    "distill.outer_loop=2", "distill.inner_loop=1", "distill.generator.width=32", "eval.epochs=1", "eval.runs=1",
    "device=cpu",
]


def tiny(*extra: str, config: str = "shapes.yaml") -> Config:
    return load_config(REPO / "configs" / config, TINY + list(extra))


def replay_draw(ctx, index: np.ndarray, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """What a fresh draw of ``index`` from RNG ``state`` must be: 32 distinct points of each cloud at
    ``data.resolution`` (with their part labels), normalised to the unit sphere."""
    pick = random_subset_indices(len(index), 64, 32, torch.Generator().set_state(state))
    assert all(len(row.unique()) == 32 for row in pick)
    source = ctx.real_source
    parts = None if source.parts is None else gather_points(torch.from_numpy(source.parts[index]), pick)
    return normalize_unit_sphere(gather_points(torch.from_numpy(source.points[index]), pick)), parts


def test_fresh_draws_differ_each_time_and_are_normalised_subsets_of_the_cloud() -> None:
    ctx = build_context(tiny(), CPU)
    index = np.array([0, 1, 2])
    state = ctx.rng.get_state()
    first, _ = ctx.real_clouds(index)
    second, _ = ctx.real_clouds(index)
    assert first.shape == (3, 32, 3) and not torch.equal(first, second)
    torch.testing.assert_close(first.mean(dim=1), torch.zeros(3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(first.norm(dim=2).amax(dim=1), torch.ones(3))
    torch.testing.assert_close(first, replay_draw(ctx, index, state)[0])


def test_fixed_sampling_is_the_prepared_subset() -> None:
    ctx = build_context(tiny("distill.real_sampling=fixed", "distill.augment_real=false"), CPU)
    state = ctx.rng.get_state()
    points, _ = ctx.real_batch(0)
    ctx.rng.set_state(state)
    index = ctx.sample_indices(0, 4)
    assert torch.equal(points, ctx.real_points[torch.from_numpy(index)])
    # fresh sampling with nothing to choose from (distill.resolution = data.resolution) is the same
    same = build_context(tiny("distill.resolution=64", "distill.augment_real=false"), CPU)
    assert same.source_points is None


def test_fresh_sampling_keeps_each_points_part_label() -> None:
    ctx = build_context(tiny(config="shapes-seg.yaml"), CPU)
    index = np.arange(4)
    state = ctx.rng.get_state()
    points, parts = ctx.real_clouds(index)
    expected_points, expected_parts = replay_draw(ctx, index, state)
    torch.testing.assert_close(points, expected_points)
    assert parts is not None and torch.equal(parts, expected_parts)


def test_schedules_follow_the_run_length(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tiny("distill.method=dd3d", "distill.iterations=6", "distill.outer_loop=5", "distill.inner_loop=2")
    method = build_method("dd3d", build_context(cfg, CPU))
    assert method.scheduler.step_size == 3  # the generator: one ×0.1 step at half of the iterations
    seen: list[float] = []
    original = GradientMatching.train_inner

    def spy(self, net, optimizer, scheduler) -> None:
        seen.append(optimizer.param_groups[0]["lr"])
        original(self, net, optimizer, scheduler)

    monkeypatch.setattr(GradientMatching, "train_inner", spy)
    method.step(0)
    # 4 inner phases of 2 epochs; one ×0.1 step after epoch 5 of 10 (half of outer × inner)
    assert seen == pytest.approx([1e-3, 1e-3, 1e-3, 1e-4])
    cfg.distill.lr_step, cfg.distill.net_lr_step = 2, 1
    assert build_method("dd3d", build_context(cfg, CPU)).scheduler.step_size == 2


WARM = ["distill.generator.init=real", "distill.generator.init_steps=3"]


@pytest.mark.parametrize("extra, lr", [([], 1e-3), (WARM, 1e-4), (["distill.generator.init=real",
                                                                 "distill.generator.init_steps=0"], 1e-3),
                                       ([*WARM, "distill.lr=0.002"], 2e-3)],
                         ids=["noise", "warm", "warm-without-steps", "distill-lr-wins"])
def test_matching_after_a_warm_start_uses_the_warm_rate(extra: list[str], lr: float) -> None:
    method = build_method("dd3d", build_context(tiny("distill.method=dd3d", *extra), CPU))
    assert method.optimizer.param_groups[0]["lr"] == pytest.approx(lr)


def test_chamfer_distance_by_hand_and_its_part_restriction() -> None:
    a = torch.tensor([[[0.0, 0, 0], [1, 0, 0]]])
    b = torch.tensor([[[0.0, 0, 0], [3, 0, 0], [1, 0, 0]]])
    # a->b: 0, 0; b->a: 0, 4, 0
    assert float(chamfer_distance(a, b)) == pytest.approx(0 + 4 / 3)
    assert float(chamfer_distance(a, a[:, [1, 0]])) == 0.0  # permutation invariant
    assert float(chamfer_distance(a, b)) == pytest.approx(float(chamfer_distance(b, a)))
    # parts: a's point 1 (part 1) may only match b's part-1 point (3, 0, 0); b's part-2 point has no partner part
    a_parts, b_parts = torch.tensor([[0, 1]]), torch.tensor([[0, 1, 2]])
    assert float(chamfer_distance(a, b, a_parts, b_parts)) == pytest.approx(4 / 2 + (0 + 4 + 0) / 3)
    grad_input = a.clone().requires_grad_()
    chamfer_distance(grad_input, a.clone()).sum().backward()  # coincident points: finite gradient
    assert torch.isfinite(grad_input.grad).all()


def test_warm_start_fits_each_sample_to_its_herding_cloud() -> None:
    ctx = build_context(tiny(), CPU)
    targets, parts, index = herding_targets(ctx)
    ctx_again = build_context(tiny(), CPU)
    assert np.array_equal(index, select_per_class(ctx_again, herding_order)) and parts is None
    assert [int(ctx.real.labels[i]) for i in index] == [0, 1, 2]
    torch.manual_seed(0)
    generator = PointGenerator(3, width=64, omega0=30.0)
    curve = fit_to_clouds(generator, None, targets, None, 1, 150, 1e-3, 64, torch.Generator().manual_seed(0),
                          progress=False)
    assert curve[-1] < 0.2 * curve[0]
    with torch.no_grad():
        clouds = generator.generate(torch.arange(3), 256, torch.Generator().manual_seed(1))
    distance = torch.stack([chamfer_distance(clouds[i:i + 1].expand(3, -1, -1), targets) for i in range(3)])
    assert torch.equal(distance.argmin(dim=1), torch.arange(3))  # each sample is nearest its own target


def test_warm_started_segmentation_parts_are_spatially_coherent() -> None:
    cfg = tiny("distill.generator.init=real", "distill.generator.init_steps=150", "distill.generator.omega0=30",
               config="shapes-seg.yaml")
    torch.manual_seed(0)
    method = DD3D(build_context(cfg, CPU))
    before = within_part_share(method)
    method.start()
    assert within_part_share(method) < 0.75 * before


def within_part_share(method: DD3D) -> float:
    """Mean over the synthetic clouds of their part coherence (within-part / total variance)."""
    synthetic = method.synthetic(512, torch.Generator().manual_seed(0))
    return float(np.mean([part_coherence(c, p) for c, p in zip(synthetic.points, synthetic.parts)]))


def test_warm_start_runs_once_and_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tiny("distill.method=dd3d", "distill.generator.init=real", "distill.generator.init_steps=5")
    summary = distill(cfg, tmp_path / "run", progress=False)
    assert summary["generator_init"] == "real" and summary["init_steps"] == 5 and summary["init_seconds"] > 0
    assert summary["init_chamfer_last"] <= summary["init_chamfer_first"]
    assert len(summary["init_clouds"]) == 3
    assert json.loads((tmp_path / "run" / "distill.json").read_text())["init_clouds"] == summary["init_clouds"]
    # resuming restores the state, reports the fit and never fits again
    ctx = build_context(cfg, CPU)
    fitted = build_method("dd3d", ctx)
    monkeypatch.setattr("dd3d.distill.dd3d.fit_to_clouds", lambda *a, **k: pytest.fail("fitted on resume"))
    resumed = build_method("dd3d", ctx, state=fitted.state_dict())
    assert resumed.report() == fitted.report() and resumed.report()["generator_init"] == "real"
    assert distill(tiny("distill.method=dd3d"), tmp_path / "cold", progress=False)["generator_init"] == "noise"
