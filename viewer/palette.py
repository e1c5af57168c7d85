"""Colours shared by the lab and the publication renders: part palette and method colours
(:mod:`dd3d.palette`, also used by PLY exports and the plots of :mod:`dd3d.plots`), height map.

Everything is a fixed table so that the same part or height has the same colour in every panel,
every screenshot and every figure. Colours are RGB floats in [0, 1].
"""
from __future__ import annotations

import numpy as np

from dd3d.palette import METHOD_COLORS, PART_COLORS, part_colors  # noqa: F401 - METHOD_COLORS re-exported

#: height colour map: stops from the lowest (y = -1) to the highest (y = +1) point of the unit sphere
HEIGHT_STOPS = np.array([
    [0.267, 0.005, 0.329],
    [0.231, 0.322, 0.545],
    [0.129, 0.569, 0.549],
    [0.369, 0.788, 0.384],
    [0.992, 0.906, 0.145],
], dtype=np.float32)
UP_AXIS = 1  # clouds are coloured in the view frame (viewer.upright): y up


def height_colors(points: np.ndarray) -> np.ndarray:
    """(N, 3) colours from each point's height (y) on a fixed scale (unit-sphere clouds span -1…1)."""
    t = np.clip((np.asarray(points, dtype=np.float32)[:, UP_AXIS] + 1.0) / 2.0, 0.0, 1.0)
    position = t * (len(HEIGHT_STOPS) - 1)
    low = np.minimum(position.astype(np.int64), len(HEIGHT_STOPS) - 2)
    frac = (position - low)[:, None]
    return ((1 - frac) * HEIGHT_STOPS[low] + frac * HEIGHT_STOPS[low + 1]).astype(np.float32)


def cloud_colors(points: np.ndarray, parts: np.ndarray | None = None,
                 class_parts: tuple[int, ...] | list[int] = ()) -> np.ndarray:
    """Part colours when part labels are given, else height colours."""
    return height_colors(points) if parts is None else part_colors(parts, class_parts)


def legend(part_names: tuple[str, ...] | list[str], class_parts: tuple[int, ...] | list[int]) -> list[tuple[str, tuple[float, ...]]]:
    """(short name, colour) of each part of a class, e.g. ("seat", (0.89, 0.10, 0.11))."""
    return [(part_names[p].split("/")[-1], tuple(float(v) for v in PART_COLORS[k % len(PART_COLORS)]))
            for k, p in enumerate(class_parts)]


def to_uint8(color: tuple[float, ...] | np.ndarray) -> np.ndarray:
    """RGB floats in [0, 1] -> the uint8 values an exact (post-processing off) render produces."""
    return np.round(np.asarray(color, dtype=np.float64) * 255).astype(np.uint8)
