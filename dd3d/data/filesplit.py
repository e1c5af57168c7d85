"""A split stored one file per shape, listed before any shape is read.

Loaders of such layouts (folder per class, PointNet++ text, ShapeNet-part text) first build a
:class:`FileSplit` — the files, their labels and names — and then read it whole (``load``) or in
chunks (``dd3d prepare``, which converts a split once and can resume after an interruption). Shape
``i`` is resampled from ``(seed, i)``, ``i`` being its position in the whole split, so reading in
chunks gives exactly the clouds of one whole read.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dd3d.data.base import PointCloudSet
from dd3d.data.h5util import resample

# reader(index, seed) -> ((P, 3) coordinates, (P,) part ids or None) of shape ``index``
ShapeReader = Callable[[int, int], tuple[np.ndarray, "np.ndarray | None"]]


@dataclass
class FileSplit:
    """The shape files of one split.

    Attributes:
        paths: one file per shape, in split order.
        labels: (N,) class (or category) index of each shape.
        class_names: name of each label value.
        names: each shape's name (its path relative to the dataset root, or its split-list entry).
        source: the dataset folder and split, for messages.
        layout: the on-disk layout detected, e.g. ``"PointNet++ text (modelnet40_normal_resampled)"``.
        read: reads shape ``index`` with ``seed`` (used by readers that sample, e.g. meshes).
        part_names / category_parts: the part tables of segmentation datasets, else None.
    """

    paths: list[Path]
    labels: np.ndarray
    class_names: list[str]
    names: list[str]
    source: str
    layout: str
    read: ShapeReader
    part_names: list[str] | None = None
    category_parts: dict[int, list[int]] | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, points: int, seed: int, start: int = 0, stop: int | None = None,
             bar: tqdm | None = None) -> PointCloudSet:
        """Shapes ``start..stop`` (default: all), each resampled to ``points`` from ``(seed, i)``.

        ``bar`` is advanced once per shape; without one, a bar is shown on a terminal only.
        """
        stop = len(self) if stop is None else stop
        clouds = np.empty((stop - start, points, 3), dtype=np.float32)
        parts = np.empty((stop - start, points), dtype=np.int64) if self.part_names is not None else None
        with tqdm(total=stop - start, desc=f"reading {self.source}", unit="shape", disable=None, leave=False
                  ) if bar is None else nullcontext(bar) as progress:
            for row, index in enumerate(range(start, stop)):
                xyz, shape_parts = self.read(index, seed)
                choice = resample(len(xyz), points, seed, index)
                clouds[row] = xyz[choice]
                if parts is not None:
                    parts[row] = shape_parts[choice]
                progress.update(1)
        return PointCloudSet(points=clouds, labels=self.labels[start:stop], class_names=list(self.class_names),
                             parts=parts, part_names=self.part_names, category_parts=self.category_parts,
                             source=self.source, layout=self.layout, names=self.names[start:stop])

