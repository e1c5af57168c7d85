"""The evaluation protocol: train fresh networks on a distilled set, test on the real test split.

Settings are ``eval.*``: ``eval.protocol: dd3d`` (paper Table 8: Adam lr 1e-3, wd 5e-4, batch 8,
200 epochs, StepLR ×0.1 every 100 epochs, the training augmentation) or ``sadm`` (SGD lr 0.01
momentum 0.9 wd 5e-4, batch 8, 500 epochs, ×0.1 at 250; same augmentation); metrics.json records
the protocol and its training values. Each of ``eval.runs`` runs uses seed ``seed + run``;
for a dd3d run folder every run regenerates the set from ``generator.pt`` with fresh noise at
``eval.resolution``. Segmentation trains PointNetSeg on the synthetic clouds' part labels and
reports point OA, instance mIoU and class mIoU (plus each category's mIoU). Reported: the
final-epoch accuracy (``oa_mean`` ± ``oa_std``) and, when
``eval.test_every`` > 0, the best accuracy over the tested epochs (``oa_best_epoch_mean``) — model
selection on the test set, as the released code prints it; docs/results.md labels it so.
"""
from __future__ import annotations

import copy
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from dd3d.config import Config, dataset_label, dump_config
from dd3d.data import load_raw_split, prepare_at, select_classes
from dd3d.data.base import PointCloudSet
from dd3d.errors import DD3DError
from dd3d.io import load_checkpoint, remove_temporaries, save_checkpoint
from dd3d.synthetic import (GENERATOR_FILE, SYNTHETIC_FILE, LoadedGenerator, SyntheticSet, read_synthetic_h5,
                            resample_set)
from dd3d.train import Task, TrainingRun, fit, make_rotator, new_run

#: training values recorded in metrics.json under "training" (with epochs and batch_size: what a protocol sets)
PROTOCOL_KEYS = ("optimizer", "lr", "momentum", "weight_decay", "scheduler", "step_size", "gamma")


class SyntheticSource:
    """Where the training clouds of each evaluation run come from: a fixed set or a generator."""

    def __init__(self, run_dir: Path, class_names: list[str], limited: bool = False) -> None:
        """``class_names``: the dataset's classes; with ``limited`` (``data.max_classes``) the
        synthetic set may hold a subset of them, which then selects the test classes."""
        if not run_dir.is_dir():
            raise DD3DError(f"--synthetic {run_dir}: run folder not found")
        self.generator: LoadedGenerator | None = None
        self.fixed: SyntheticSet | None = None
        if (run_dir / GENERATOR_FILE).is_file():
            self.generator = LoadedGenerator(run_dir / GENERATOR_FILE)
            names = self.generator.class_names
        elif (run_dir / SYNTHETIC_FILE).is_file():
            self.fixed, names = read_synthetic_h5(run_dir / SYNTHETIC_FILE)
        else:
            raise DD3DError(f"--synthetic {run_dir}: no {SYNTHETIC_FILE} or {GENERATOR_FILE} in this folder "
                            "(expected the output folder of `dd3d distill`)")
        names = list(names) if names is not None else list(class_names)
        if names != list(class_names) and not (limited and set(names) <= set(class_names)):
            raise DD3DError(f"{run_dir}: synthetic classes {names[:4]}… differ from the config's dataset "
                            f"classes {class_names[:4]}… (evaluate with the config used to distil)")
        self.class_names = names

    @property
    def has_parts(self) -> bool:
        """Whether the clouds carry part labels (a segmentation set)."""
        return self.generator.partition is not None if self.generator is not None else self.fixed.parts is not None

    def clouds(self, points: int, seed: int) -> PointCloudSet:
        """The training set of one evaluation run at ``points`` points per cloud."""
        rng = torch.Generator().manual_seed(seed)
        if self.generator is not None:
            synthetic = self.generator.generate(points, rng)
        else:
            synthetic = self.fixed
            if synthetic.points.shape[1] != points:
                synthetic = resample_set(synthetic, points, rng)
        return PointCloudSet(points=synthetic.points, labels=synthetic.labels, class_names=self.class_names,
                             parts=synthetic.parts, source="synthetic set")

    def rotator(self, cfg: Config) -> torch.nn.Module:
        """The distilled rotator (frozen) for a dd3d run, else the one the config asks for."""
        if self.generator is not None:
            rotator = copy.deepcopy(self.generator.rotator)
            rotator.requires_grad_(False)
            return rotator
        return make_rotator(cfg)


