"""ShapeNet-part segmentation (16 categories, 50 global part ids), HDF5 or txt release.

HDF5 layout: ``hdf5_data/ply_data_{train,val,test}*.h5`` with ``data`` (N, 2048, 3) float,
``label`` (N, 1) category 0..15 and ``pid`` (N, 2048) global part id 0..49; ``root`` may be the
``hdf5_data`` folder or its parent. Clouds keep their native size.

txt layout (``shapenetcore_partanno_segmentation_benchmark_v0_normal``, ``root`` may be that folder
or its parent): ``synsetoffset2category.txt`` (name and synset a line), ``<synset>/<token>.txt``
with rows ``x y z nx ny nz part`` and ``train_test_split/shuffled_{train,val,test}_file_list.json``
listing ``shape_data/<synset>/<token>``. Point counts vary, so every shape is resampled to
``points``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from dd3d.data.base import PointCloudSet
from dd3d.data.filesplit import FileSplit
from dd3d.data.h5util import (
    Key,
    check_choice,
    files_source,
    line_of_row,
    load_text_table,
    missing_root,
    read_h5_files,
    read_lines,
)
from dd3d.errors import DataError


class Category(NamedTuple):
    """One ShapeNet-part category and its contiguous range of global part ids."""

    name: str
    synset: str
    first_part: int
    last_part: int


CATEGORIES = (
    Category("Airplane", "02691156", 0, 3),
    Category("Bag", "02773838", 4, 5),
    Category("Cap", "02954340", 6, 7),
    Category("Car", "02958343", 8, 11),
    Category("Chair", "03001627", 12, 15),
    Category("Earphone", "03261776", 16, 18),
    Category("Guitar", "03467517", 19, 21),
    Category("Knife", "03624134", 22, 23),
    Category("Lamp", "03636649", 24, 27),
    Category("Laptop", "03642806", 28, 29),
    Category("Motorbike", "03790512", 30, 35),
    Category("Mug", "03797390", 36, 37),
    Category("Pistol", "03948459", 38, 40),
    Category("Rocket", "04099429", 41, 43),
    Category("Skateboard", "04225987", 44, 46),
    Category("Table", "04379243", 47, 49),
)
CATEGORY_NAMES = [category.name for category in CATEGORIES]
CATEGORY_PARTS = {
    index: list(range(category.first_part, category.last_part + 1))
    for index, category in enumerate(CATEGORIES)
}
PART_NAMES = [
    f"{CATEGORIES[index].name}_{k}"
    for index, parts in CATEGORY_PARTS.items()
    for k in range(len(parts))
]
SYNSET_TO_CATEGORY = {category.synset: index for index, category in enumerate(CATEGORIES)}
_FIRST_PART = np.array([category.first_part for category in CATEGORIES])
_LAST_PART = np.array([category.last_part for category in CATEGORIES])

SPLITS = ("train", "val", "test", "trainval")
_SPLIT_PARTS = {
    "train": ("train",), "val": ("val",), "test": ("test",), "trainval": ("train", "val"),
}
TXT_FOLDER = "shapenetcore_partanno_segmentation_benchmark_v0_normal"
H5_LAYOUT = "ShapeNet-part HDF5 (hdf5_data)"
TXT_LAYOUT = f"ShapeNet-part txt ({TXT_FOLDER})"
LAYOUT = f"{H5_LAYOUT} or txt ({TXT_FOLDER})"
KEY_FILES = (
    "hdf5_data/ply_data_{train,val,test}*.h5, or synsetoffset2category.txt, <synset>/<token>.txt "
    "and train_test_split/shuffled_{train,val,test}_file_list.json"
)
KEYS = (
    Key("data", "f", (("N", "P", 3),)),
    Key("label", "iu", (("N", 1), ("N",))),
    Key("pid", "iu", (("N", "P"),)),
)


def load_shapenet_part(root: Path, split: str, points: int, seed: int) -> PointCloudSet:
    """Load a split (train|val|test|trainval), detecting the HDF5 or txt layout.

    ``points``/``seed`` resample the variable-size txt shapes (shape ``i`` from ``(seed, i)``);
    HDF5 clouds keep their native size.
    """
    found = _find_layout(Path(root), split)
    return _load_h5(found, split) if isinstance(found, Path) else found.load(points, seed)


def shapenet_text_split(root: Path, split: str) -> FileSplit | None:
    """The shape files of ``split`` when ``root`` is in the txt layout; None for the HDF5 layout."""
    found = _find_layout(Path(root), split)
    return None if isinstance(found, Path) else found


def _find_layout(root: Path, split: str) -> Path | FileSplit:
    """The HDF5 folder, or the txt layout's shape files of ``split``."""
    check_choice("split", split, SPLITS)
    if not root.is_dir():
        raise missing_root(root, LAYOUT, KEY_FILES)
    for folder in (root / "hdf5_data", root):
        if any(folder.glob("ply_data_*.h5")):
            return folder
    for folder in (root, root / TXT_FOLDER):
        if (folder / "synsetoffset2category.txt").is_file():
            return _txt_split(folder, split)
    raise missing_root(
        root, LAYOUT, KEY_FILES,
        "neither hdf5_data/ply_data_*.h5 nor synsetoffset2category.txt found",
    )


