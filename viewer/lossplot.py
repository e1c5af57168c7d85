"""The lab's loss panel: matching loss against iteration with axis values, a legend and a log scale
where the curves span orders of magnitude, drawn by matplotlib's Agg into an RGB array.

It has the look of every other figure: the axes come from :func:`dd3d.plots.draw_loss_curves`, which
also draws the loss column of Save render and ``dd3d plot``'s Fig. 3. To stay cheap per frame on
the lab's 2-core CPU machines, :class:`LossPlot` keeps one figure and draws all of it (0.1-0.4 s on
a loaded 2-core machine) only when the axes change: other methods, linear/log scale, or limits,
which snap to round numbers (:func:`axis_limits`) and so change a few times per run. Otherwise it
restores the cached axes (with the legend, which sits above them) and draws just the lines
(blitting, 1-3 ms).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.ticker import LogLocator, MaxNLocator

from dd3d.plots import Curve, draw_loss_curves, figure_style, log_scale, method_curves, new_figure

__all__ = ["LossPlot", "axis_limits", "loss_caption", "method_curves", "nice_ceiling"]

SIZE = (480, 320)  # px (width, height)
DPI = 100
MARGINS = {"left": 0.17, "right": 0.97, "bottom": 0.15, "top": 0.89}  # fixed: text never moves the axes


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 × 10^k that is >= ``value`` (> 0)."""
    decade = 10.0 ** np.floor(np.log10(value))
    return float(next(m * decade for m in (1, 2, 5, 10) if m * decade >= value))


def axis_limits(curves: Sequence[np.ndarray], log: bool) -> tuple[tuple[float, float], tuple[float, float]]:
    """((1, last iteration rounded up to 1, 2 or 5 × 10^k), (low, high) of the finite losses widened to
    tick steps, or to whole decades on a log axis)."""
    values = np.concatenate([np.asarray(c, dtype=np.float64) for c in curves] + [np.empty(0)])
    values = values[np.isfinite(values)]
    x = (1.0, nice_ceiling(max([len(c) for c in curves] + [2])))
    if not len(values):
        return x, (0.0, 1.0)
    low, high = float(values.min()), float(values.max())
    if log:
        return x, (10.0 ** np.floor(np.log10(low)), 10.0 ** np.ceil(np.log10(high)))
    if high == low:
        low, high = low - 0.5 * (abs(low) or 1.0), high + 0.5 * (abs(high) or 1.0)
    ticks = MaxNLocator(nbins=5).tick_values(low, high)
    return x, (float(ticks[0]), float(ticks[-1]))


class LossPlot:
    """One reusable loss panel of ``size`` pixels (use it from one thread)."""

    def __init__(self, size: tuple[int, int] = SIZE) -> None:
        with figure_style():
            self.figure = new_figure(size[0] / DPI, size[1] / DPI, dpi=DPI)
            self.figure.subplots_adjust(**MARGINS)
            self.ax = self.figure.add_subplot()
        self._key: tuple | None = None
        self._background = None
        self._lines: list = []
        self.full_redraws = 0  # how often the axes were drawn from scratch (the rest were blitted)

    def image(self, curves: Sequence[Curve]) -> np.ndarray:
        """The panel showing ``curves`` as an (H, W, 3) uint8 array."""
        losses = [np.asarray(c[1], dtype=np.float64) for c in curves]
        log = log_scale(losses)
        limits = axis_limits(losses, log)
        key = (tuple((label, color) for label, _, color in curves), log, limits)
        canvas = self.figure.canvas
        with figure_style():
            if key != self._key:
                self._draw_axes(curves, log, limits)
                self._key = key
            canvas.restore_region(self._background)
            for line, values in zip(self._lines, losses):
                line.set_data(np.arange(1, len(values) + 1), values)
                self.ax.draw_artist(line)
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()

    def _draw_axes(self, curves: Sequence[Curve], log: bool, limits: tuple) -> None:
        """Draw the axes, ticks, labels and legend without the lines and keep them as the background."""
        self.ax.cla()
        self._lines = draw_loss_curves(self.ax, [(label, np.empty(0), color) for label, _, color in curves])
        self.ax.set_yscale("log" if log else "linear")
        if log:
            self.ax.yaxis.set_major_locator(LogLocator(numticks=6))
        (x0, x1), (y0, y1) = limits
        self.ax.set_xlim(x0, x1)
        self.ax.set_ylim(y0, y1)
        for line in self._lines:
            line.set_animated(True)  # drawn by blitting only
        self.figure.canvas.draw()
        self._background = self.figure.canvas.copy_from_bbox(self.figure.bbox)
        self.full_redraws += 1


def loss_caption(names: Sequence[str], curves: Sequence[np.ndarray]) -> str:
    """The title over the panel: each method's last loss, e.g. ``Matching loss · GM 0.412 · DD3D 0.0931``."""
    parts = [f"{n.upper()} {c[-1]:.3g}" for n, c in zip(names, curves) if len(c)]
    return " · ".join(["Matching loss", *parts])
