"""The lab engine without any GUI: snapshots, commands, errors, exports and checkpoints."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest
import torch
from conftest import REPO

from dd3d.distill.gm import GM
from dd3d.engine import Engine, Snapshot, SnapshotChannel, State, load_lab_config
from dd3d.errors import DD3DError
from dd3d.io import load_checkpoint
from dd3d.synthetic import read_synthetic_h5

# three classes, tiny clouds and networks: an iteration of each method takes a few milliseconds
TINY_LAB = [
    "data.resolution=64", "data.builtin.train_per_class=4", "data.builtin.test_per_class=2", "data.max_classes=3",
    "distill.resolution=32", "distill.real_batch=2", "distill.generator.width=32", "eval.resolution=64", "device=cpu",
]
TIMEOUT = 30.0


def tiny_lab(*extra: str, config: str = "shapes.yaml"):
    return load_lab_config(REPO / "configs" / config, TINY_LAB + list(extra))


def started_engines(kind: type) -> Iterator[Callable[..., Any]]:
    """A fixture's body: engines of ``kind`` started in a test, stopped even when it fails (and
    torch's thread count restored: the engines set it for the whole process)."""
    started = []
    threads = torch.get_num_threads()

    def start(*args, **kwargs):
        engine = kind(*args, **kwargs).start()
        started.append(engine)
        return engine

    yield start
    for engine in started:
        engine.stop()
    torch.set_num_threads(threads)


@pytest.fixture
def engines():
    yield from started_engines(Engine)


def wait(engine: Engine, predicate, what: str) -> Snapshot:
    snap = engine.snapshots.wait_until(predicate, TIMEOUT)
    latest = engine.snapshots.latest()
    assert snap is not None, f"timed out waiting for {what}; last: {latest and (latest.state, latest.message)}"
    return snap


def test_snapshots_are_immutable_numpy_views_of_both_methods(engines) -> None:
    engine = engines(tiny_lab(), resolution=200)
    snap = wait(engine, lambda s: s.iteration >= 2, "two iterations")
    assert snap.state == State.RUNNING and snap.device.startswith("cpu") and snap.memory_bytes > 0
    assert [m.name for m in snap.methods] == ["gm", "dd3d"]
    assert snap.class_names == ("airplane", "bed", "bottle") and snap.samples_in_class == 4
    gm, dd3d = snap.method("gm"), snap.method("dd3d")
    assert len(gm.cloud) == 32 and len(dd3d.cloud) == 200 and len(snap.real) == 64
    assert len(gm.losses) == gm.iteration and np.isfinite(gm.losses).all()
    assert [len(c) for c in snap.canonical] == [64, 64, 64] and len(snap.canonical_labels) == 3
    # PCA stage: centred, and its covariance is diagonal with decreasing variances
    pca = snap.canonical[1].points.astype(np.float64)
    cov = np.cov(pca.T)
    assert np.allclose(pca.mean(axis=0), 0, atol=1e-5) and np.allclose(cov - np.diag(np.diag(cov)), 0, atol=1e-4)
    assert cov[0, 0] >= cov[1, 1] >= cov[2, 2]
    for array in (snap.real.points, gm.cloud.points, dd3d.cloud.points, gm.losses):
        assert isinstance(array, np.ndarray) and not array.flags.writeable
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.state = State.PAUSED  # type: ignore[misc]
    assert snap.real.parts is None  # classification: coloured by height


def test_pause_step_resume_and_stop_within_a_second(engines) -> None:
    engine = engines(tiny_lab())
    wait(engine, lambda s: s.iteration >= 1, "the first iteration")
    engine.pause()
    paused = wait(engine, lambda s: s.state == State.PAUSED, "paused")
    time.sleep(0.3)
    assert engine.snapshots.latest().iteration == paused.iteration
    engine.step()
    stepped = wait(engine, lambda s: s.iteration == paused.iteration + 1, "one step")
    assert stepped.state == State.PAUSED and all(m.iteration == stepped.iteration for m in stepped.methods)
    engine.resume()
    wait(engine, lambda s: s.iteration >= stepped.iteration + 2, "running again")
    began = time.perf_counter()
    assert engine.stop()
    assert time.perf_counter() - began < 1.0
    assert engine.snapshots.latest().state == State.STOPPED


def test_stop_abandons_a_long_step(engines) -> None:
    engine = engines(tiny_lab("distill.outer_loop=400"))  # one iteration takes many seconds
    wait(engine, lambda s: s.state == State.RUNNING, "running")
    time.sleep(0.3)
    began = time.perf_counter()
    assert engine.stop()
    assert time.perf_counter() - began < 1.0
    assert engine.snapshots.latest().iteration == 0


