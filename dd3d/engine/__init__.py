"""The lab's engine: GM and DD3D distilling side by side in the background, seen through snapshots.

Two daemon threads, no GUI imports (the viewer reads :class:`Snapshot` objects only):

- the *training* thread (:mod:`dd3d.engine.training`) loads the data once, builds ``gm`` and
  ``dd3d`` on the same real data, alternates their iterations and executes the commands that need
  the live methods (pause, resume, step, save a checkpoint, export);
- the *view* thread (:mod:`dd3d.engine.view`) owns what is looked at (class, sample, DD3D
  resolution) and publishes a :class:`Snapshot` after every training step and at once after a
  selection or resolution change, so a slider change reaches the screen in the time of one small
  generation, not one training step, and also while paused.

Snapshots go through a latest-wins :class:`SnapshotChannel` (:mod:`dd3d.engine.snapshot`). On the
CPU torch runs with :data:`LAB_CPU_THREADS` thread(s) unless ``threads`` is configured, leaving a
core for the window. An exception in the training thread (or :meth:`Engine.inject_failure`) ends
training with state ``error`` and a one-line message, while the view thread keeps serving class,
sample and resolution changes from the last weights (the lab stays usable); an exception in the
view thread ends both. :meth:`Engine.stop` joins both threads within a second (a running step is
abandoned at its next class boundary). :data:`LAB_PROFILE` (:mod:`dd3d.engine.profile`) shrinks
an iteration so that it can be watched: docs/lab.md.

:class:`RunEngine` (:mod:`dd3d.engine.folders`) is the other source of snapshots: finished
``dd3d distill`` run folders side by side (:class:`RunFolder`), or one run followed while another
process writes it (:class:`Watcher`); it trains nothing (docs/lab.md). Both engines share
:class:`~dd3d.engine.source.SnapshotSource` (selection and resolution in, snapshots out), the real
side of a view (:class:`~dd3d.engine.view.RealView`) and the panel clouds (:mod:`dd3d.previews`:
:class:`GeneratedClouds` regenerated at any resolution, :class:`StoredClouds` as stored), which a
method hands out with :meth:`~dd3d.distill.base.Method.preview`. The engine names no method: the lab's
pair is :data:`LAB_METHODS`, the rest goes through the :class:`~dd3d.distill.base.Method` interface.
"""
from dd3d.engine.core import Engine
from dd3d.engine.folders import RunEngine
from dd3d.engine.profile import DEFAULT_RESOLUTION, LAB_CPU_THREADS, LAB_METHODS, LAB_PROFILE, load_lab_config
from dd3d.engine.runs import RunFolder, Watcher
from dd3d.engine.snapshot import Cloud, MethodView, Mode, Snapshot, SnapshotChannel, State, memory_bytes
from dd3d.engine.training import CHECKPOINT_FORMAT, one_line
from dd3d.previews import GeneratedClouds, StoredClouds

__all__ = [
    "CHECKPOINT_FORMAT", "Cloud", "DEFAULT_RESOLUTION", "Engine", "GeneratedClouds", "LAB_CPU_THREADS",
    "LAB_METHODS", "LAB_PROFILE", "MethodView", "Mode", "RunEngine", "RunFolder", "Snapshot", "SnapshotChannel",
    "State", "StoredClouds", "Watcher", "load_lab_config", "memory_bytes", "one_line",
]
