""":class:`SnapshotSource`: what every engine offers the window — snapshots out, selection and
resolution in — so the lab's training engine and the run-folder engine share one controller."""
from __future__ import annotations

import queue
import threading

from dd3d.engine.snapshot import SnapshotChannel
from dd3d.engine.training import Command
from dd3d.errors import DD3DError


def _check_resolution(points: int) -> int:
    if points < 1:
        raise DD3DError(f"resolution: got {points}, expected an integer >= 1")
    return int(points)


class SnapshotSource:
    """Publishes snapshots on :attr:`snapshots`; :meth:`select` and :meth:`set_resolution` queue view
    events for the engine's view thread (which owns :attr:`_view_events`)."""

    def __init__(self, resolution: int) -> None:
        self.snapshots = SnapshotChannel()
        self._resolution = _check_resolution(resolution)
        self._view_events: queue.Queue[Command] = queue.Queue()
        self._stopping = threading.Event()
        self._seq = 0

    @property
    def resolution(self) -> int:
        return self._resolution

    def set_resolution(self, points: int) -> None:
        """Points of regenerated (DD3D) clouds from the next snapshot on (stored clouds keep their size)."""
        self._resolution = _check_resolution(points)
        self._view_events.put(("resolution", self._resolution))

    def select(self, class_index: int, sample: int = 0) -> None:
        """Show class ``class_index`` and its ``sample``-th real cloud (synthetic: sample mod cpc)."""
        self._view_events.put(("select", (int(class_index), int(sample))))

    def _next_seq(self) -> int:
        self._seq += 1  # the view thread is the only publisher
        return self._seq
