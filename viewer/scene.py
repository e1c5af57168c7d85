"""One camera, material and background for the lab's 3D panels and for the offscreen figures.

Clouds are drawn unlit with post-processing off on a white background, so every point keeps its
exact palette colour (:mod:`dd3d.palette`), from one fixed camera looking at clouds already turned
into the view frame (:mod:`viewer.upright`). The window (:mod:`viewer.window`) sets up its scene
widgets with these helpers; :func:`offscreen` gives the figures (:mod:`viewer.render`) the same
look with Open3D's ``OffscreenRenderer``, no display needed.

Importing this module loads ``open3d.visualization.rendering`` but never the ``gui`` module.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import numpy as np
import open3d as o3d
import open3d.visualization.rendering as rendering

FOV = 30.0  # degrees, on the shorter side of the view
CENTER = np.array([0.0, 0.0, 0.0], dtype=np.float32)
EYE = (np.array([0.9, 0.6, 1.5]) / np.linalg.norm([0.9, 0.6, 1.5]) * 4.4).astype(np.float32)
UP = np.array([0.0, 1.0, 0.0], dtype=np.float32)  # clouds are drawn in the view frame (viewer.upright)
WHITE = (1.0, 1.0, 1.0, 1.0)
TILE = 400  # default tile size (px) of rendered grids
GEOMETRY = "cloud"

#: draws one cloud: (points (N, 3), colours (N, 3), point size) -> RGB image (H, W, 3) uint8
DrawFn = Callable[[np.ndarray, np.ndarray, float], np.ndarray]


def default_point_size(tile: int) -> float:
    """Point size (px) that keeps clouds equally dense whatever the tile size."""
    return max(2.0, tile / 100.0)


def material(point_size: float) -> rendering.MaterialRecord:
    """Unlit points: the rendered colour is exactly the point's colour."""
    mat = rendering.MaterialRecord()
    mat.shader = "defaultUnlit"
    mat.point_size = float(point_size)
    return mat


def point_cloud(points: np.ndarray, colors: np.ndarray) -> o3d.t.geometry.PointCloud:
    pc = o3d.t.geometry.PointCloud(o3d.core.Tensor(np.ascontiguousarray(points, dtype=np.float32)))
    pc.point.colors = o3d.core.Tensor(np.ascontiguousarray(colors, dtype=np.float32))
    return pc


def prepare_scene(scene: rendering.Open3DScene) -> None:
    """White background, no post-processing (exact colours), no lights needed for unlit points."""
    scene.set_background(WHITE)
    scene.view.set_post_processing(False)
    scene.show_axes(False)


def aim(camera: rendering.Camera, width: int, height: int, eye: np.ndarray = EYE,
        center: np.ndarray = CENTER) -> None:
    """The fixed camera: ``FOV`` on the shorter side of a ``width`` × ``height`` view."""
    fov_type = rendering.Camera.FovType.Vertical if width >= height else rendering.Camera.FovType.Horizontal
    distance = float(np.linalg.norm(eye - center))
    camera.set_projection(FOV, width / max(height, 1), 0.05 * distance, 4.0 * distance, fov_type)
    camera.look_at(center, eye, UP)


def show_cloud(scene: rendering.Open3DScene, name: str, points: np.ndarray, colors: np.ndarray,
               mat: rendering.MaterialRecord) -> None:
    """Replace geometry ``name`` by the cloud (nothing is drawn for an empty cloud)."""
    if scene.has_geometry(name):
        scene.remove_geometry(name)
    if len(points):
        scene.add_geometry(name, point_cloud(points, colors), mat)


@contextlib.contextmanager
def offscreen(width: int, height: int) -> Iterator[DrawFn]:
    """A reusable offscreen renderer (no display needed) as a :data:`DrawFn`."""
    renderer = rendering.OffscreenRenderer(width, height)
    prepare_scene(renderer.scene)
    aim(renderer.scene.camera, width, height)

    def draw(points: np.ndarray, colors: np.ndarray, point_size: float) -> np.ndarray:
        show_cloud(renderer.scene, GEOMETRY, points, colors, material(point_size))
        return np.asarray(renderer.render_to_image())[..., :3].copy()

    try:
        yield draw
    finally:
        renderer.scene.clear_geometry()  # geometry must go before the renderer's materials
        del renderer
