"""Shapes stored one file per shape in a folder per class (ModelNet's meshes, MVPNet exports, users' data).

Two layouts are accepted: ``root/<class>/{train,test}/<files>`` (as the original ModelNet ``.off``
release, ``ModelNet10/<class>/{train,test}/<name>.off``) and ``root/{train,test}/<class>/<files>``.
Point clouds are ``.pcd`` or ``.ply`` without faces (read with Open3D), ``.npy`` ((P, 3) or (P, >=3),
first 3 columns) or ``.txt`` (whitespace or comma separated, first 3 columns). Meshes are ``.off``,
``.obj``, ``.stl`` or ``.ply`` with faces, sampled uniformly on their surface (``dd3d.data.mesh``).
Other files, hidden files (``.DS_Store``, macOS ``._*``) and macOS's ``__MACOSX`` folder are not
shapes and are passed over. Class order is the sorted folder names; every shape is resampled to
``points``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dd3d.data.base import PointCloudSet
from dd3d.data.filesplit import FileSplit
from dd3d.data.h5util import check_choice, load_text_table, missing_root
from dd3d.data.mesh import MESH_SUFFIXES, SURFACE_POINTS, open3d_for, read_mesh, sample_surface, surface_seed
from dd3d.errors import DataError

CLOUD_SUFFIXES = (".ply", ".pcd", ".npy", ".txt")
EXTENSIONS = CLOUD_SUFFIXES + MESH_SUFFIXES
SPLITS = ("train", "test")
LAYOUT = "folder-per-class"
KEY_FILES = (
    "<class>/{train,test}/<shape> or {train,test}/<class>/<shape>, "
    "clouds as .ply, .pcd, .npy or .txt, meshes as .off, .obj, .stl or .ply with faces"
)
NOT_CLASSES = ("__MACOSX",)  # resource forks that macOS adds to zip archives


def load_folder(root: Path, split: str, points: int, seed: int) -> PointCloudSet:
    """Load one split ("train" or "test"), each shape resampled to ``points`` from ``(seed, i)``."""
    return folder_split(root, split).load(points, seed)


def folder_split(root: Path, split: str) -> FileSplit:
    """The shape files of one split ("train" or "test") of a folder-per-class dataset."""
    root = Path(root)
    check_choice("split", split, SPLITS)
    if not root.is_dir():
        raise missing_root(root, LAYOUT, KEY_FILES)
    class_names, folders, arrangement = _class_folders(root, split)
    files: list[Path] = []
    labels: list[int] = []
    for label, folder in enumerate(folders):
        found = _shape_files(folder)
        if not found:
            raise DataError(
                f"{folder}: class folder is missing or holds no point clouds or meshes "
                f"({', '.join(EXTENSIONS)}); every class needs shapes in its {split} folder"
            )
        files += found
        labels += [label] * len(found)
    return FileSplit(
        paths=files,
        labels=np.array(labels, dtype=np.int64),
        class_names=class_names,
        names=[path.relative_to(root).as_posix() for path in files],
        source=f"{root} ({split})",
        layout=_describe(arrangement, files),
        read=lambda index, seed: (read_shape(files[index], seed, index), None),
    )


def _describe(arrangement: str, files: list[Path]) -> str:
    """The layout as ``dd3d data`` shows it, e.g. ``folder-per-class (<class>/<split>), .off files; ...``."""
    kinds = sorted({path.suffix.lower() for path in files})
    text = f"{LAYOUT} ({arrangement}), {', '.join(kinds)} files"
    if any(kind in MESH_SUFFIXES or kind == ".ply" for kind in kinds):
        text += f"; meshes sampled uniformly on their surface ({SURFACE_POINTS} points each, then subsampled)"
    return text


def _subfolders(folder: Path) -> list[Path]:
    return sorted(
        path for path in folder.iterdir()
        if path.is_dir() and not path.name.startswith(".") and path.name not in NOT_CLASSES
    )


def _class_folders(root: Path, split: str) -> tuple[list[str], list[Path], str]:
    """Class names (sorted, the same for both splits), each class's folder for ``split`` and the
    arrangement found (``<split>/<class>`` or ``<class>/<split>``)."""
    split_dirs = [root / name for name in SPLITS if (root / name).is_dir()]
    if split_dirs:
        if not (root / split).is_dir():
            raise missing_root(
                root, LAYOUT, KEY_FILES, f"has {split_dirs[0].name}/ but no {split}/"
            )
        names = sorted({folder.name for parent in split_dirs for folder in _subfolders(parent)})
        folders = [root / split / name for name in names]
        arrangement = "<split>/<class>"
    else:
        names = [folder.name for folder in _subfolders(root)]
        folders = [root / name / split for name in names]
        arrangement = "<class>/<split>"
    if not names:
        raise missing_root(root, LAYOUT, KEY_FILES, "no class folders found")
    return names, folders, arrangement


def _shape_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        path for path in folder.iterdir()
        if path.is_file() and path.suffix.lower() in EXTENSIONS and not path.name.startswith(".")
    )


def read_shape(path: Path, seed: int, index: int) -> np.ndarray:
    """The (P, 3) points of one shape file: a cloud's points, or ``SURFACE_POINTS`` drawn on a mesh's
    surface with the seed of ``(seed, index)``."""
    suffix = path.suffix.lower()
    if suffix in MESH_SUFFIXES:
        xyz = sample_surface(path, read_mesh(path), SURFACE_POINTS, surface_seed(seed, index))
    elif suffix == ".ply":
        mesh = read_mesh(path)
        xyz = (sample_surface(path, mesh, SURFACE_POINTS, surface_seed(seed, index)) if len(mesh.triangles)
               else np.asarray(mesh.vertices))
    elif suffix == ".pcd":
        xyz = _read_pcd(path)
    elif suffix == ".npy":
        xyz = _read_npy(path)
    else:
        xyz = load_text_table(path, min_columns=3, keep=3)
    if len(xyz) == 0:
        raise DataError(f"{path}: unreadable or empty point cloud (no points read)")
    if not np.isfinite(xyz).all():
        raise DataError(f"{path}: NaN or Inf coordinates")
    return xyz


def _read_pcd(path: Path) -> np.ndarray:
    o3d = open3d_for(path)  # heavy import, only needed for .ply/.pcd/mesh folders

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
