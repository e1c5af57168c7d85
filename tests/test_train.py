"""Training on the built-in dataset: learns, checkpoints, resumes exactly."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import dd3d.train as training
from dd3d.config import Config
from dd3d.data import load_dataset
from dd3d.io import load_checkpoint
from dd3d.train import Task, fit, make_rotator, new_run

CPU = torch.device("cpu")


def test_training_beats_chance_by_a_clear_margin(tiny_cfg: Config) -> None:
    splits = load_dataset(tiny_cfg)
    task = Task.of("classification", splits.train)
    run = new_run(task, "pointnet", tiny_cfg.train, CPU, seed=0, rotator=make_rotator(tiny_cfg))
    metrics = fit(run, task, splits.train, splits.test, tiny_cfg.train, tiny_cfg.augment, CPU, progress=False)
    chance = 1 / splits.train.num_classes
    assert metrics["oa"] > 4 * chance, metrics
    assert run.history[-1]["loss"] < run.history[0]["loss"]


def test_segmentation_training_learns_parts(tiny_cfg: Config) -> None:
    tiny_cfg.task = "segmentation"
    splits = load_dataset(tiny_cfg)
    task = Task.of("segmentation", splits.train)
    run = new_run(task, "pointnet", tiny_cfg.train, CPU, seed=0, rotator=make_rotator(tiny_cfg))
    metrics = fit(run, task, splits.train, splits.test, tiny_cfg.train, tiny_cfg.augment, CPU, progress=False)
    assert set(metrics) == {"oa", "instance_miou", "class_miou", "category_miou"}
    assert set(metrics["category_miou"]) == set(range(splits.test.num_classes))
    assert metrics["oa"] > 0.5 and metrics["instance_miou"] > 0.3, metrics


def _train(cfg: Config, checkpoint: Path, epochs: int, resume: bool = False) -> dict[str, float]:
    splits = load_dataset(cfg)
    task = Task.of("classification", splits.train)
    cfg.train.epochs = epochs
    run = new_run(task, "pointnet", cfg.train, CPU, seed=cfg.seed, rotator=make_rotator(cfg))
    if resume:
        run.load_state_dict(load_checkpoint(checkpoint))
    return fit(run, task, splits.train, splits.test, cfg.train, cfg.augment, CPU, checkpoint=checkpoint, progress=False)


def test_resume_equals_uninterrupted_run(tiny_cfg: Config, tmp_path: Path) -> None:
    tiny_cfg.train.scheduler = "none"
    straight = _train(tiny_cfg, tmp_path / "a.pt", epochs=4)
    _train(tiny_cfg, tmp_path / "b.pt", epochs=2)
    assert load_checkpoint(tmp_path / "b.pt")["epoch"] == 2
    resumed = _train(tiny_cfg, tmp_path / "b.pt", epochs=4, resume=True)
    assert resumed == straight
    a, b = load_checkpoint(tmp_path / "a.pt"), load_checkpoint(tmp_path / "b.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_ctrl_c_saves_last_completed_epoch(tiny_cfg: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_epoch = training.train_epoch
    calls = {"n": 0}

    def interrupted(*args, **kwargs):  # noqa: ANN002, ANN003
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(training, "train_epoch", interrupted)
    tiny_cfg.train.checkpoint_every = 5  # the interrupt, not the schedule, must write the checkpoint
    with pytest.raises(KeyboardInterrupt):
        _train(tiny_cfg, tmp_path / "c.pt", epochs=6)
    state = load_checkpoint(tmp_path / "c.pt")
    assert state["epoch"] == 2 and len(state["history"]) == 2
    assert not list(tmp_path.glob(".*tmp"))
