"""Figures of point clouds: ``dd3d-render`` of run folders, and the lab's "Save render" of its panels.

:func:`render_runs` draws a Figure-4-style grid (rows: classes; columns: Real, then one column per
run folder), every cloud turned so that the dataset's up axis (``data.up_axis`` of the run's config)
points up (:mod:`viewer.upright`), with the camera, material and white background of
:mod:`viewer.scene` in Open3D's ``OffscreenRenderer`` — no display needed — and lays it out with
matplotlib (PNG, or PDF with vector labels). The lab's "Save render" hands its panels to
:func:`render_in_subprocess`, which runs the same offscreen path in a child process
(``python -m viewer.render --panels FILE``): rendering offscreen inside the GUI process is one of the
Open3D traps (docs/open3d.md), and the window stays responsive. Its grid ends with the lab's loss
panel, drawn by :func:`dd3d.plots.draw_loss_curves` as in the lab. Labels use the figures' fonts
(:data:`dd3d.palette.FIGURE_RC`).

The command line (:func:`main`) is the ``dd3d-render`` entry point of the viewer package (or
``python -m viewer.render``): figures need Open3D's renderer, and the engine (``dd3d``) never imports
the viewer. Bad input ends with one line ``dd3d-render: error: ...`` and exit status 2.

Importing this module loads ``open3d.visualization.rendering`` but never the ``gui`` module.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from dd3d.cli import ArgumentParser
from dd3d.config import Config, load_config, resolve_up_axis
from dd3d.engine.profile import DEFAULT_RESOLUTION
from dd3d.errors import DD3DError
from dd3d.plots import Curve, draw_loss_curves, figure_style, method_curves, new_figure
from dd3d.palette import cloud_colors, legend
from viewer.scene import TILE, DrawFn, default_point_size, offscreen
from viewer.upright import upright

# ---------------------------------------------------------------------------------------- grid


@dataclass
class GridCell:
    """One tile of a grid: the cloud and its colours (None draws an empty white tile)."""

    points: np.ndarray | None
    colors: np.ndarray | None = None


LABEL_WIDTH, HEADER_HEIGHT = 150, 36  # px reserved for row and column labels


def grid_size(rows: int, columns: int, tile: int = TILE) -> tuple[int, int]:
    """(width, height) in pixels of a PNG grid written by :func:`compose` (count a loss column too)."""
    return LABEL_WIDTH + columns * tile, HEADER_HEIGHT + rows * tile


#: where the loss axes sit inside their tile (fractions of the tile: room for the tick labels)
LOSS_INSET = (0.24, 0.16, 0.72, 0.70)  # left, bottom, width, height (the legend goes above)
LOSS_FULL_TEXT_TILE = 280  # px: tiles at least this large get the loss axes' text at full size


def compose(images: Sequence[Sequence[np.ndarray]], row_labels: Sequence[str], column_labels: Sequence[str],
            out: Path, legends: Sequence[list[tuple[str, tuple[float, ...]]]] | None = None,
            loss: Sequence[Curve] | None = None) -> Path:
    """Lay rendered tiles out with labels (and ``loss`` curves in a last column, beside the first row)
    and write ``out`` (.png exact size, or .pdf) atomically."""
    from dd3d.io import atomic_path

    suffix = out.suffix.lower()
    if suffix not in (".png", ".pdf"):
        raise DD3DError(f"--out {out}: unknown file type {out.suffix!r} (expected .png or .pdf)")
    tile = images[0][0].shape[0]
    columns = [*column_labels, *(["Loss"] if loss else [])]
    width, height = grid_size(len(images), len(columns), tile)
    dpi = 100
    with figure_style():
        fig = new_figure(width / dpi, height / dpi, dpi=dpi)
        for j, label in enumerate(columns):
            fig.text((LABEL_WIDTH + (j + 0.5) * tile) / width, 1 - HEADER_HEIGHT / 2 / height, label,
                     ha="center", va="center", fontsize="x-large")
        for i, row in enumerate(images):
            top = HEADER_HEIGHT + i * tile
            fig.text(10 / width, 1 - (top + tile / 2) / height, row_labels[i], ha="left", va="center",
                     fontsize="large")
            for k, (name, color) in enumerate((legends or [[]] * len(images))[i]):
                fig.text(10 / width, 1 - (top + tile / 2 + 24 + 16 * k) / height, name, color=color,
                         ha="left", va="center", fontsize="medium")
            for j, image in enumerate(row):
                ax = fig.add_axes(((LABEL_WIDTH + j * tile) / width, 1 - (top + tile) / height, tile / width,
                                   tile / height))
                ax.imshow(image, interpolation="nearest")
                ax.set_axis_off()
        if loss:
            left, bottom, w, h = LOSS_INSET
            x0 = LABEL_WIDTH + len(column_labels) * tile
            with figure_style(min(1.0, tile / LOSS_FULL_TEXT_TILE)):  # smaller text in small tiles
                draw_loss_curves(fig.add_axes(((x0 + left * tile) / width,
                                               1 - (HEADER_HEIGHT + (1 - bottom) * tile) / height,
                                               w * tile / width, h * tile / height)), loss)
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=suffix[1:], dpi=dpi, facecolor="white")
    return out


def render_grid(cells: Sequence[Sequence[GridCell]], row_labels: Sequence[str], column_labels: Sequence[str],
                out: Path, draw: DrawFn, tile: int, point_size: float,
                legends: Sequence[list[tuple[str, tuple[float, ...]]]] | None = None,
                loss: Sequence[Curve] | None = None) -> Path:
    """Render every cell with ``draw`` and :func:`compose` the grid."""
    blank = np.full((tile, tile, 3), 255, dtype=np.uint8)
    images = [[blank if cell.points is None else draw(cell.points, cell.colors, point_size) for cell in row]
              for row in cells]
    return compose(images, row_labels, column_labels, out, legends, loss)


# ---------------------------------------------------------------------------------- run folders


@dataclass
class _Run:
    label: str
    class_names: list[str]
    points: np.ndarray  # (M, P, 3)
    labels: np.ndarray  # (M,)
    parts: np.ndarray | None


def _load_run(run: Path, points: int, seed: int) -> _Run:
    """A run folder's synthetic set: dd3d regenerated at ``points`` from generator.pt, others as stored."""
    import torch

    from dd3d.synthetic import GENERATOR_FILE, SYNTHETIC_FILE, LoadedGenerator, read_synthetic_h5

    if not run.is_dir():
        raise DD3DError(f"--run {run}: run folder not found")
    summary = run / "distill.json"
    try:
        method = str(json.loads(summary.read_text()).get("method", run.name))
    except (OSError, ValueError, AttributeError):
        method = run.name
    if (run / GENERATOR_FILE).is_file():
        loaded = LoadedGenerator(run / GENERATOR_FILE)
        synthetic = loaded.generate(points, torch.Generator().manual_seed(seed))
        names = loaded.class_names
    else:
        synthetic, names = read_synthetic_h5(run / SYNTHETIC_FILE)
        if names is None:
            raise DD3DError(f"{run / SYNTHETIC_FILE}: no class_names attribute; cannot match --classes")
    return _Run(method.upper(), names, synthetic.points, synthetic.labels, synthetic.parts)


