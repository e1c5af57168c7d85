"""The lab's controller without a window: which view models it hands over, and when."""
from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np

from dd3d.engine import Cloud, MethodView, Snapshot, SnapshotChannel, State
from viewer.controller import Controller


class FakeEngine:
    """Publishes snapshots by hand; the controller only reads ``snapshots`` and calls ``select``."""

    def __init__(self) -> None:
        self.snapshots = SnapshotChannel()


def snapshot(seq: int, iteration: int, selected_class: int = 0) -> Snapshot:
    cloud = Cloud.of(np.random.default_rng(seq).normal(size=(64, 3)))
    method = MethodView("dd3d", iteration, np.linspace(2, 1, iteration), 0.1, cloud)
    return Snapshot(seq=seq, state=State.RUNNING, message="", device="cpu", memory_bytes=0, task="classification",
                    class_names=("a", "b"), part_names=None, class_parts=(), selected_class=selected_class,
                    selected_sample=0, samples_in_class=1, cpc=1, resolution=64, target_iterations=10,
                    methods=(method,), real=cloud, canonical=(), canonical_labels=())


def test_a_slider_or_picker_update_comes_without_the_loss_image_which_follows_once_quiet() -> None:
    engine, views, lock = FakeEngine(), [], threading.Lock()

    def apply(view) -> None:
        with lock:
            views.append(view)

    controller = Controller(engine, post=lambda f: f(), apply=apply, show_message=lambda *a: None,
                            min_interval=0.05, panels=("Real", "DD3D"))
    engine.snapshots.publish(snapshot(1, iteration=3))
    controller.start()
    try:
        assert controller.wait_applied(lambda s: s.seq == 1, 5) is not None
        engine.snapshots.publish(replace(snapshot(2, iteration=4), state=State.PAUSED))  # training stopped
        assert controller.wait_applied(lambda s: s.seq == 2, 5) is not None
        engine.snapshots.publish(replace(snapshot(3, iteration=5), selected_class=1))  # a selection, one iteration on
        assert controller.wait_applied(lambda s: s.seq == 3, 5) is not None
        time.sleep(0.6)  # quiet: the deferred loss curve is drawn
    finally:
        controller.stop()
    with lock:
        kinds = [(v.snapshot.seq, v.loss_image is not None) for v in views]
    # the first view and a state change draw the plot; the picker's view skips it and the next quiet
    # moment redraws the same snapshot with it
    assert kinds == [(1, True), (2, True), (3, False), (3, True)]
