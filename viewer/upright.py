"""The view frame: clouds turned so that their dataset's up axis is the screen's vertical (y).

Every view (``dd3d-render``, the lab's panels, Save render) draws clouds in this frame with the same
camera (:mod:`viewer.render`), so objects stand upright and face the camera the same way in every
column. The turns are proper rotations (no mirroring): z up -> a quarter turn about x, (x, y, z) ->
(x, z, -y), which puts the back of a ModelNet chair (at +y in its ``.off`` mesh) away from the camera;
x up -> a quarter turn about z, (x, y, z) -> (-y, x, z).
"""
from __future__ import annotations

import numpy as np

#: up axis -> rotation matrix R with R @ up = (0, 1, 0); points are rotated as ``points @ R.T``
UP_ROTATIONS = {
    "x": np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32),
    "y": np.eye(3, dtype=np.float32),
    "z": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]], dtype=np.float32),
}


def upright(points: np.ndarray, up_axis: str) -> np.ndarray:
    """(N, 3) points of a cloud whose up axis is ``up_axis``, turned into the view frame (y up)."""
    points = np.asarray(points, dtype=np.float32)
    return points if up_axis == "y" else points @ UP_ROTATIONS[up_axis].T