def evaluate_synthetic(cfg: Config, run_dir: Path, out: Path | None = None, backbone: str | None = None,
                       progress: bool = True) -> dict[str, Any]:
    """Run the protocol ``cfg.eval.runs`` times and return (and write to ``out``) the metrics."""
    from dd3d.device import describe, resolve_device
    from dd3d.io import write_json

    device = resolve_device(cfg.device, cfg.threads)
    backbone = backbone or cfg.model.name
    test_raw = load_raw_split(cfg, cfg.data.test_split)
    source = SyntheticSource(run_dir, test_raw.class_names, limited=cfg.data.max_classes is not None)
    if cfg.task == "segmentation" and not source.has_parts:
        raise DD3DError(f"--synthetic {run_dir}: the synthetic set has no part labels ('pid'), "
                        "but the config's task is 'segmentation'")
    test_raw = select_classes(test_raw, source.class_names)
    test = prepare_at(test_raw, cfg, cfg.data.test_split, cfg.eval.resolution)
    task = Task.of(cfg.task, test)
    progress_file = None if out is None else EvalProgress(out, f"{dump_config(cfg)}|{run_dir.resolve()}|{backbone}")
    finals, bests = progress_file.finished() if progress_file is not None else ([], [])
    start = time.perf_counter()
    for r in tqdm(range(len(finals), cfg.eval.runs), initial=len(finals), total=cfg.eval.runs, desc="eval runs",
                  unit="run", disable=not progress):
        seed = cfg.seed + r
        train = source.clouds(cfg.eval.resolution, seed)
        run = new_run(task, backbone, cfg.eval, device, seed, source.rotator(cfg), cfg.model.size)
        if progress_file is not None and progress_file.restore(run) and progress:
            tqdm.write(f"resuming the evaluation in {out} at run {r + 1}/{cfg.eval.runs}, epoch {run.epoch}",
                       file=sys.stderr)
        metrics = fit(run, task, train, test, cfg.eval, cfg.augment, device, eval_every=cfg.eval.test_every,
                      progress=progress, checkpoint=None if progress_file is None else progress_file.run_file,
                      checkpoint_meta=None if progress_file is None else progress_file.meta(r))
        finals.append(metrics)
        tested = [h["test_oa"] for h in run.history if "test_oa" in h] + [metrics["oa"]]
        bests.append(max(tested))
        if progress_file is not None:
            progress_file.save(finals, bests)
    summary = _summarise(finals, bests, source.class_names)
    distilled = run_dir / "distill.json"
    origin = json.loads(distilled.read_text()) if distilled.is_file() else {}
    summary.update({
        "method": origin.get("method", "unknown"), "cpc": origin.get("cpc"), "dataset": dataset_label(cfg),
        "setting": cfg.data.setting, "backbone": backbone, "backbone_size": cfg.model.size, "runs": cfg.eval.runs,
        "protocol": cfg.eval.protocol, "epochs": cfg.eval.epochs,
        "training": {k: getattr(cfg.eval, k) for k in PROTOCOL_KEYS}, "augment": cfg.augment.enabled,
        "batch_size": cfg.eval.batch_size, "resolution": cfg.eval.resolution, "test_every": cfg.eval.test_every,
        "synthetic": str(run_dir), "regenerated_per_run": source.generator is not None,
        "wall_time_s": round(time.perf_counter() - start, 2), "device": describe(device),
        "selection_note": "oa_* = final epoch; oa_best_epoch_* = max over tested epochs (test-set selection)",
    })
    if out is not None:
        write_json(out / "metrics.json", summary)
        progress_file.clear()
    return summary


class EvalProgress:
    """Resumable evaluation: the finished runs (``eval-runs.pt``) and the running one's training state
    (``eval-run.pt``, saved every ``eval.checkpoint_every`` epochs by :func:`fit`), both written
    atomically to the output folder and removed once ``metrics.json`` is written. An evaluation
    started again with the same config, synthetic set and backbone continues where it stopped;
    files from other settings are ignored and overwritten."""

    def __init__(self, out: Path, fingerprint: str) -> None:
        self.runs_file, self.run_file = out / "eval-runs.pt", out / "eval-run.pt"
        self.fingerprint = hashlib.sha256(fingerprint.encode()).hexdigest()
        self.state: dict[str, Any] | None = None
        if self.runs_file.is_file():
            state = load_checkpoint(self.runs_file, what="evaluation checkpoint")
            self.state = state if state.get("fingerprint") == self.fingerprint else None

    def finished(self) -> tuple[list[dict[str, Any]], list[float]]:
        """Metrics and best-epoch OA of the runs finished before an interruption."""
        return ([], []) if self.state is None else (list(self.state["finals"]), list(self.state["bests"]))

    def restore(self, run: TrainingRun) -> bool:
        """Continue the interrupted run's training, if its state belongs to this evaluation (True then)."""
        if not self.run_file.is_file():
            return False
        saved = load_checkpoint(self.run_file, what="evaluation checkpoint")
        if saved.get("fingerprint") != self.fingerprint or saved.get("run") != len(self.finished()[0]):
            return False
        run.load_state_dict(saved)
        return True

    def meta(self, r: int) -> dict[str, Any]:
        """What identifies run ``r``'s training checkpoint as belonging to this evaluation."""
        return {"fingerprint": self.fingerprint, "run": r}

    def save(self, finals: list[dict[str, Any]], bests: list[float]) -> None:
        self.state = {"fingerprint": self.fingerprint, "finals": finals, "bests": bests}
        save_checkpoint(self.runs_file, self.state)
        self.run_file.unlink(missing_ok=True)

    def clear(self) -> None:
        """Remove both files, and the temporaries of their writes that a killed evaluation left behind."""
        for path in (self.runs_file, self.run_file):
            path.unlink(missing_ok=True)
            remove_temporaries(path.parent, of=path.name)


def _summarise(finals: list[dict[str, Any]], bests: list[float], class_names: list[str]) -> dict[str, Any]:
    """Mean, std and per-run values of every scalar metric (OA/mAcc, or OA/instance/class mIoU),
    the best-epoch OA, and for segmentation each category's mIoU averaged over runs."""
    out: dict[str, Any] = {}
    for key in [k for k, v in finals[0].items() if isinstance(v, float)]:
        values = np.array([m[key] for m in finals])
        out.update({f"{key}_mean": float(values.mean()), f"{key}_std": float(values.std()),
                    f"{key}_runs": values.tolist()})
    out.update({"oa_best_epoch_mean": float(np.mean(bests)), "oa_best_epoch_std": float(np.std(bests)),
                "oa_best_epoch_runs": list(map(float, bests))})
    if "category_miou" in finals[0]:
        out["category_miou_mean"] = {class_names[c]: float(np.mean([m["category_miou"][c] for m in finals]))
                                     for c in finals[0]["category_miou"]}
    return out
