"""The part palette shared by PLY exports (``dd3d generate``), the lab and the figure renders.

A fixed table, so the same part has the same colour in every file, panel and figure: the k-th part
of a category gets ``PART_COLORS[k]``. RGB floats in [0, 1].
"""
from __future__ import annotations

import numpy as np

#: part colours by the part's position within its class (ShapeNet-part classes have at most 6 parts)
PART_COLORS = np.array([
    [0.894, 0.102, 0.110],  # red
    [0.216, 0.494, 0.722],  # blue
    [0.302, 0.686, 0.290],  # green
    [0.596, 0.306, 0.639],  # purple
    [1.000, 0.498, 0.000],  # orange
    [0.651, 0.337, 0.157],  # brown
    [0.969, 0.506, 0.749],  # pink
    [0.400, 0.400, 0.400],  # grey
], dtype=np.float32)


def part_colors(parts: np.ndarray, class_parts: tuple[int, ...] | list[int]) -> np.ndarray:
    """(N, 3) colours of global part ids: the k-th part of the class gets ``PART_COLORS[k]``.

    Ids outside ``class_parts`` (or every id when it is empty) are coloured by their own value.
    """
    parts = np.asarray(parts, dtype=np.int64)
    ids = np.asarray(class_parts, dtype=np.int64)
    table = np.arange(max(int(parts.max(initial=0)), int(ids.max(initial=0))) + 1)
    table[ids] = np.arange(len(ids))
    return PART_COLORS[table[parts] % len(PART_COLORS)]