def test_resolution_and_selection_reach_the_next_snapshot_while_paused(engines) -> None:
    engine = engines(tiny_lab(), resolution=100, pause_at=0)
    first = wait(engine, lambda s: s.method("dd3d") is not None and s.method("dd3d").cloud is not None, "clouds")
    assert first.state == State.PAUSED and first.iteration == 0
    engine.set_resolution(333)
    snap = engine.snapshots.wait(TIMEOUT, newer_than=first.seq)
    assert snap is not None and snap.resolution == 333
    assert len(snap.method("dd3d").cloud) == 333 and len(snap.method("gm").cloud) == 32
    engine.select(2, 3)
    snap = wait(engine, lambda s: s.selected_class == 2, "selection")
    assert snap.selected_sample == 3 and not np.array_equal(snap.real.points, first.real.points)
    engine.select(1, 99)  # out of range: clamped to the class's last cloud
    assert wait(engine, lambda s: s.selected_class == 1, "clamped selection").selected_sample == 3
    assert snap.iteration == 0
    with pytest.raises(DD3DError):
        engine.set_resolution(0)


@pytest.mark.parametrize("failure, expected", [
    (RuntimeError("boom\nsecond line"), "RuntimeError: boom"),
    (float("nan"), "gm: matching loss is not finite at iteration 1 (diverged)"),
])
def test_engine_failure_is_reported_as_error_state(engines, monkeypatch, failure, expected) -> None:
    def broken_step(self, iteration: int) -> float:
        if isinstance(failure, Exception):
            raise failure
        self.losses.append(failure)
        return failure

    monkeypatch.setattr(GM, "step", broken_step)
    engine = engines(tiny_lab())
    snap = wait(engine, lambda s: s.state == State.ERROR, "the error")
    assert snap.message == expected and "\n" not in snap.message
    assert engine.stop(timeout=1.0)
    assert engine.snapshots.latest().state == State.ERROR


def wait_through_error(engine: Engine, predicate, what: str, newer_than: int) -> Snapshot:
    """Like :func:`wait`, but keeps waiting through error snapshots (the view outlives training)."""
    deadline, seen = time.monotonic() + TIMEOUT, newer_than
    while (snap := engine.snapshots.wait(max(deadline - time.monotonic(), 0.0), newer_than=seen)) is not None:
        if predicate(snap):
            return snap
        seen = snap.seq
    raise AssertionError(f"timed out waiting for {what}; last: {engine.snapshots.latest()}")


def test_injected_failure_ends_training_but_the_view_stays_usable(engines, tmp_path: Path) -> None:
    engine = engines(tiny_lab(), resolution=100, pause_at=1)
    before = wait(engine, lambda s: s.iteration == 1 and s.state == State.PAUSED, "one iteration")
    with pytest.raises(DD3DError, match="one-line"):
        engine.inject_failure("two\nlines")
    engine.inject_failure("soak: injected at minute 5")  # while paused: read between steps
    refused = engine.export(tmp_path / "set.h5")  # queued behind the failure: refused, never left hanging
    failed = wait(engine, lambda s: s.state == State.ERROR, "the injected error")
    assert failed.message == "soak: injected at minute 5" and failed.iteration == 1
    with pytest.raises(DD3DError, match="cannot export: the engine has stopped"):
        refused.result(TIMEOUT)
    with pytest.raises(DD3DError, match="cannot save"):
        engine.save_checkpoint(tmp_path / "lab.pt").result(TIMEOUT)
    engine.select(2, 1)
    engine.set_resolution(123)
    snap = wait_through_error(engine, lambda s: s.selected_class == 2 and len(s.method("dd3d").cloud) == 123,
                              "class 2 at 123 points", failed.seq)
    assert snap.state == State.ERROR and snap.message == failed.message and snap.selected_sample == 1
    assert not np.array_equal(snap.real.points, before.real.points)
    engine.select(0, 0)
    engine.set_resolution(100)
    back = wait_through_error(engine, lambda s: s.selected_class == 0 and len(s.method("dd3d").cloud) == 100,
                              "class 0 at 100 points", snap.seq)
    # regenerated (not cached) from the last weights: the same cloud as before the failure
    assert back.method("dd3d").cloud is not before.method("dd3d").cloud
    assert np.array_equal(back.method("dd3d").cloud.points, before.method("dd3d").cloud.points)
    assert engine.stop(timeout=1.0)
    assert engine.snapshots.latest().state == State.ERROR


