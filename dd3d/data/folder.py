"""Point clouds stored one file per shape in a folder per class (MVPNet exports, users' own data).

Two layouts are accepted: ``root/<class>/{train,test}/<files>`` (as the ModelNet ``.off`` release)
and ``root/{train,test}/<class>/<files>``. Files are ``.ply``/``.pcd`` (read with Open3D), ``.npy``
((P, 3) or (P, >=3), first 3 columns) or ``.txt`` (whitespace or comma separated, first 3 columns);
other files are ignored. Class order is the sorted folder names; every cloud is resampled to
``points``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dd3d.data.base import PointCloudSet
from dd3d.data.h5util import check_choice, load_text_table, missing_root, resample
from dd3d.errors import DataError

EXTENSIONS = (".ply", ".pcd", ".npy", ".txt")
SPLITS = ("train", "test")
LAYOUT = "folder-per-class"
KEY_FILES = (
    "<class>/{train,test}/<cloud> or {train,test}/<class>/<cloud>, "
    "clouds as .ply, .pcd, .npy or .txt"
)


def load_folder(root: Path, split: str, points: int, seed: int) -> PointCloudSet:
    """Load one split ("train" or "test"), each cloud resampled to ``points`` from ``(seed, i)``."""
    root = Path(root)
    check_choice("split", split, SPLITS)
    if not root.is_dir():
        raise missing_root(root, LAYOUT, KEY_FILES)
    class_names, folders = _class_folders(root, split)
    files: list[Path] = []
    labels: list[int] = []
    for label, folder in enumerate(folders):
        found = _cloud_files(folder)
        if not found:
            raise DataError(
                f"{folder}: class folder is missing or holds no point clouds "
                f"({', '.join(EXTENSIONS)}); every class needs clouds in its {split} folder"
            )
        files += found
        labels += [label] * len(found)
    clouds = np.empty((len(files), points, 3), dtype=np.float32)
    for index, path in enumerate(files):
        xyz = read_cloud(path)
        clouds[index] = xyz[resample(len(xyz), points, seed, index)]
    return PointCloudSet(
        points=clouds,
        labels=np.array(labels),
        class_names=class_names,
        source=f"{root} ({split})",
        names=[path.relative_to(root).as_posix() for path in files],
    )


def _subfolders(folder: Path) -> list[Path]:
    return sorted(
        path for path in folder.iterdir() if path.is_dir() and not path.name.startswith(".")
    )


def _class_folders(root: Path, split: str) -> tuple[list[str], list[Path]]:
    """Class names (sorted, the same for both splits) and each class's folder for ``split``."""
    split_dirs = [root / name for name in SPLITS if (root / name).is_dir()]
    if split_dirs:
        if not (root / split).is_dir():
            raise missing_root(
                root, LAYOUT, KEY_FILES, f"has {split_dirs[0].name}/ but no {split}/"
            )
        names = sorted({folder.name for parent in split_dirs for folder in _subfolders(parent)})
        folders = [root / split / name for name in names]
    else:
        names = [folder.name for folder in _subfolders(root)]
        folders = [root / name / split for name in names]
    if not names:
        raise missing_root(root, LAYOUT, KEY_FILES, "no class folders found")
    return names, folders


def _cloud_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        path for path in folder.iterdir() if path.is_file() and path.suffix.lower() in EXTENSIONS
    )


def read_cloud(path: Path) -> np.ndarray:
    """The (P, 3) coordinates of one .ply/.pcd/.npy/.txt cloud file."""
    suffix = path.suffix.lower()
    if suffix in (".ply", ".pcd"):
        xyz = _read_open3d(path)
    elif suffix == ".npy":
        xyz = _read_npy(path)
    else:
        xyz = load_text_table(path, min_columns=3)[:, :3]
    if len(xyz) == 0:
        raise DataError(f"{path}: unreadable or empty point cloud (no points read)")
    if not np.isfinite(xyz).all():
        raise DataError(f"{path}: NaN or Inf coordinates")
    return xyz


def _read_open3d(path: Path) -> np.ndarray:
    import open3d as o3d  # heavy import, only needed for .ply/.pcd folders

    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        cloud = o3d.io.read_point_cloud(str(path))
    return np.asarray(cloud.points)


def _read_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        raise DataError(f"{path}: not a readable .npy file (expected an array written by numpy.save; "
                        "truncated or another format?)") from None
    if array.ndim != 2 or array.shape[1] < 3 or array.dtype.kind not in "iuf":
        raise DataError(
            f"{path}: array of shape {array.shape} and dtype {array.dtype}; "
            "expected (P, 3) or (P, >=3) numbers"
        )
    return array[:, :3]