def _real_clouds(cfg: Config, classes: Sequence[str], points: int) -> tuple[list[np.ndarray], list[np.ndarray | None],
                                                                            list[tuple[int, ...]], list[str] | None]:
    """The first training cloud of each class of the config's dataset, prepared at ``points`` points
    (with the part labels, class part ids and part names of segmentation configs)."""
    from dd3d.data import load_train_split, prepare_at

    # loaders that sample clouds (built-in shapes, folders, ShapeNet-part txt) then give distinct points
    cfg.data.resolution = max(cfg.data.resolution, points)
    raw = load_train_split(cfg)
    missing = [c for c in classes if c not in raw.class_names]
    if missing:
        raise DD3DError(f"--classes: {', '.join(missing)} not in {raw.source} "
                        f"(available: {', '.join(raw.class_names)})")
    index = [int(np.flatnonzero(raw.labels == raw.class_names.index(c))[0]) for c in classes]
    real = prepare_at(raw.subset(np.array(index)), cfg, cfg.data.train_split, points)
    seg = cfg.task == "segmentation" and real.parts is not None
    class_parts = [tuple(real.category_parts.get(raw.class_names.index(c), ())) if seg and real.category_parts else ()
                   for c in classes]
    parts = [real.parts[i] if seg else None for i in range(len(classes))]
    return list(real.points), parts, class_parts, real.part_names if seg else None


def _unique_labels(runs: list[_Run], dirs: Sequence[Path]) -> list[str]:
    labels = [r.label for r in runs]
    return [f"{label} ({d.name})" if labels.count(label) > 1 else label for label, d in zip(labels, dirs)]


def render_runs(run_dirs: Sequence[Path], classes: Sequence[str], points: int, out: Path, tile: int = TILE,
                point_size: float | None = None, seed: int = 0) -> Path:
    """Figure-4-style grid: one row per class, columns Real and each run; returns ``out``.

    dd3d runs are regenerated at ``points`` points from ``generator.pt`` (noise seed ``seed``);
    other runs show ``synthetic.h5`` as distilled (e.g. GM at its training resolution). Real clouds
    come from the first run's ``config.yaml`` dataset, whose up axis (:func:`dd3d.config.resolve_up_axis`)
    every column is turned by. Segmentation clouds are coloured by part with a legend per row;
    everything else by height.
    """
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise DD3DError("render: needs at least one --run DIR")
    if not classes:
        raise DD3DError("--classes: give at least one class name, e.g. --classes airplane,chair")
    if points < 1 or tile < 16:
        raise DD3DError(f"render: --points must be >= 1 and --tile >= 16, got {points} and {tile}")
    runs = [_load_run(d, points, seed) for d in run_dirs]
    cfg = load_config(run_dirs[0] / "config.yaml")
    up = resolve_up_axis(cfg.data)
    real, real_parts, class_parts, part_names = _real_clouds(cfg, classes, points)
    cells = []
    for c, name in enumerate(classes):
        shown = upright(real[c], up)
        row = [GridCell(shown, cloud_colors(shown, real_parts[c], class_parts[c]))]
        for run, d in zip(runs, run_dirs):
            if name not in run.class_names:
                raise DD3DError(f"--classes: {name} not in run {d} (its classes: {', '.join(run.class_names)})")
            hits = np.flatnonzero(run.labels == run.class_names.index(name))
            if len(hits) == 0:
                row.append(GridCell(None))
                continue
            cloud = upright(run.points[hits[0]], up)
            parts = None if run.parts is None else run.parts[hits[0]]
            row.append(GridCell(cloud, cloud_colors(cloud, parts, class_parts[c])))
        cells.append(row)
    legends = [legend(part_names, cp) for cp in class_parts] if part_names else None
    with offscreen(tile, tile) as draw:
        return render_grid(cells, list(classes), ["Real", *_unique_labels(runs, run_dirs)], out, draw, tile,
                           point_size or default_point_size(tile), legends)


