"""ModelNet in PointNet++'s text release (``modelnet40_normal_resampled``).

The folder holds ``<class>/<class>_0001.txt`` (10,000 rows ``x,y,z,nx,ny,nz``, comma separated),
the split lists ``modelnet40_train.txt`` / ``modelnet40_test.txt`` (one shape name ``<class>_0001``
a line) and ``modelnet40_shape_names.txt`` (class name per label, one a line). The ModelNet10
subset uses the same files under ``modelnet10_*`` list names; a folder holding both sets of lists
is read as ModelNet40. Only the coordinates are parsed (normals are ignored), and every shape is
resampled to ``points`` from ``(seed, i)``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dd3d.data.filesplit import FileSplit
from dd3d.data.h5util import load_text_table, read_lines
from dd3d.errors import DataError

PREFIXES = ("modelnet40", "modelnet10")
LAYOUT = "PointNet++ text (modelnet40_normal_resampled)"
KEY_FILES = "modelnet40_{train,test}.txt, modelnet40_shape_names.txt, <class>/<class>_0001.txt"


def list_prefix(root: Path) -> str | None:
    """``modelnet40`` or ``modelnet10`` when ``root`` holds that release's split lists or class list, else None."""
    return next((prefix for prefix in PREFIXES
                 if any((root / f"{prefix}_{kind}.txt").is_file() for kind in ("train", "test", "shape_names"))), None)


def resampled_split(root: Path, split: str, prefix: str) -> FileSplit:
    """The shape files of ``split`` listed in ``<prefix>_<split>.txt``."""
    names_file = root / f"{prefix}_shape_names.txt"
    if not names_file.is_file():
        raise DataError(f"{names_file}: not found; needed to name the classes of {prefix}_{split}.txt "
                        "(one class name a line, label = line index)")
    class_names = [name for _, name in read_lines(names_file)]
    label_of = {name: label for label, name in enumerate(class_names)}
    listing = root / f"{prefix}_{split}.txt"
    if not listing.is_file():
        raise DataError(f"{listing}: split list not found; expected one shape name (<class>_0001) a line "
                        f"beside {prefix}_shape_names.txt")
    paths, labels, names = [], [], []
    for number, entry in read_lines(listing):
        name = entry.replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".txt")
        class_name = name.rpartition("_")[0]
        if class_name not in label_of:
            raise DataError(f"{listing}: line {number}: {entry!r} is not '<class>_<number>' with a class of "
                            f"{prefix}_shape_names.txt")
        path = root / class_name / f"{name}.txt"
        if not path.is_file():
            raise DataError(f"{listing}: line {number}: lists {entry!r} but {path} does not exist")
        paths.append(path)
        labels.append(label_of[class_name])
        names.append(name)
    if not paths:
        raise DataError(f"{listing}: lists no shapes; expected one shape name (<class>_0001) a line")
    return FileSplit(
        paths=paths,
        labels=np.array(labels, dtype=np.int64),
        class_names=class_names,
        names=names,
        source=f"{root} ({listing.name})",
        layout=f"{LAYOUT}, {prefix} lists",
        read=lambda index, seed: (load_text_table(paths[index], min_columns=3, keep=3), None),
    )
