"""Datasets: real-data loaders, the built-in ``shapes`` set, and preparation into model inputs."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from dd3d.config import Config
from dd3d.data.base import DatasetSplits, PointCloudSet
from dd3d.data.filesplit import FileSplit
from dd3d.data.prepare import prepare_split
from dd3d.errors import DataError

__all__ = ["DatasetSplits", "FileSplit", "PointCloudSet", "load_dataset", "load_raw_split", "load_train_split",
           "prepare_at", "select_classes", "shape_files"]


def load_raw_split(cfg: Config, split: str) -> PointCloudSet:
    """Load one split of the configured dataset as stored (before preparation)."""
    data = cfg.data
    root = Path(data.root) if data.root is not None else None
    if data.name == "shapes":
        from dd3d.data.shapes import build_shapes

        per_class = data.builtin.train_per_class if split in ("train", "trainval") else data.builtin.test_per_class
        return build_shapes(split, per_class, data.resolution, data.builtin.seed)
    assert root is not None  # guaranteed by config validation
    if data.name == "modelnet40":
        from dd3d.data.modelnet import load_modelnet

        return load_modelnet(root, split, data.resolution, data.rotation_seed, data.lists)
    if data.name == "scanobjectnn":
        from dd3d.data.scanobjectnn import load_scanobjectnn

        return load_scanobjectnn(root, split, data.variant)
    if data.name == "shapenet_part":
        from dd3d.data.shapenet_part import load_shapenet_part

        return load_shapenet_part(root, split, data.resolution, data.rotation_seed)
    from dd3d.data.folder import load_folder

    return load_folder(root, split, data.resolution, data.rotation_seed)


def shape_files(cfg: Config, split: str) -> FileSplit | None:
    """The shape files of a split stored one file per shape (folder, PointNet++ text, ShapeNet-part
    txt), to be read in chunks; None for sources held in a few arrays (HDF5, built-in shapes)."""
    data = cfg.data
    root = Path(data.root) if data.root is not None else None
    if data.name == "modelnet40":
        from dd3d.data.modelnet import modelnet_text_split

        return modelnet_text_split(root, split, data.lists)
    if data.name == "shapenet_part":
        from dd3d.data.shapenet_part import shapenet_text_split

        return shapenet_text_split(root, split)
    if data.name == "folder":
        from dd3d.data.folder import folder_split

        return folder_split(root, split)
    return None


def prepare_at(raw: PointCloudSet, cfg: Config, split: str, points: int) -> PointCloudSet:
    """Prepare a loaded split as configured, but at ``points`` points per cloud."""
    return prepare_split(raw, dataclasses.replace(cfg.data, resolution=points), split)


def largest_classes(train: PointCloudSet, k: int) -> list[str]:
    """Names of the ``k`` classes with most training clouds (e.g. MVPNet100), in label order."""
    counts = np.bincount(train.labels, minlength=train.num_classes)
    return [train.class_names[i] for i in sorted(np.argsort(-counts, kind="stable")[:k].tolist())]


def select_classes(split: PointCloudSet, names: list[str]) -> PointCloudSet:
    """The clouds of the classes ``names``, relabelled 0..len(names)-1 in that order."""
    if names == split.class_names:
        return split
    missing = [n for n in names if n not in split.class_names]
    if missing:
        raise DataError(f"{split.source}: classes {', '.join(missing)} not in this dataset")
    remap = np.full(split.num_classes, -1, dtype=np.int64)
    remap[[split.class_names.index(n) for n in names]] = np.arange(len(names))
    sub = split.subset(np.flatnonzero(remap[split.labels] >= 0))
    category_parts = None if split.category_parts is None else \
        {i: split.category_parts[split.class_names.index(n)] for i, n in enumerate(names)}
    return PointCloudSet(points=sub.points, labels=remap[sub.labels], class_names=list(names), parts=sub.parts,
                         part_names=sub.part_names, category_parts=category_parts, source=sub.source,
                         layout=sub.layout, names=sub.names)


def load_train_split(cfg: Config) -> PointCloudSet:
    """The raw training split, limited to ``data.max_classes`` classes when set."""
    train = load_raw_split(cfg, cfg.data.train_split)
    if cfg.task == "segmentation" and train.parts is None:
        raise DataError(f"{train.source}: task 'segmentation' needs per-point part labels, this dataset has none")
    if cfg.data.max_classes is not None and cfg.data.max_classes < train.num_classes:
        train = select_classes(train, largest_classes(train, cfg.data.max_classes))
    return train


def load_dataset(cfg: Config) -> DatasetSplits:
    """Load and prepare the train and test splits named by ``cfg.data``."""
    train = load_train_split(cfg)
    test = select_classes(load_raw_split(cfg, cfg.data.test_split), train.class_names)
    return DatasetSplits(
        train=prepare_split(train, cfg.data, cfg.data.train_split),
        test=prepare_split(test, cfg.data, cfg.data.test_split),
    )
