"""Run folders written by ``dd3d distill``, as the lab opens them.

:class:`RunFolder` is a finished run (``config.yaml``, ``distill.json`` and ``generator.pt`` or
``synthetic.h5``), read with the same loaders as ``dd3d generate`` and ``dd3d-render``
(:class:`~dd3d.synthetic.LoadedGenerator`, :func:`~dd3d.synthetic.read_synthetic_h5`).
:class:`Watcher` follows a folder that another process (another shell, torchrun's rank 0, a GPU
machine writing to a shared folder) is writing: it polls ``config.yaml``, ``checkpoint.pt`` and
``distill.json`` by their file status and rebuilds the method from the newest checkpoint. Every
artefact is written atomically (temporary file + rename, :mod:`dd3d.io`), so a file that exists is
complete; a checkpoint that vanishes between the look and the read (the run finished) or that cannot
be read is skipped until the folder changes again.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from dd3d.config import Config, dataset_label, load_config
from dd3d.distill.base import DistillContext, Method
from dd3d.distill.run import CHECKPOINT_FILE, CONFIG_FILE, SUMMARY_FILE
from dd3d.engine.snapshot import frozen
from dd3d.errors import DD3DError
from dd3d.previews import GeneratedClouds, Preview, StoredClouds
from dd3d.nn.rotator import Rotator
from dd3d.synthetic import GENERATOR_FILE, SYNTHETIC_FILE, LoadedGenerator, read_synthetic_h5


def _summary(path: Path) -> dict[str, Any]:
    try:
        summary = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        raise DD3DError(f"{path}: not a readable distill summary (expected JSON written by dd3d distill)") from None
    if not isinstance(summary, dict):
        raise DD3DError(f"{path}: not a distill summary (expected a JSON object)")
    return summary


def _losses(values: Any) -> np.ndarray:
    try:
        return frozen(np.asarray(values if values is not None else [], dtype=np.float64).reshape(-1))
    except (TypeError, ValueError):
        return frozen(np.zeros(0))


@dataclass(frozen=True)
class RunFolder:
    """A finished ``dd3d distill`` run folder: its config, summary and synthetic clouds.

    ``clouds`` regenerates from ``generator.pt`` when there is one (DD3D), else shows
    ``synthetic.h5`` as stored; ``rotator`` is the run's trained rotator (``generator.pt``) or None.
    """

    path: Path
    cfg: Config
    method: str
    cpc: int
    iterations: int
    class_names: tuple[str, ...]
    losses: np.ndarray
    clouds: Preview
    rotator: Rotator | None

    @property
    def dataset(self) -> str:
        return dataset_label(self.cfg)

    @classmethod
    def open(cls, path: str | Path, overrides: Sequence[str] = (), flag: str = "--run") -> "RunFolder":
        """Read the run folder ``path`` (``overrides`` apply to its config, e.g. another ``data.root``);
        every problem is a one-line :class:`DD3DError` naming the folder or file."""
        path = Path(path)
        if not path.is_dir():
            raise DD3DError(f"{flag} {path}: run folder not found")
        if not (path / CONFIG_FILE).is_file():
            raise DD3DError(f"{flag} {path}: not a dd3d distill run folder (no {CONFIG_FILE})")
        if not (path / SUMMARY_FILE).is_file():
            raise DD3DError(f"{flag} {path}: the run has not finished (no {SUMMARY_FILE}); "
                            f"follow it with dd3d-lab --watch {path}")
        cfg = load_config(path / CONFIG_FILE, overrides)
        summary = _summary(path / SUMMARY_FILE)
        rotator = None
        if (path / GENERATOR_FILE).is_file():
            loaded = LoadedGenerator(path / GENERATOR_FILE)
            clouds: Preview = GeneratedClouds(loaded.generator, loaded.partition, loaded.num_classes, loaded.cpc)
            names, rotator, cpc = loaded.class_names, loaded.rotator, loaded.cpc
        elif (path / SYNTHETIC_FILE).is_file():
            synthetic, names = read_synthetic_h5(path / SYNTHETIC_FILE)
            clouds = StoredClouds(synthetic)
            names = names or summary.get("class_names")
            cpc = int(summary.get("cpc") or clouds.cpc)
        else:
            raise DD3DError(f"{flag} {path}: no {GENERATOR_FILE} or {SYNTHETIC_FILE} in the run folder")
        if not names:
            raise DD3DError(f"{path / SYNTHETIC_FILE}: no class names (attribute class_names, or in {SUMMARY_FILE})")
        return cls(path, cfg, str(summary.get("method", cfg.distill.method)), cpc,
                   int(summary.get("iterations", cfg.distill.iterations)), tuple(names),
                   _losses(summary.get("loss_curve")), clouds, rotator)


def check_compatible(runs: Sequence[RunFolder], flag: str = "--run") -> None:
    """Refuse runs that cannot share one Real panel: another dataset or class list than the first run."""
    first = runs[0]
    for run in runs[1:]:
        if run.dataset != first.dataset or run.cfg.task != first.cfg.task:
            raise DD3DError(f"{flag} {run.path}: dataset {run.dataset} ({run.cfg.task}) differs from "
                            f"{first.dataset} ({first.cfg.task}) of {first.path}; open runs of one dataset together")
        if run.class_names != first.class_names:
            diff = next((f"{a!r} vs {b!r}" for a, b in zip(run.class_names, first.class_names) if a != b),
                        f"{len(run.class_names)} vs {len(first.class_names)} classes")
            raise DD3DError(f"{flag} {run.path}: class list differs from that of {first.path} ({diff}); "
                            "open runs of the same classes together")


def panel_labels(runs: Sequence[RunFolder]) -> list[str]:
    """One label per run: its method, with the folder name where two runs share a method."""
    methods = [r.method.upper() for r in runs]
    return [f"{m} ({r.path.name})" if methods.count(m) > 1 else m for m, r in zip(methods, runs)]


def _status(path: Path) -> tuple[int, int, int] | None:
    """(inode, modification time, size) of ``path``, or None when it does not exist."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