def _bad_parts(parts: np.ndarray, category: np.ndarray | int) -> np.ndarray:
    """True where a part id does not belong to its shape's category (or is not 0..49)."""
    first = _FIRST_PART[category]
    last = _LAST_PART[category]
    if np.ndim(first):
        first, last = first[:, None], last[:, None]
    return (parts < first) | (parts > last) | (parts != np.round(parts))


def _part_problem(value: float, category: int) -> str:
    info = CATEGORIES[category]
    return (
        f"part id {value:g} is not a part of {info.name} (its global ids are "
        f"{info.first_part}..{info.last_part}; all ids are 0..49)"
    )


def _load_h5(folder: Path, split: str) -> PointCloudSet:
    files = []
    for part in _SPLIT_PARTS[split]:
        found = sorted(folder.glob(f"ply_data_{part}*.h5"))
        if not found:
            raise missing_root(folder, LAYOUT, KEY_FILES, f"no ply_data_{part}*.h5 files")
        files += found
    arrays = read_h5_files(files, KEYS, check=_check_h5)
    return PointCloudSet(points=arrays["data"], labels=arrays["label"].reshape(-1), class_names=list(CATEGORY_NAMES),
                         parts=arrays["pid"], part_names=list(PART_NAMES), category_parts=_category_parts(),
                         source=files_source(files), layout=H5_LAYOUT)


def _category_parts() -> dict[int, list[int]]:
    return {index: list(ids) for index, ids in CATEGORY_PARTS.items()}


def _check_h5(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Categories must be 0..15 and every part id must belong to its shape's category."""
    labels = arrays["label"].reshape(-1).astype(np.int64)
    bad_label = (labels < 0) | (labels >= len(CATEGORIES))
    if bad_label.any():
        shape = int(np.argmax(bad_label))
        raise DataError(
            f"{path}: shape {shape}: category label {labels[shape]} "
            f"outside 0..{len(CATEGORIES) - 1}"
        )
    bad = _bad_parts(arrays["pid"], labels)
    if bad.any():
        shape, point = (int(i) for i in np.argwhere(bad)[0])
        problem = _part_problem(float(arrays["pid"][shape, point]), int(labels[shape]))
        raise DataError(f"{path}: shape {shape}, point {point}: {problem}")


def _txt_split(folder: Path, split: str) -> FileSplit:
    """The shape files of a txt-layout split, in split-list order."""
    synsets = _read_synsets(folder / "synsetoffset2category.txt")
    paths, labels, names = [], [], []
    for part in _SPLIT_PARTS[split]:
        for listing, entry in _split_list(folder, part):
            synset, token = _shape_of(listing, entry, synsets)
            path = folder / synset / f"{token}.txt"
            if not path.is_file():
                raise DataError(f"{listing}: entry {entry!r}: {path} not found")
            paths.append(path)
            labels.append(SYNSET_TO_CATEGORY[synset])
            names.append(f"{synset}/{token}")
    return FileSplit(
        paths=paths,
        labels=np.array(labels, dtype=np.int64),
        class_names=list(CATEGORY_NAMES),
        names=names,
        source=f"{folder} ({split})",
        layout=TXT_LAYOUT,
        read=lambda index, seed: _read_txt_shape(paths[index], labels[index]),
        part_names=list(PART_NAMES),
        category_parts=_category_parts(),
    )


def _read_txt_shape(path: Path, category: int) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates and global part ids of one ``x y z nx ny nz part`` file of ``category``."""
    table = load_text_table(path, columns=7)
    bad = _bad_parts(table[:, 6], category)
    if bad.any():
        row = int(np.argmax(bad))
        problem = _part_problem(float(table[row, 6]), category)
        raise DataError(f"{path}: line {line_of_row(path, row)}: {problem}")
    return table[:, :3], table[:, 6].astype(np.int64)


def _read_synsets(path: Path) -> set[str]:
    """The synsets listed in ``synsetoffset2category.txt`` (each must be a known category)."""
    synsets = set()
    for number, line in read_lines(path):
        fields = line.split()
        if len(fields) < 2 or fields[-1] not in SYNSET_TO_CATEGORY:
            raise DataError(
                f"{path}: line {number}: expected '<Name> <synset>' with one of the 16 "
                f"ShapeNet-part synsets, got {line!r}"
            )
        synsets.add(fields[-1])
    return synsets


def _split_list(folder: Path, part: str) -> list[tuple[Path, str]]:
    """The entries of ``train_test_split/shuffled_<part>_file_list.json``, with the file."""
    listing = folder / "train_test_split" / f"shuffled_{part}_file_list.json"
    if not listing.is_file():
        raise missing_root(folder, LAYOUT, KEY_FILES, f"{listing.name} not found")
    try:
        entries = json.loads(listing.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{listing}: not a readable JSON file ({exc})") from exc
    if not isinstance(entries, list) or not entries or not all(isinstance(e, str) for e in entries):
        raise DataError(
            f"{listing}: expected a non-empty JSON list of 'shape_data/<synset>/<token>' strings"
        )
    return [(listing, entry) for entry in entries]


def _shape_of(listing: Path, entry: str, synsets: set[str]) -> tuple[str, str]:
    """(synset, token) of a split-list entry ``shape_data/<synset>/<token>``."""
    fields = entry.replace("\\", "/").strip("/").split("/")
    if len(fields) < 2 or fields[-2] not in synsets:
        raise DataError(
            f"{listing}: entry {entry!r}: expected 'shape_data/<synset>/<token>' with a synset "
            "listed in synsetoffset2category.txt"
        )
    return fields[-2], fields[-1]
