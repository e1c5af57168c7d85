"""How long `dd3d prepare` takes per shape, extrapolated to ModelNet40 (12,311 shapes).

    python -m benchmarks.prepare_speed [--shapes 200] [--meshes 40]

No real ModelNet files are needed (nor downloaded): it writes shapes in the exact release formats
into a temporary folder — PointNet++ text files of the release's size (10,000 rows
``x,y,z,nx,ny,nz``, six decimals) and ModelNet-style ``.off`` meshes (spheres of about 1,000, 10,000
and 100,000 triangles, with the 'OFF<V> <F> 0' header defect) — converts them with
``dd3d.data.convert.prepare_dataset`` at 2,048 points, and prints seconds per shape and the
extrapolation to ModelNet40's 9,843 + 2,468 shapes. The extrapolation is linear in the number of
shapes; for meshes it depends on how many triangles the real meshes have, which this script does not know.
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dd3d.config import load_config
from dd3d.data.convert import prepare_dataset
from tests.formats import write_mesh, write_modelnet_resampled

MODELNET40_SHAPES = 9843 + 2468
RELEASE_ROWS = 10_000


def sphere(triangles: int) -> tuple[np.ndarray, np.ndarray]:
    import open3d as o3d

    resolution = max(2, int(round((triangles / 2) ** 0.5)))  # create_sphere has 2 * resolution**2 triangles
    mesh = o3d.geometry.TriangleMesh.create_sphere(radius=1.0, resolution=resolution)
    return np.asarray(mesh.vertices), np.asarray(mesh.triangles)


def timed_prepare(tmp: Path, name: str, config_text: str) -> tuple[float, int]:
    config = tmp / f"{name}.yaml"
    config.write_text(config_text)
    start = time.perf_counter()
    summary = prepare_dataset(load_config(config), tmp / f"{name}_h5", points=2048)
    return time.perf_counter() - start, sum(summary["splits"].values())


def report(label: str, seconds: float, shapes: int) -> None:
    per_shape = seconds / shapes
    print(f"{label}: {shapes} shapes in {seconds:.1f} s = {1000 * per_shape:.1f} ms/shape -> ModelNet40 "
          f"({MODELNET40_SHAPES} shapes) ~ {per_shape * MODELNET40_SHAPES / 60:.1f} min (extrapolated)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", type=int, default=200, help="PointNet++ text files to convert")
    parser.add_argument("--meshes", type=int, default=40, help="meshes per size to convert")
    args = parser.parse_args()
    print(f"# {' '.join(sys.argv)} on {platform.node()} ({platform.processor() or platform.machine()})")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        train = args.shapes * 4 // 5
        root = write_modelnet_resampled(tmp / "modelnet40_normal_resampled", ["airplane"], [train],
                                        [args.shapes - train], points=RELEASE_ROWS)
        report("PointNet++ text (10,000 rows)", *timed_prepare(tmp, "text", f"data:\n  name: modelnet40\n  root: {root}\n"))
        for triangles in (1_000, 10_000, 100_000):
            vertices, faces = sphere(triangles)
            mesh_root = tmp / f"meshes{triangles}"
            for i in range(args.meshes):
                split = "train" if i < args.meshes * 4 // 5 else "test"
                write_mesh(mesh_root / "sphere" / split / f"sphere_{i + 1:04d}.off", vertices, faces.tolist(),
                           off_defect=True)
            report(f".off meshes ({len(faces)} triangles)",
                   *timed_prepare(tmp, f"off{triangles}", f"data:\n  name: folder\n  root: {mesh_root}\n"))


if __name__ == "__main__":
    main()
