""":class:`Engine`: the commands of the lab and its two threads (training and view)."""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from pathlib import Path

from dd3d.config import Config
from dd3d.engine.profile import DEFAULT_RESOLUTION
from dd3d.engine.source import SnapshotSource
from dd3d.engine.training import Progress, Trainer, drain
from dd3d.engine.view import ViewState
from dd3d.errors import DD3DError


class Engine(SnapshotSource):
    """GM and DD3D distilling on the same real data, plus the rotator demo, behind commands.

    Args:
        cfg: the run configuration (e.g. from :func:`~dd3d.engine.load_lab_config`).
        resolution: points of the displayed (and exported) DD3D clouds.
        autosave: if set, a checkpoint is written there every ``distill.checkpoint_every``
            iterations while the losses are finite (the last good state after a divergence).
        resume: a checkpoint written by :meth:`save_checkpoint` to continue from.
        pause_at: pause once every method has completed this many iterations (default
            ``distill.iterations``; 0 starts paused); play continues past it.
    """

    def __init__(self, cfg: Config, resolution: int = DEFAULT_RESOLUTION, autosave: Path | None = None,
                 resume: Path | None = None, pause_at: int | None = None) -> None:
        super().__init__(resolution)
        self.cfg = cfg
        self._trainer = Trainer(cfg, lambda name, arg: self._view_events.put((name, arg)), self._stopping,
                                lambda: self._resolution, cfg.distill.iterations if pause_at is None else pause_at,
                                autosave, resume)
        self._train_thread = threading.Thread(target=self._trainer.run, name="dd3d-engine", daemon=True)
        self._view_thread = threading.Thread(target=self._view_main, name="dd3d-engine-view", daemon=True)

    # ----------------------------------------------------------------------------------- commands

    def start(self) -> "Engine":
        self._train_thread.start()
        self._view_thread.start()
        return self

    def pause(self) -> None:
        self._trainer.submit(("pause", None))

    def resume(self) -> None:
        self._trainer.submit(("resume", None))

    def step(self) -> None:
        """One more iteration of every method (while paused)."""
        self._trainer.submit(("step", None))

    def save_checkpoint(self, path: str | Path) -> "Future[Path]":
        """Write the methods' state to ``path`` (atomically); the future resolves to the path."""
        return self._request("save", Path(path))

    def export(self, path: str | Path) -> "Future[Path]":
        """Write the current DD3D set at the current resolution as ``synthetic.h5`` layout (atomically)."""
        return self._request("export", Path(path))

    def save_runs(self, folder: str | Path) -> "Future[Path]":
        """Write GM and DD3D as ``dd3d distill`` run folders ``folder/gm`` and ``folder/dd3d`` (for
        ``dd3d-render`` and ``dd3d-lab --run``); the future resolves to ``folder``."""
        return self._request("runs", Path(folder))

    def inject_failure(self, message: str = "injected failure") -> None:
        """Make the training thread raise :class:`~dd3d.engine.training.InjectedFailure` (``message``)
        when it next reads its commands (between two steps, also while paused), so the engine
        reaches state ``error`` through the same path as a real failure. For tests and the lab soak
        (``benchmarks/lab_soak.py``); nothing in the lab calls it."""
        text = message.strip()
        if not text or "\n" in text:
            raise DD3DError(f"inject_failure: got {message!r}, expected a non-empty one-line message")
        self._trainer.submit(("fail", text))

    def stop(self, timeout: float = 1.0) -> bool:
        """Stop both threads; True if they ended within ``timeout`` seconds."""
        self._stopping.set()
        self._trainer.submit(("stop", None))
        self._view_events.put(("stop", None))
        deadline = time.monotonic() + timeout
        for thread in (self._train_thread, self._view_thread):
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        return not (self._train_thread.is_alive() or self._view_thread.is_alive())

    def _request(self, name: str, path: Path) -> "Future[Path]":
        future: Future[Path] = Future()
        self._trainer.submit((name, (path, future)))
        return future

    # --------------------------------------------------------------------------------- view thread

    def _view_main(self) -> None:
        """Apply view events (all queued ones at once) and publish one snapshot per batch."""
        view = ViewState(self.cfg, self._resolution)
        try:
            self.snapshots.publish(view.snapshot(self._next_seq(), final=False))
            while True:
                events = drain(self._view_events, block=True)
                if not events:
                    continue
                done = False
                for name, arg in events:
                    if name == "stop":
                        done = True
                    else:
                        view.apply(name, arg)
                self.snapshots.publish(view.snapshot(self._next_seq(), final=done))
                if done:
                    return
        except Exception as exc:  # noqa: BLE001 - reported as a final error snapshot
            self._stopping.set()
            self._trainer.submit(("stop", None))
            view.apply("progress", Progress.failed(exc))
            view.real = None  # the plainest snapshot: state and message only
            self.snapshots.publish(view.snapshot(self._next_seq(), final=True))