def test_missing_dataset_is_an_error_snapshot(engines, tmp_path: Path) -> None:
    cfg = load_lab_config(REPO / "configs" / "modelnet40.yaml", [f"data.root={tmp_path / 'absent'}", "device=cpu"])
    engine = engines(cfg)
    snap = wait(engine, lambda s: s.state == State.ERROR, "the error")
    assert "absent" in snap.message and "\n" not in snap.message and snap.real is None


def test_export_and_checkpoint_then_resume(engines, tmp_path: Path) -> None:
    engine = engines(tiny_lab(), resolution=100, pause_at=2)
    wait(engine, lambda s: s.iteration == 2 and s.state == State.PAUSED, "two iterations")
    engine.set_resolution(77)
    exported = engine.export(tmp_path / "set.h5").result(TIMEOUT)
    synthetic, names = read_synthetic_h5(exported)
    assert synthetic.points.shape == (3, 77, 3) and synthetic.labels.tolist() == [0, 1, 2]
    assert names == ["airplane", "bed", "bottle"] and np.abs(synthetic.points).max() <= 1 + 1e-5
    saved = engine.save_checkpoint(tmp_path / "lab.pt").result(TIMEOUT)
    assert set(load_checkpoint(saved)["methods"]) == {"gm", "dd3d"}
    wait(engine, lambda s: s.message == f"checkpoint saved to {saved}", "the saved message")
    with pytest.raises(OSError):
        engine.export(tmp_path / "set.h5" / "inside-a-file.h5").result(TIMEOUT)
    assert engine.snapshots.wait_until(lambda s: "export failed" in s.message, TIMEOUT) is not None
    engine.stop()
    resumed = engines(tiny_lab(), resume=saved, pause_at=0)
    snap = wait(resumed, lambda s: bool(s.methods), "the resumed state")
    assert [m.iteration for m in snap.methods] == [2, 2]
    other = engines(tiny_lab("distill.generator.width=16"), resume=saved, pause_at=0)
    assert "does not match" in wait(other, lambda s: s.state == State.ERROR, "mismatch").message


def test_segmentation_distils_with_part_labels_in_every_panel(engines, tmp_path: Path) -> None:
    engine = engines(tiny_lab("distill.batchnorm_clouds=2", config="shapes-seg.yaml"), resolution=300)
    snap = wait(engine, lambda s: s.iteration >= 1, "the first segmentation iteration")
    assert snap.real.parts is not None and len(snap.real.parts) == len(snap.real)
    assert set(np.unique(snap.real.parts)) <= set(snap.class_parts) and len(snap.class_parts) >= 2
    assert snap.part_names is not None and snap.part_names[snap.class_parts[0]].startswith("airplane/")
    assert all(c.parts is not None for c in snap.canonical)
    gm, dd3d = snap.method("gm"), snap.method("dd3d")
    assert len(gm.cloud.parts) == 32 and set(np.unique(gm.cloud.parts)) <= set(snap.class_parts)
    # DD3D labels come from the noise partition: every part of the class at 300 points
    assert len(dd3d.cloud.parts) == 300 and set(np.unique(dd3d.cloud.parts)) == set(snap.class_parts)
    exported, _ = read_synthetic_h5(engine.export(tmp_path / "x.h5").result(TIMEOUT))
    assert exported.parts is not None and exported.parts.shape == exported.points.shape[:2] == (3, 300)


def test_channel_is_latest_wins() -> None:
    channel = SnapshotChannel()
    assert channel.latest() is None and channel.wait(0.01) is None
    snaps = [Snapshot(i, State.RUNNING, "", "", 0, "classification", (), None, (), 0, 0, 0, 1, 1, 1, (), None, (), ())
             for i in (1, 2)]
    for snap in snaps:
        channel.publish(snap)
    assert channel.wait(0.01) is snaps[1] and channel.wait(0.01, newer_than=2) is None


def test_rotator_demo_uses_the_live_learned_rotator(engines) -> None:
    engine = engines(tiny_lab("data.setting=rotated"), pause_at=1)
    snap = wait(engine, lambda s: s.iteration == 1 and s.state == State.PAUSED, "one iteration")
    assert snap.canonical_labels[2] == "rotator (learned, live)"
    raw, pca, rotated = (c.points for c in snap.canonical)
    assert np.allclose(np.abs(rotated), np.abs(pca), atol=1e-5)  # the rotator only flips PCA axes
    assert not np.allclose(raw - raw.mean(axis=0), pca, atol=1e-3)  # PCA really turned the cloud
