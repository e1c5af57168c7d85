"""ModelNet in the PointNet HDF5 release layout (``modelnet40_ply_hdf5_2048``) or PointNet++'s text
release (``modelnet40_normal_resampled``, see ``dd3d.data.modelnet_resampled``), detected from the
files each layout lists its splits in.

The HDF5 folder holds ``ply_data_{train,test}*.h5`` (keys ``data`` (N, P, 3) float, ``label`` (N, 1)
uint8, optional ``name``), the lists ``{train,test}_files.txt`` (entries carry a ``data/...`` prefix
that does not exist locally, so each is resolved by its file name inside the folder) and
``shape_names.txt`` (class name per label, one a line). Any dataset in this layout reads unchanged,
e.g. ModelNet10 with 10 names in ``shape_names.txt``, or the output of ``dd3d prepare``.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np

from dd3d.config import DataConfig
from dd3d.data import modelnet_resampled
from dd3d.data.base import PointCloudSet
from dd3d.data.filesplit import FileSplit
from dd3d.data.h5util import (
    Key,
    check_choice,
    files_source,
    missing_root,
    read_h5_files,
    read_lines,
)
from dd3d.errors import DataError

MODELNET40_CLASSES = (
    "airplane", "bathtub", "bed", "bench", "bookshelf", "bottle", "bowl", "car", "chair", "cone",
    "cup", "curtain", "desk", "door", "dresser", "flower_pot", "glass_box", "guitar", "keyboard",
    "lamp", "laptop", "mantel", "monitor", "night_stand", "person", "piano", "plant", "radio",
    "range_hood", "sink", "sofa", "stairs", "stool", "table", "tent", "toilet", "tv_stand", "vase",
    "wardrobe", "xbox",
)
SPLITS = ("train", "test")
H5_LAYOUT = "ModelNet40 HDF5 (modelnet40_ply_hdf5_2048)"
H5_FILES = "ply_data_train*.h5, ply_data_test*.h5, train_files.txt, test_files.txt, shape_names.txt"
LAYOUT = f"{H5_LAYOUT} or {modelnet_resampled.LAYOUT}"
KEY_FILES = f"{H5_FILES}; or {modelnet_resampled.KEY_FILES}"
KEYS = (
    Key("data", "f", (("N", "P", 3),)),
    Key("label", "iu", (("N", 1), ("N",))),
    Key("name", "SOU", (("N",),), optional=True),
)


def load_modelnet(root: Path, split: str, points: int = DataConfig.resolution, seed: int = DataConfig.rotation_seed,
                  lists: str = DataConfig.lists) -> PointCloudSet:
    """Load one split ("train" or "test") of a ModelNet folder in either layout.

    HDF5 clouds keep their native point count; text shapes are resampled to ``points`` from
    ``(seed, i)``; ``lists`` chooses the text layout's split lists (:func:`modelnet_text_split`).
    """
    resampled = modelnet_text_split(root, split, lists)
    return _load_h5(Path(root), split) if resampled is None else resampled.load(points, seed)


def modelnet_text_split(root: Path, split: str, lists: str = "auto") -> FileSplit | None:
    """The shape files of ``split`` when ``root`` is in the text layout; None for the HDF5 layout.

    The HDF5 layout wins when its files are present; with neither layout's files, the error names both.
    ``lists`` (``data.lists``) names the release whose split lists to read — ``modelnet40`` or
    ``modelnet10`` (the full modelnet40_normal_resampled folder holds both) — or ``auto``: modelnet40's
    when present, else modelnet10's.
    """
    root = Path(root)
    check_choice("split", split, SPLITS)
    if not root.is_dir():
        raise missing_root(root, LAYOUT, KEY_FILES)
    if any(root.glob("ply_data_*.h5")) or any(root.glob("*_files.txt")):
        return None
    prefix = modelnet_resampled.list_prefix(root) if lists == "auto" else lists
    if prefix is None:
        raise missing_root(root, LAYOUT, KEY_FILES, "neither ply_data_*.h5 files nor modelnet40_*.txt "
                                                    "(or modelnet10_*.txt) lists found")
    return modelnet_resampled.resampled_split(root, split, prefix)


def _load_h5(root: Path, split: str) -> PointCloudSet:
    files = _split_files(root, split)
    arrays = read_h5_files(files, KEYS)
    labels = arrays["label"].reshape(-1).astype(np.int64)
    names = [_text(name) for name in arrays["name"]] if "name" in arrays else None
    return PointCloudSet(
        points=arrays["data"],
        labels=labels,
        class_names=_class_names(root, labels),
        source=files_source(files),
        layout=H5_LAYOUT,
        names=names,
    )


def _split_files(root: Path, split: str) -> list[Path]:
    """The h5 files of a split: from ``<split>_files.txt`` when present, else by glob."""
    listing = root / f"{split}_files.txt"
    if not listing.is_file():
        files = sorted(root.glob(f"ply_data_{split}*.h5"))
        if not files:
            raise missing_root(
                root, H5_LAYOUT, H5_FILES, f"no {listing.name} and no ply_data_{split}*.h5 files"
            )
        return files
    files = []
    for number, entry in read_lines(listing):
        path = root / PurePosixPath(entry.replace("\\", "/")).name
        if not path.is_file():
            raise DataError(f"{listing}: line {number}: lists {entry!r} but {path} does not exist")
        files.append(path)
    if not files:
        raise DataError(f"{listing}: lists no files; expected one ply_data_{split}*.h5 name a line")
    return files


def _class_names(root: Path, labels: np.ndarray) -> list[str]:
    """Class names from ``shape_names.txt``, or the ModelNet40 list when it is absent."""
    names_file = root / "shape_names.txt"
    count = int(labels.max()) + 1 if len(labels) else 0
    if names_file.is_file():
        names = [text for _, text in read_lines(names_file)]
        if count > len(names):
            raise DataError(
                f"{names_file}: names {len(names)} classes but labels go up to {count - 1}"
            )
        return names
    if count == len(MODELNET40_CLASSES):
        return list(MODELNET40_CLASSES)
    raise DataError(
        f"{names_file}: not found; needed to name the {count} classes (one name a line, "
        "label = line index)"
    )


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
