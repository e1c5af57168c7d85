"""``distill.snapshot_every``: the run as it stood every N iterations, as run folders of its own."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from runfolders import make_run

from dd3d.distill.run import snapshot_folder
from dd3d.synthetic import read_synthetic_h5


def points(folder: Path) -> np.ndarray:
    return read_synthetic_h5(folder / "synthetic.h5")[0].points


@pytest.mark.parametrize("method", ["gm", "dd3d"])
def test_snapshots_are_run_folders_and_leave_the_run_unchanged(tmp_path: Path, method: str) -> None:
    plain = make_run(tmp_path / "plain", method, 1, "distill.iterations=4")
    snapped = make_run(tmp_path / "snapped", method, 1, "distill.iterations=4", "distill.snapshot_every=2")
    assert np.array_equal(points(plain), points(snapped))  # writing snapshots draws nothing from the run's RNG
    assert sorted(p.name for p in (snapped / "snapshots").iterdir()) == ["it2"]  # the last one is the run itself
    snapshot = snapshot_folder(snapped, 2)
    summary = json.loads((snapshot / "distill.json").read_text())
    assert (summary["iterations"], summary["snapshot_of"], len(summary["loss_curve"])) == (2, 4, 2)
    assert (snapshot / "config.yaml").is_file()
    assert (snapshot / "generator.pt").is_file() == (method == "dd3d")
    assert not np.array_equal(points(snapshot), points(snapped))


def test_a_point_tensor_snapshot_is_the_shorter_run(tmp_path: Path) -> None:
    """GM's schedules do not depend on the run's length, so its snapshot after 2 of 4 iterations is the
    2-iteration run."""
    short = make_run(tmp_path / "short", "gm", 1, "distill.iterations=2")
    long = make_run(tmp_path / "long", "gm", 1, "distill.iterations=4", "distill.snapshot_every=2")
    assert np.array_equal(points(snapshot_folder(long, 2)), points(short))
