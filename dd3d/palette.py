"""Every colour of dd3d-lab: part palette (PLY exports of ``dd3d generate``, the lab, the renders),
height map (the lab and the renders), method colours and fonts (plots, the loss panel, render labels).

Fixed tables, so the same part, height or method has the same colour in every file, panel and
figure: the k-th part of a category gets ``PART_COLORS[k]``. RGB floats in [0, 1].
"""
from __future__ import annotations

import re

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


#: height colour map: stops from the lowest (y = -1) to the highest (y = +1) point of the unit sphere
HEIGHT_STOPS = np.array([
    [0.267, 0.005, 0.329],
    [0.231, 0.322, 0.545],
    [0.129, 0.569, 0.549],
    [0.369, 0.788, 0.384],
    [0.992, 0.906, 0.145],
], dtype=np.float32)
UP_AXIS = 1  # clouds are coloured after being stood upright for the screen (the view frame): y up


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


# ------------------------------------------------------------------- figures (plots, renders, lab)

#: line colour of each method in every plot, loss curve and label (ColorBrewer Dark2 plus a blue;
#: gm and dd3d keep the lab's original orange and green)
METHOD_COLORS = {
    "dd3d": (0.106, 0.620, 0.467),
    "gm": (0.851, 0.373, 0.008),
    "dm": (0.459, 0.439, 0.702),
    "tm": (0.906, 0.161, 0.541),
    "sadm": (0.400, 0.651, 0.118),
    "pcc": (0.902, 0.671, 0.008),
    "random": (0.400, 0.400, 0.400),
    "herding": (0.651, 0.463, 0.114),
    "kcenter": (0.122, 0.471, 0.706),
    # starts from the herding clouds (dd3d.plots.method_label): darker shades of the method's colour
    "dd3d-warm": (0.039, 0.361, 0.271),
    "dd3d-warm-sheet": (0.400, 0.761, 0.647),  # 2-D noise per point (distill.generator.noise_dim 2): lighter
    "gm-herding": (0.553, 0.243, 0.004),
    # stratified noise per cloud (distill.generator.noise): the teal between dd3d's green and kcenter's blue
    "dd3d-stratified": (0.090, 0.545, 0.588),
    "dd3d-warm-stratified": (0.035, 0.318, 0.345),
}
OTHER_COLOR = (0.3, 0.3, 0.3)  # a method missing from METHOD_COLORS
#: the marks of a rate of its own at the end of a label (:func:`dd3d.plots.method_label`)
RATE_MARK = re.compile(r"-(step\d+|lr[0-9.e+-]+|constant-lr)$")
#: matplotlib colour map of heat maps: the map the renders' height colours sample (viridis)
SEQUENTIAL_MAP = "viridis"
#: matplotlib settings of every figure: plots, the lab's loss panel and the labels of rendered grids
#: (``pdf.fonttype`` 42 embeds TrueType fonts, so PDF text stays editable)
FIGURE_RC = {
    "font.family": "DejaVu Sans", "font.size": 10.0, "axes.titlesize": 11.0, "axes.labelsize": 10.0,
    "xtick.labelsize": 9.0, "ytick.labelsize": 9.0, "legend.fontsize": 9.0, "axes.linewidth": 0.8,
    "lines.linewidth": 1.6, "axes.grid": True, "grid.color": "0.88", "grid.linewidth": 0.6,
    "axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False, "pdf.fonttype": 42,
    "savefig.facecolor": "white", "figure.facecolor": "white",
}


def method_color(name: str) -> tuple[float, float, float]:
    """The colour of method ``name`` (case-insensitive) in :data:`METHOD_COLORS`; a name marked with a
    rate of its own (``-step<N>``, ``-lr<rate>``, ``-constant-lr``: :data:`RATE_MARK`, :func:`dd3d.plots.method_label`)
    gets its unmarked name's colour mixed 40 % with white."""
    key = name.lower()
    base = key
    while base not in METHOD_COLORS and (shorter := RATE_MARK.sub("", base)) != base:
        base = shorter
    if base == key or base not in METHOD_COLORS:
        return METHOD_COLORS.get(key, OTHER_COLOR)
    return tuple(0.6 * c + 0.4 for c in METHOD_COLORS[base])  # type: ignore[return-value]
