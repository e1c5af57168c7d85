"""The in-memory container every loader returns and every consumer reads."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dd3d.errors import DataError


@dataclass
class PointCloudSet:
    """A split of a point-cloud dataset held as dense arrays.

    Attributes:
        points: (N, P, 3) float32 coordinates.
        labels: (N,) int64 shape-class (classification) or category (segmentation) index.
        class_names: name of each label value, ``class_names[labels[i]]``.
        parts: (N, P) int64 *global* part id per point (segmentation datasets only), else None.
        part_names: for segmentation, ``part_names[global_id]`` (may be generic like ``"Airplane_0"``).
        category_parts: for segmentation, category index -> sorted list of its global part ids.
        source: where the data came from (file or folder), for messages.
        layout: the on-disk layout the loader detected (e.g. ``"ModelNet40 HDF5"``), for ``dd3d data``.
        names: each cloud's name in its source (file name or h5 ``name``), when known.
    """

    points: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    parts: np.ndarray | None = None
    part_names: list[str] | None = None
    category_parts: dict[int, list[int]] | None = None
    source: str = ""
    layout: str = ""
    names: list[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.points = np.ascontiguousarray(self.points, dtype=np.float32)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if self.points.ndim != 3 or self.points.shape[2] != 3:
            raise DataError(f"{self.source}: points must have shape (N, P, 3), got {self.points.shape}")
        if len(self.labels) != len(self.points):
            raise DataError(
                f"{self.source}: {len(self.points)} clouds but {len(self.labels)} labels"
            )
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise DataError(
                f"{self.source}: label values must be in 0..{len(self.class_names) - 1}, "
                f"found {int(self.labels.min())}..{int(self.labels.max())}"
            )
        if not np.isfinite(self.points).all():
            bad = int(np.flatnonzero(~np.isfinite(self.points).all(axis=(1, 2)))[0])
            raise DataError(f"{self.source}: cloud {bad} has NaN or Inf coordinates")
        if self.parts is not None:
            self.parts = np.asarray(self.parts, dtype=np.int64)
            if self.parts.shape != self.points.shape[:2]:
                raise DataError(
                    f"{self.source}: part labels have shape {self.parts.shape}, "
                    f"expected {self.points.shape[:2]}"
                )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def is_segmentation(self) -> bool:
        return self.parts is not None

    @property
    def num_parts(self) -> int:
        """Number of global part ids (segmentation only)."""
        return len(self.part_names) if self.part_names is not None else 0

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> list[int]:
        """Number of clouds per class."""
        return np.bincount(self.labels, minlength=self.num_classes).tolist()

    def subset(self, index: np.ndarray) -> "PointCloudSet":
        """A new set holding the clouds at ``index`` (same class/part tables)."""
        index = np.asarray(index, dtype=np.int64)
        return PointCloudSet(
            points=self.points[index],
            labels=self.labels[index],
            class_names=self.class_names,
            parts=None if self.parts is None else self.parts[index],
            part_names=self.part_names,
            category_parts=self.category_parts,
            source=self.source,
            layout=self.layout,
            names=None if self.names is None else [self.names[i] for i in index],
        )

    def with_points(self, points: np.ndarray, parts: np.ndarray | None = None) -> "PointCloudSet":
        """The same clouds with new coordinates (and part labels, when resampled)."""
        return PointCloudSet(
            points=points,
            labels=self.labels,
            class_names=self.class_names,
            parts=self.parts if parts is None else parts,
            part_names=self.part_names,
            category_parts=self.category_parts,
            source=self.source,
            layout=self.layout,
            names=self.names,
        )


@dataclass
class DatasetSplits:
    """The train and test splits of one dataset."""

    train: PointCloudSet
    test: PointCloudSet
