"""The lab's loss curves as an RGB image, drawn with numpy.

Not matplotlib: on the 2-core CPU machines the lab targets, one matplotlib figure of the curves
took 0.3-0.6 s of CPU (loaded machine), competing with the window and training every refresh; this
rasteriser draws the same polylines in about a millisecond. The y axis spans 0 (or the lowest loss)
to the highest loss, the x axis iterations 1 to the latest; each method's last value goes into the
panel's title label (:func:`loss_caption`).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from viewer.palette import METHOD_COLOR_NAMES, METHOD_COLORS, to_uint8

SIZE = (480, 300)  # px (width, height)
MARGIN = 10  # px around the plotting area
GRID_LINES = 5  # horizontal grid lines, including the axes
GRID_GREY = 225
AXIS_GREY = 150
LINE_WIDTH = 2  # px


def _scale(values: np.ndarray, low: float, high: float, pixels: int) -> np.ndarray:
    span = high - low if high > low else 1.0
    return (values - low) / span * (pixels - 1)


def _segments(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates covering the polyline through (x, y), one sample per pixel step."""
    if len(x) == 1:
        return np.round(x).astype(np.int64), np.round(y).astype(np.int64)
    dx, dy = np.diff(x), np.diff(y)
    steps = np.maximum(np.ceil(np.maximum(np.abs(dx), np.abs(dy))).astype(np.int64), 1)
    segment = np.repeat(np.arange(len(steps)), steps + 1)
    first = np.concatenate(([0], np.cumsum(steps + 1)[:-1]))
    t = (np.arange(len(segment)) - np.repeat(first, steps + 1)) / np.repeat(steps, steps + 1)
    return (np.round(x[segment] + t * dx[segment]).astype(np.int64),
            np.round(y[segment] + t * dy[segment]).astype(np.int64))


def loss_ranges(curves: Sequence[np.ndarray]) -> tuple[int, float, float]:
    """(last iteration, lowest, highest finite loss) over all curves; the y axis starts at 0 when
    every loss is positive."""
    values = np.concatenate([np.asarray(c, dtype=np.float64)[np.isfinite(c)] for c in curves] + [np.zeros(1)])
    return max((len(c) for c in curves), default=0), float(values.min()), float(values.max())


def loss_image(curves: Sequence[tuple[np.ndarray, tuple[float, ...]]], size: tuple[int, int] = SIZE) -> np.ndarray:
    """Curves (losses per iteration, RGB colour in [0, 1]) on a white (H, W, 3) uint8 image with a
    light grid; x spans iterations 1..longest curve, y spans :func:`loss_ranges`."""
    width, height = size
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    inner_w, inner_h = width - 2 * MARGIN, height - 2 * MARGIN
    for k in range(GRID_LINES):
        row = MARGIN + round(k * (inner_h - 1) / (GRID_LINES - 1))
        image[row, MARGIN:MARGIN + inner_w] = AXIS_GREY if k == GRID_LINES - 1 else GRID_GREY
    image[MARGIN:MARGIN + inner_h, MARGIN] = AXIS_GREY
    last, low, high = loss_ranges([c for c, _ in curves])
    for losses, color in curves:
        ok = np.isfinite(losses)
        if not ok.any():
            continue
        x = _scale(np.flatnonzero(ok).astype(np.float64), 0.0, max(last - 1, 1), inner_w)
        y = (inner_h - 1) - _scale(losses[ok].astype(np.float64), low, high, inner_h)
        px, py = _segments(x, y)
        for ox in range(LINE_WIDTH):
            for oy in range(LINE_WIDTH):
                cols = np.clip(px + ox, 0, inner_w - 1) + MARGIN
                rows = np.clip(py + oy, 0, inner_h - 1) + MARGIN
                image[rows, cols] = to_uint8(color)
    return image


def loss_caption(names: Sequence[str], curves: Sequence[np.ndarray]) -> str:
    """The title over the image: each curve's colour, method and last value, e.g.
    ``Loss · orange GM 0.412 · green DD3D 0.0931`` (short enough for a third of the window)."""
    parts = [f"{METHOD_COLOR_NAMES.get(n, 'grey')} {n.upper()} {c[-1]:.3g}" for n, c in zip(names, curves) if len(c)]
    return " · ".join(["Loss", *parts]) if parts else "Matching loss"


def method_curves(methods: Sequence[tuple[str, np.ndarray]]) -> list[tuple[np.ndarray, tuple[float, ...]]]:
    """(losses, colour) of each method in its :data:`~viewer.palette.METHOD_COLORS` colour."""
    return [(losses, METHOD_COLORS.get(name, (0.3, 0.3, 0.3))) for name, losses in methods]
