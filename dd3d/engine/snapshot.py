"""What the lab shows: immutable :class:`Snapshot` objects (numpy only) and the latest-wins channel
that hands them from the engine to any number of readers."""
from __future__ import annotations

import enum
import os
import resource
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np


class State(str, enum.Enum):
    """Engine states as shown in the status line."""

    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    ERROR = "error"
    WAITING = "waiting"  # watching a run folder that has no checkpoint yet
    FINISHED = "finished"  # finished run folders, or a watched run that wrote distill.json


class Mode(str, enum.Enum):
    """What the snapshots come from."""

    LAB = "lab"  # the lab's own GM and DD3D training (:class:`~dd3d.engine.Engine`)
    RUNS = "runs"  # finished ``dd3d distill`` run folders (:class:`~dd3d.engine.RunEngine`)
    WATCH = "watch"  # a run folder written by another process (:class:`~dd3d.engine.RunEngine`)


def frozen(array: np.ndarray) -> np.ndarray:
    """``array`` as a contiguous read-only array (a copy only where needed)."""
    array = np.ascontiguousarray(array)
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class Cloud:
    """One cloud for display: points (N, 3) float32 and optional global part ids (N,), both read-only."""

    points: np.ndarray
    parts: np.ndarray | None = None

    @classmethod
    def of(cls, points: np.ndarray, parts: np.ndarray | None = None) -> "Cloud":
        return cls(frozen(np.asarray(points, dtype=np.float32).reshape(-1, 3)),
                   None if parts is None else frozen(np.asarray(parts, dtype=np.int64).reshape(-1)))

    def __len__(self) -> int:
        return len(self.points)


@dataclass(frozen=True)
class MethodView:
    """Progress of one method (or run folder) and its synthetic cloud for the selected class and sample."""

    name: str
    iteration: int
    losses: np.ndarray  # (iteration,) matching loss per iteration, read-only
    seconds_per_iteration: float | None
    cloud: Cloud | None
    label: str = ""  # panel label of a run folder, e.g. "DD3D" or "GM (run-b)"
    cpc: int = 0  # synthetic clouds per class of a run folder
    regenerated: bool = False  # the cloud is regenerated at the resolution (a generator), else as stored


@dataclass(frozen=True)
class Snapshot:
    """Everything the lab shows at one moment; numpy arrays only, never tensors.

    ``canonical`` holds the canonicalisation stages of the selected real cloud (randomly rotated,
    PCA, rotator output) named by ``canonical_labels``. ``Cloud.parts`` carries part labels for
    segmentation configs (real clouds, GM's labels from its real initialisation, DD3D's from the
    noise partition). An unchanged cloud is the same :class:`Cloud` object in consecutive
    snapshots, so readers can skip work by identity.
    """

    seq: int
    state: State
    message: str
    device: str
    memory_bytes: int
    task: str
    class_names: tuple[str, ...]
    part_names: tuple[str, ...] | None
    class_parts: tuple[int, ...]
    selected_class: int
    selected_sample: int
    samples_in_class: int
    cpc: int
    resolution: int
    target_iterations: int
    methods: tuple[MethodView, ...]
    real: Cloud | None
    canonical: tuple[Cloud, ...]
    canonical_labels: tuple[str, ...]
    mode: Mode = Mode.LAB
    eta_seconds: float | None = None  # watched runs: time left at the pace so far
    updated_at: float | None = None  # watched runs: wall-clock time (epoch s) the shown checkpoint was written
    up_axis: str = "y"  # the data's up axis (``data.up_axis`` resolved): the view turns it up

    def method(self, name: str) -> MethodView | None:
        return next((m for m in self.methods if m.name == name), None)

    @property
    def iteration(self) -> int:
        """Iterations completed by every method (the smallest count)."""
        return min((m.iteration for m in self.methods), default=0)


class SnapshotChannel:
    """Latest-wins hand-over of snapshots from the engine to any number of readers: a slow reader
    skips snapshots, it never queues them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._latest: Snapshot | None = None

    def publish(self, snapshot: Snapshot) -> None:
        with self._cond:
            self._latest = snapshot
            self._cond.notify_all()

    def latest(self) -> Snapshot | None:
        with self._cond:
            return self._latest

    def wait(self, timeout: float, newer_than: int = -1) -> Snapshot | None:
        """The latest snapshot with ``seq > newer_than``, waiting up to ``timeout`` s; else None."""
        with self._cond:
            self._cond.wait_for(lambda: self._latest is not None and self._latest.seq > newer_than, timeout)
            latest = self._latest
        return latest if latest is not None and latest.seq > newer_than else None

    def wait_until(self, predicate: Callable[[Snapshot], bool], timeout: float) -> Snapshot | None:
        """The first snapshot satisfying ``predicate`` within ``timeout`` s (None on timeout or error)."""
        deadline = time.monotonic() + timeout
        seen = -1
        while (left := deadline - time.monotonic()) > 0:
            snap = self.wait(left, seen)
            if snap is None:
                return None
            if predicate(snap):
                return snap
            if snap.state in (State.ERROR, State.STOPPED):
                return None
            seen = snap.seq
        return None


def memory_bytes() -> int:
    """Resident memory of this process (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
