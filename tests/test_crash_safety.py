"""Crash safety: a run killed with SIGKILL mid-way resumes to the result of an uninterrupted run, and
leaves no half-written file behind."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO

from dd3d.io import load_checkpoint, remove_temporaries

DISTILL = [
    "data.resolution=32", "data.builtin.train_per_class=4", "data.builtin.test_per_class=2", "data.max_classes=3",
    "distill.resolution=32", "eval.resolution=32", "distill.real_batch=3", "distill.iterations=8",
    "distill.outer_loop=2", "distill.inner_loop=1", "distill.generator.width=16", "distill.checkpoint_every=1",
    "device=cpu",
]


def dd3d(*args: str) -> list[str]:
    return [sys.executable, "-m", "dd3d", *args]


def flags(overrides: list[str]) -> list[str]:
    return [f for item in overrides for f in ("--set", item)]


def kill_when(process: subprocess.Popen, ready, timeout: float = 120.0) -> None:
    """SIGKILL ``process`` as soon as ``ready()`` holds (the test fails if it finished first)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, "the run finished before it could be killed; make it longer"
        assert time.monotonic() < deadline, "timed out waiting for the run to reach the kill point"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def stray_files(folder: Path) -> list[str]:
    """Temporary files of interrupted atomic writes (``--resume`` removes them)."""
    return [p.name for p in folder.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


def plant_stray_temporary(folder: Path) -> None:
    """What a SIGKILL during an atomic write leaves behind."""
    (folder / ".checkpoint.pt.k1ll3d.tmp").write_bytes(b"half a checkpoint")


def test_distill_killed_mid_run_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    config = str(REPO / "configs" / "shapes.yaml")
    straight = subprocess.run(dd3d("distill", "--config", config, "--method", "dd3d", "--out", str(tmp_path / "a"),
                                   *flags(DISTILL)), cwd=REPO, capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr
    run = tmp_path / "b"
    checkpoint = run / "checkpoint.pt"

    def past_iteration_three() -> bool:
        try:
            return checkpoint.is_file() and load_checkpoint(checkpoint)["iteration"] >= 3
        except Exception:  # noqa: BLE001 - a checkpoint being renamed into place: look again
            return False

    process = subprocess.Popen(dd3d("distill", "--config", config, "--method", "dd3d", "--out", str(run),
                                    *flags(DISTILL)), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_when(process, past_iteration_three)
    assert process.returncode == -signal.SIGKILL
    assert not (run / "synthetic.h5").exists() and not (run / "distill.json").exists()
    assert load_checkpoint(checkpoint)["iteration"] < 8  # the last complete checkpoint is loadable
    plant_stray_temporary(run)
    resumed = subprocess.run(dd3d("distill", "--resume", str(run)), cwd=REPO, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    a, b = (json.loads((tmp_path / r / "distill.json").read_text()) for r in ("a", "b"))
    assert b["loss_curve"] == a["loss_curve"]
    wa, wb = (load_checkpoint(tmp_path / r / "generator.pt")["generator"] for r in ("a", "b"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert stray_files(run) == [] and not checkpoint.exists()


def test_train_killed_mid_run_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    config = str(REPO / "configs" / "shapes.yaml")
    train = ["data.resolution=32", "data.builtin.train_per_class=8", "data.builtin.test_per_class=2",
             "train.epochs=12", "train.batch_size=8", "device=cpu"]
    straight = subprocess.run(dd3d("train", "--config", config, "--out", str(tmp_path / "a"), *flags(train)),
                              cwd=REPO, capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr
    run = tmp_path / "b"
    process = subprocess.Popen(dd3d("train", "--config", config, "--out", str(run), *flags(train)), cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def past_epoch_three() -> bool:
        log = run / "train.log"
        return log.is_file() and "epoch=4 " in log.read_text()

    kill_when(process, past_epoch_three)
    assert not (run / "metrics.json").exists()
    plant_stray_temporary(run)
    resumed = subprocess.run(dd3d("train", "--resume", str(run)), cwd=REPO, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    a, b = (json.loads((tmp_path / r / "metrics.json").read_text()) for r in ("a", "b"))
    assert (a["oa"], a["macc"]) == (b["oa"], b["macc"])
    wa, wb = (load_checkpoint(tmp_path / r / "checkpoint.pt")["model"] for r in ("a", "b"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert stray_files(run) == []


def test_divergence_stops_with_one_line_and_keeps_the_last_good_state(tmp_path: Path) -> None:
    from dd3d.config import load_config
    from dd3d.distill import gm
    from dd3d.distill.run import Diverged, distill

    cfg = load_config(REPO / "configs" / "shapes.yaml", [*DISTILL, "distill.method=gm"])
    original = gm.GM.step

    def diverge_at_third(self, iteration: int) -> float:  # a SIREN with too large an ω0 can do this
        loss = original(self, iteration)
        return float("nan") if iteration == 2 else loss

    gm.GM.step = diverge_at_third
    try:
        with pytest.raises(Diverged, match=r"loss is nan at iteration 3 .*last good state \(iteration 2\)"):
            distill(cfg, tmp_path / "run", progress=False)
    finally:
        gm.GM.step = original
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["iteration"] == 2
    assert not (tmp_path / "run" / "synthetic.h5").exists()


def test_training_divergence_stops_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(dd3d("train", "--config", str(REPO / "configs" / "shapes.yaml"), "--out", str(tmp_path / "t"),
                                 *flags(["data.resolution=32", "data.builtin.train_per_class=4", "train.epochs=3",
                                         "train.lr=1e30", "train.optimizer=sgd", "device=cpu"])),
                            cwd=REPO, capture_output=True, text=True)
    lines = [line for line in result.stderr.splitlines() if line.startswith("dd3d")]
    assert result.returncode == 2 and lines and "diverged" in lines[-1], result.stderr
    assert not (tmp_path / "t" / "metrics.json").exists()


def test_eval_killed_mid_run_continues_to_the_uninterrupted_result(tmp_path: Path) -> None:
    config = str(REPO / "configs" / "shapes.yaml")
    base = ["data.resolution=32", "data.builtin.train_per_class=4", "data.builtin.test_per_class=2",
            "data.max_classes=3", "eval.resolution=32", "eval.epochs=30", "eval.runs=2", "eval.batch_size=2",
            "eval.checkpoint_every=1", "eval.test_every=0", "device=cpu"]
    made = subprocess.run(dd3d("distill", "--config", config, "--method", "random", "--cpc", "2",
                               "--out", str(tmp_path / "set"), *flags(base)), cwd=REPO, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    evaluate = dd3d("eval", "--config", config, "--synthetic", str(tmp_path / "set"), *flags(base))
    straight = subprocess.run([*evaluate, "--out", str(tmp_path / "a")], cwd=REPO, capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr
    out = tmp_path / "b"

    def inside_second_run() -> bool:
        try:
            state = load_checkpoint(out / "eval-run.pt")
            return state["run"] == 1 and state["epoch"] >= 3
        except Exception:  # noqa: BLE001 - not written yet, or being renamed into place
            return False

    process = subprocess.Popen([*evaluate, "--out", str(out)], cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    kill_when(process, inside_second_run)
    assert not (out / "metrics.json").exists()
    again = subprocess.run([*evaluate, "--out", str(out)], cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "resuming the evaluation" in again.stderr and "at run 2/2, epoch" in again.stderr
    a, b = (json.loads((tmp_path / r / "metrics.json").read_text()) for r in ("a", "b"))
    assert a["oa_runs"] == b["oa_runs"] and a["macc_mean"] == b["macc_mean"]
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json"]


def test_temporaries_of_one_file_are_removed_and_others_kept(tmp_path: Path) -> None:
    """What a writer killed mid-way leaves (``.NAME.RANDOM.tmp``) is swept per target file, so an evaluation
    that finishes removes its checkpoints' leftovers without touching another writer's."""
    leftovers = [tmp_path / ".eval-run.pt.a1b2.tmp", tmp_path / ".eval-runs.pt.c3d4.tmp", tmp_path / ".other.e5.tmp"]
    for path in leftovers:
        path.write_bytes(b"partial")
    assert remove_temporaries(tmp_path, of="eval-run.pt") == [leftovers[0]]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".eval-runs.pt.c3d4.tmp", ".other.e5.tmp"]
    assert sorted(remove_temporaries(tmp_path)) == sorted(leftovers[1:]) and not list(tmp_path.iterdir())