# ------------------------------------------------------------------ lab "Save render" (child process)

Legend = list[tuple[str, tuple[float, ...]]]


def write_panels(path: Path, clouds: Sequence[tuple[np.ndarray, np.ndarray] | None], row_label: str,
                 column_labels: Sequence[str], legend_entries: Legend | None = None,
                 loss: Sequence[tuple[str, np.ndarray]] = ()) -> None:
    """Store one grid row (clouds in the view frame with colours; None = empty tile) and the methods'
    loss curves (name, losses) for :func:`render_panels_file`."""
    arrays: dict[str, np.ndarray] = {}
    for i, cloud in enumerate(clouds):
        if cloud is not None:
            arrays[f"points{i}"], arrays[f"colors{i}"] = cloud
    for i, (_, losses) in enumerate(loss):
        arrays[f"loss{i}"] = np.asarray(losses, dtype=np.float64)
    meta = {"count": len(clouds), "row": row_label, "columns": list(column_labels), "legend": legend_entries or [],
            "loss": [name for name, _ in loss]}
    with open(path, "wb") as f:
        np.savez(f, meta=np.array(json.dumps(meta)), **arrays)


def render_panels_file(panels: Path, out: Path, tile: int) -> Path:
    """Render a file written by :func:`write_panels` as a one-row grid (offscreen), the loss curves last."""
    with np.load(panels, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        cells = [GridCell(data[f"points{i}"], data[f"colors{i}"]) if f"points{i}" in data else GridCell(None)
                 for i in range(meta["count"])]
        loss = method_curves([(name, data[f"loss{i}"]) for i, name in enumerate(meta.get("loss", []))])
    legends = [[(name, tuple(color)) for name, color in meta["legend"]]] if meta["legend"] else None
    with offscreen(tile, tile) as draw:
        return render_grid([cells], [meta["row"]], meta["columns"], out, draw, tile, default_point_size(tile), legends,
                           loss)


def render_in_subprocess(panels: Path, out: Path, tile: int, timeout: float = 300) -> Path:
    """Run :func:`render_panels_file` in a child process without a display (headless rendering)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run([sys.executable, "-m", "viewer.render", "--panels", str(panels), "--out", str(out),
                             "--tile", str(tile)],
                            capture_output=True, text=True, timeout=timeout, env=env)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise DD3DError(f"render of {out} failed: {lines[-1] if lines else f'exit status {result.returncode}'}")
    return out


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="dd3d-render", description="Render a Figure-4-style grid of real and distilled "
                            "point clouds (rows classes, columns Real and each run) to PNG or PDF, no display needed.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", dest="runs", type=Path, action="append", metavar="DIR",
                        help="a distill run folder (repeatable; one column each, after Real)")
    source.add_argument("--panels", type=Path, metavar="FILE",
                        help="instead of run folders: the panels written by the lab's Save render")
    parser.add_argument("--classes", default="", help="comma-separated class names, one row each (with --run)")
    parser.add_argument("--points", type=int, default=DEFAULT_RESOLUTION,
                        help=f"points of real and dd3d clouds (default {DEFAULT_RESOLUTION})")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE", help="output .png or .pdf")
    parser.add_argument("--tile", type=int, default=TILE, help=f"tile size in pixels (default {TILE})")
    parser.add_argument("--seed", type=int, default=0, help="noise seed of regenerated dd3d clouds")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``dd3d-render``: a grid of run folders (``--run``), or of the lab's saved panels (``--panels``)."""
    args = build_parser().parse_args(argv)
    try:
        if args.panels is not None:
            print(f"lab panels -> {render_panels_file(args.panels, args.out, args.tile)}")
            return 0
        classes = [c.strip() for c in args.classes.split(",") if c.strip()]
        out = render_runs(args.runs, classes, args.points, args.out, tile=args.tile, seed=args.seed)
        print(f"{len(classes)} classes x {len(args.runs) + 1} columns -> {out}")
        return 0
    except DD3DError as exc:
        if args.debug:
            raise
        print(f"dd3d-render: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