@dataclass(frozen=True)
class Watched:
    """What a :class:`Watcher` shows now; ``version`` changes whenever the clouds may have."""

    method: str
    iteration: int
    total: int
    losses: np.ndarray
    seconds: float | None  # training seconds up to ``iteration`` (across resumes)
    written_at: float | None  # when the shown checkpoint or result was written (epoch seconds)
    clouds: Preview | None
    rotator: Rotator | None
    finished: bool
    version: int

    @property
    def eta_seconds(self) -> float | None:
        """Time left at the pace so far, counted from when the checkpoint was written."""
        if self.finished or not self.seconds or self.iteration <= 0 or self.written_at is None:
            return None
        left = (self.total - self.iteration) * self.seconds / self.iteration
        return max(0.0, left - (time.time() - self.written_at))


class Watcher:
    """Follows the run folder ``folder`` written by ``dd3d distill`` in another process.

    :meth:`poll` (called by the engine's thread every fraction of a second) looks at the files'
    status only and reads a file when it changed: ``config.yaml`` (the data and the total iterations;
    the real data is reloaded only when its text changes, so a resumed run keeps it), the newest
    ``checkpoint.pt`` (the method rebuilt from the config and loaded with the checkpoint's state),
    and ``distill.json`` (the run finished: the result files are shown, :class:`RunFolder`).
    """

    def __init__(self, folder: Path, overrides: Sequence[str] = ()) -> None:
        self.folder, self.overrides = Path(folder), tuple(overrides)
        self.cfg: Config | None = None
        self.ctx: DistillContext | None = None
        self.shown: Watched | None = None
        self.message = f"waiting for {self.folder / CONFIG_FILE} (a dd3d distill --out {self.folder} to start)"
        self.failed = False  # the message is an error
        self._config_text: str | None = None
        self._seen: dict[str, tuple[int, int, int] | None] = {}
        self._method: Method | None = None
        self._version = 0

    def poll(self) -> bool:
        """Look at the folder; True when something shown (or the message) changed."""
        changed = self._changed(CONFIG_FILE) and self._read_config()
        if self.cfg is None:
            return changed
        summary, checkpoint = _status(self.folder / SUMMARY_FILE), _status(self.folder / CHECKPOINT_FILE)
        # a new run started over an old result: its checkpoint is newer than distill.json
        finished = summary is not None and (checkpoint is None or checkpoint[1] <= summary[1])
        if finished and self._changed(SUMMARY_FILE):
            return self._read_result() or changed
        if not finished and self._changed(CHECKPOINT_FILE):
            return self._read_checkpoint() or changed
        return changed

    def _changed(self, name: str) -> bool:
        status = _status(self.folder / name)
        if status is None or self._seen.get(name) == status:
            return False
        self._seen[name] = status
        return True

    def _fail(self, message: str) -> bool:
        self.message, self.failed = message, True
        return True

    def _read_config(self) -> bool:
        from dd3d.config import dump_config
        from dd3d.distill.run import build_context

        try:
            cfg = load_config(self.folder / CONFIG_FILE, self.overrides)
        except DD3DError as exc:
            return self._fail(str(exc))
        text = dump_config(cfg)
        if text == self._config_text:
            self.cfg = cfg  # e.g. more iterations after a resume: the same data
            return True
        try:
            self.ctx = build_context(cfg, torch.device("cpu"))
        except DD3DError as exc:
            return self._fail(str(exc))
        self.cfg, self._config_text, self._method, self.shown = cfg, text, None, None
        self._seen.pop(CHECKPOINT_FILE, None)
        self._seen.pop(SUMMARY_FILE, None)
        self.message, self.failed = (f"waiting for the first checkpoint (every {cfg.distill.checkpoint_every} "
                                     "iterations; --set distill.checkpoint_every=1 for every iteration)"), False
        return True

    def _read_checkpoint(self) -> bool:
        from dd3d.distill import build_method
        from dd3d.io import load_checkpoint

        path = self.folder / CHECKPOINT_FILE
        written_at = self._seen[CHECKPOINT_FILE][1] / 1e9
        try:
            state = load_checkpoint(path)
            name = str(state["name"])
            if self._method is None or self._method.name != name:
                torch.manual_seed(self.cfg.seed)
                self._method = build_method(name, self.ctx)
            method = self._method
            method.load_state_dict(state["method"])
            iteration, seconds = int(state["iteration"]), float(state["seconds"])
        except DD3DError as exc:
            if not path.exists():  # replaced or removed since we looked: the next poll sees what came
                self._seen.pop(CHECKPOINT_FILE, None)
                return False
            return self._fail(f"{exc}; waiting for the next checkpoint")
        except (KeyError, TypeError, ValueError, RuntimeError):
            self._method = None
            return self._fail(f"{path}: checkpoint does not match {self.folder / CONFIG_FILE} "
                              "(another method, dataset, cpc or generator size?); waiting for the next checkpoint")
        self._show(Watched(name, iteration, self.cfg.distill.iterations, _losses(method.losses), seconds, written_at,
                           method.preview(), method.trained_rotator(), False, self._version + 1))
        self.message, self.failed = f"{CHECKPOINT_FILE} at iteration {iteration}", False
        return True

    def _read_result(self) -> bool:
        try:
            run = RunFolder.open(self.folder, self.overrides, flag="--watch")
        except DD3DError as exc:
            return self._fail(str(exc))
        written_at = self._seen[SUMMARY_FILE][1] / 1e9
        self._show(Watched(run.method, run.iterations, run.iterations, run.losses, None, written_at, run.clouds,
                           run.rotator, True, self._version + 1))
        self.message, self.failed = f"finished: {self.folder / SUMMARY_FILE}", False
        return True

    def _show(self, watched: Watched) -> None:
        self.shown, self._version = watched, watched.version
