"""Triangle meshes (``.off``, ``.obj``, ``.stl``, ``.ply`` with faces) turned into point clouds.

A mesh is sampled uniformly on its surface — every triangle receives points in proportion to its
area (Open3D's ``sample_points_uniformly``) — with ``SURFACE_POINTS`` points, seeded per shape, so
that the same mesh always gives the same cloud whatever resolution is asked for later; the loaders
then take their usual random subset of it. Taking the vertices instead would follow the modeller's
tessellation (dense on curved details, empty on large flat faces).

``.off`` files are parsed here rather than by Open3D because the original ModelNet release has
files whose first line runs into the counts (``OFF490 518 0``), which Open3D refuses. Polygons
with more than three corners are split into a fan of triangles. ``.obj``, ``.stl`` and ``.ply`` are
read with Open3D. An empty mesh, one without faces or one whose faces all have zero area is an
error naming the file.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from dd3d.errors import DataError

SURFACE_POINTS = 10_000  # as PointNet++'s modelnet40_normal_resampled (10,000 points per shape)
MESH_SUFFIXES = (".off", ".obj", ".stl")  # ".ply" is a mesh when it has faces, else a cloud
_COMMENT = re.compile(r"#[^\n]*")


def surface_seed(seed: int, index: int) -> int:
    """The Open3D sampling seed of shape ``index``: fixed by ``(seed, index)`` only."""
    return int(np.random.SeedSequence((seed, index)).generate_state(1)[0] >> 1)


def read_off(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) float64 and triangles (T, 3) int64 of an ASCII OFF file.

    Accepts the ModelNet defect ``OFF<V> <F> <E>`` on the first line, ``#`` comments, and polygons
    (fan-triangulated; extra values after a face's indices, such as colours, are ignored).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read as an OFF text file ({exc})") from None
    if "#" in text:
        text = _COMMENT.sub("", text)
    header, _, rest = text.lstrip().partition("\n")
    header = header.strip()
    if not header.startswith("OFF"):
        raise DataError(f"{path}: not an OFF file: first line {header[:40]!r}, expected 'OFF'")
    counts = header[3:].split()  # non-empty for the ModelNet defect 'OFF490 518 0'
    if not counts:
        line, _, rest = rest.lstrip().partition("\n")
        counts = line.split()
    try:
        vertex_count, face_count = int(counts[0]), int(counts[1])
    except (IndexError, ValueError):
        raise DataError(f"{path}: expected the counts '<vertices> <faces> <edges>' after 'OFF', "
                        f"got {' '.join(counts)[:40]!r}") from None
    if vertex_count <= 0 or face_count <= 0:
        raise DataError(f"{path}: empty or faceless mesh ({vertex_count} vertices, {face_count} faces); "
                        "a mesh needs triangles to sample its surface")
    lines = [line for line in rest.splitlines() if line.strip()]
    if len(lines) < vertex_count + face_count:
        raise DataError(f"{path}: truncated: the header promises {vertex_count} vertices and {face_count} "
                        f"faces ({vertex_count + face_count} lines), the file has {len(lines)}")
    try:
        vertices = np.loadtxt(lines[:vertex_count], dtype=np.float64, ndmin=2, comments=None)
    except ValueError:
        vertices = None
    if vertices is None or vertices.shape[1] != 3:
        raise DataError(f"{path}: the {vertex_count} vertex lines must each hold 3 numbers")
    if not np.isfinite(vertices).all():
        raise DataError(f"{path}: NaN or Inf vertex coordinates")
    triangles = _off_triangles(path, lines[vertex_count:vertex_count + face_count])
    outside = triangles[(triangles < 0) | (triangles >= vertex_count)]
    if outside.size:
        raise DataError(f"{path}: face index {int(outside[0])} outside 0..{vertex_count - 1}")
    return vertices, triangles


def _off_triangles(path: Path, face_lines: list[str]) -> np.ndarray:
    """(T, 3) triangles of OFF face lines ``k i1 .. ik [extra]``; polygons become triangle fans."""
    try:
        table = np.loadtxt(face_lines, dtype=np.int64, ndmin=2, comments=None)
        if table.shape[1] == 4 and (table[:, 0] == 3).all():  # all triangles: the usual case
            return table[:, 1:]
    except ValueError:
        pass  # polygons of several sizes, colours or bad values: parse line by line below
    triangles: list[list[int]] = []
    for number, line in enumerate(face_lines, start=1):
        fields = line.split()
        try:
            corners = [int(value) for value in fields[1:1 + int(fields[0])]]
        except ValueError:
            corners = []
        if len(corners) < 3 or len(corners) != int(fields[0]):
            raise DataError(f"{path}: face {number}: expected '<k> <k vertex indices>' with k >= 3, "
                            f"got {line.strip()[:60]!r}")
        triangles += [[corners[0], corners[i], corners[i + 1]] for i in range(1, len(corners) - 1)]
    return np.array(triangles, dtype=np.int64)


def open3d_for(path: Path):  # -> the open3d module
    """Open3D, imported only when a file needs it; its absence is a one-line error naming the file."""
    try:
        import open3d
    except ImportError:
        raise DataError(f"{path}: reading {path.suffix} files needs Open3D (pip install open3d-cpu, or open3d "
                        "on GPU machines); or convert the dataset with `dd3d prepare` where Open3D is installed"
                        ) from None
    return open3d


def read_mesh(path: Path):  # -> open3d.geometry.TriangleMesh
    """The triangle mesh stored in ``path`` (.off parsed here, other formats by Open3D)."""
    o3d = open3d_for(path)

    if path.suffix.lower() == ".off":
        vertices, triangles = read_off(path)
        return o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices),
                                         o3d.utility.Vector3iVector(triangles.astype(np.int32)))
    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        return o3d.io.read_triangle_mesh(str(path))


def sample_surface(path: Path, mesh, count: int, seed: int) -> np.ndarray:
    """``count`` points drawn uniformly (area-weighted) on the surface of ``mesh``, read from ``path``."""
    o3d = open3d_for(path)

    if len(mesh.triangles) == 0:
        raise DataError(f"{path}: empty or faceless mesh ({len(mesh.vertices)} vertices, 0 faces; unreadable, "
                        "or only vertices); a mesh needs triangles to sample its surface")
    if not np.isfinite(np.asarray(mesh.vertices)).all():
        raise DataError(f"{path}: NaN or Inf vertex coordinates")
    if not mesh.get_surface_area() > 0:
        raise DataError(f"{path}: every face has zero area; no surface to sample")
    o3d.utility.random.seed(seed)
    return np.asarray(mesh.sample_points_uniformly(number_of_points=count).points)


def read_mesh_points(path: Path, count: int, seed: int) -> np.ndarray:
    """``count`` surface points of the mesh file ``path``, drawn with ``seed`` (see module doc)."""
    return sample_surface(path, read_mesh(path), count, seed)
