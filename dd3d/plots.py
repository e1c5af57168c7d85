"""The paper's plots from run folders and benchmark folders (matplotlib, Agg; PNG + PDF).

* :func:`plot_losses` — the matching-loss curves of runs (paper Fig. 3), from ``distill.json``'s
  ``loss_curve``; log scale when the curves span orders of magnitude (:func:`log_scale`).
* :func:`plot_accuracy_vs_iterations` — test accuracy against distillation iterations per method,
  mean over every evaluation run of every distillation seed, with ± one std as a band
  (``benchmarks/iterations.py``: runs of several lengths; a run's evaluated snapshots
  ``snapshots/it<N>/`` count as runs of N iterations: ``benchmarks/long_run.py``).
* :func:`plot_costs` — time and peak memory of one iteration against cpc and against the training
  resolution (paper Fig. 6), from ``memory.json`` (``benchmarks/memory.py``).
* :func:`plot_cross_architecture` — the cross-architecture grid as a heat map (paper Table 3,
  ``benchmarks/cross_arch.py``).

:func:`plot_folders` (``dd3d plot``) draws whichever of these apply to the given folders, and
:func:`plot_benchmark` what applies to a benchmark's output folder (the benchmarks call it). Colours
and fonts come from :mod:`dd3d.palette` (shared with the renders and the lab's loss panel, which
draws its axes with :func:`draw_loss_curves`). Figures are built on ``matplotlib.figure.Figure``
with the Agg canvas (no pyplot, no display); every file is written atomically.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import textwrap
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from matplotlib import colormaps, rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from dd3d.config import DistillConfig, GeneratorConfig
from dd3d.errors import DD3DError
from dd3d.palette import FIGURE_RC, SEQUENTIAL_MAP, method_color

SUMMARY_FILE = "distill.json"  # as written by dd3d.distill.run (not imported: it loads torch)
SNAPSHOTS_FOLDER = "snapshots"  # as dd3d.distill.run.snapshot_folder writes them (not imported, as above)
MEMORY_FILE = "memory.json"
FORMATS = ("png", "pdf")
DPI = 200  # PNG resolution; PDFs are vector
#: curves whose highest and lowest positive values differ by at least this factor get a log y axis
LOG_RATIO = 20.0
#: a method's (label, losses, colour)
Curve = tuple[str, np.ndarray, tuple[float, ...]]


# ------------------------------------------------------------------------------------ style


@contextlib.contextmanager
def figure_style(scale: float = 1.0) -> Iterator[None]:
    """The shared fonts and line settings (:data:`dd3d.palette.FIGURE_RC`) while building and saving;
    ``scale`` multiplies the font sizes (small figures)."""
    with rc_context({k: v * scale if k.endswith("size") else v for k, v in FIGURE_RC.items()}):
        yield


def new_figure(width: float, height: float, dpi: float = 100) -> Figure:
    """An Agg-backed figure of ``width`` × ``height`` inches (build it inside :func:`figure_style`)."""
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, stem: Path) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf`` atomically; the paths written."""
    from dd3d.io import atomic_path

    written = []
    for fmt in FORMATS:
        path = stem.with_name(f"{stem.name}.{fmt}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=DPI, bbox_inches="tight")
        written.append(path)
    return written


# ------------------------------------------------------------------------------- loss curves


def log_scale(values: Sequence[np.ndarray]) -> bool:
    """True when every finite value is positive and the highest is :data:`LOG_RATIO` times the lowest."""
    finite = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in values] + [np.empty(0)])
    finite = finite[np.isfinite(finite)]
    return bool(len(finite)) and finite.min() > 0 and finite.max() >= LOG_RATIO * finite.min()


#: legend characters per inch of axes width at the figures' legend font size (for :func:`draw_loss_curves`)
LEGEND_CHARS_PER_INCH = 16


def draw_loss_curves(ax: Axes, curves: Sequence[Curve]) -> list[Line2D]:
    """Loss against iteration (1, 2, ...) of each curve on ``ax``, with axis labels, a legend above
    the axes (never over a curve) and a log y axis where :func:`log_scale` says so; the line artists."""
    lines = []
    for label, losses, color in curves:
        losses = np.asarray(losses, dtype=np.float64)
        (line,) = ax.plot(np.arange(1, len(losses) + 1), losses, color=color, label=label)
        lines.append(line)
    ax.set_yscale("log" if log_scale([c[1] for c in curves]) else "linear")
    ax.set_xlabel("iteration")
    ax.set_ylabel("matching loss")
    if curves:
        # as many columns as fit the axes' width, so many curves (seeds of several methods) stack in rows
        longest = max(len(label) for label, _, _ in curves)
        width_chars = ax.figure.get_figwidth() * ax.get_position().width * LEGEND_CHARS_PER_INCH
        columns = max(1, min(len(curves), int(width_chars // (longest + 4))))
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=columns, borderaxespad=0.2,
                  handlelength=1.5, columnspacing=1.2)
    return lines


def method_curves(methods: Sequence[tuple[str, np.ndarray]]) -> list[Curve]:
    """(label, losses, colour) of each (method, losses) in the method's :data:`dd3d.palette.METHOD_COLORS` colour."""
    return [(name.upper(), np.asarray(losses), method_color(name)) for name, losses in methods]


@dataclass(frozen=True)
class RunSummary:
    """What the plots read from a run folder's ``distill.json`` and ``config.yaml``."""

    folder: Path
    method: str
    iterations: int | None
    seed: int | None
    loss_curve: np.ndarray


def read_run(folder: Path) -> RunSummary:
    """The summary of a ``dd3d distill`` run folder (one-line errors for unreadable files)."""
    from dd3d.config import read_yaml

    path = folder / SUMMARY_FILE
    try:
        summary = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise DD3DError(f"{path}: not a readable distill.json (run `dd3d distill` again?)") from None
    if not isinstance(summary, dict) or "method" not in summary:
        raise DD3DError(f"{path}: no 'method' (not written by `dd3d distill`?)")
    config = folder / "config.yaml"
    settings = read_yaml(config) if config.is_file() else {}
    curve = np.asarray([np.nan if v is None else v for v in summary.get("loss_curve") or []], dtype=np.float64)
    label = method_label(str(summary["method"]), settings.get("distill") or {}, str(settings.get("task", "classification")))
    return RunSummary(folder, label, summary.get("iterations"), settings.get("seed", 0) if config.is_file() else None,
                      curve)


def method_label(method: str, distill: dict[str, Any], task: str = "classification") -> str:
    """The method's name, marked wherever its run departs from the method's paper settings, so runs of
    different variants are never pooled: ``dd3d-warm`` (``distill.generator.init: real``) and ``gm-herding``
    (``distill.init_clouds: herding``) start from the herding clouds; dd3d's generator adds ``-sheet``
    (``generator.noise_dim`` above 1), ``-stratified`` (``generator.noise``), ``-lr<rate>`` when matching ran at
    another rate than the start's default (``generator.warm_lr``'s after a warm start, else ``adam_lr``'s) and,
    for classification (Table 7 steps the rate there, not for segmentation), ``-constant-lr`` (``distill.lr_gamma``
    1); any method adds ``-step<N>`` when its rate steps every N iterations instead of once at half the run
    (``distill.lr_step``, e.g. ``dd3d-step100`` for Table 7's schedule)."""
    generator = distill.get("generator") or {}
    warm = method == "dd3d" and generator.get("init") == "real"
    label = "dd3d-warm" if warm else method
    if method in ("gm", "dm", "tm", "sadm") and distill.get("init_clouds") == "herding":
        label = f"{method}-herding"
    if method == "dd3d":
        if generator.get("noise_dim", 1) > 1:
            label += "-sheet"
        if generator.get("noise") == "stratified":
            label += "-stratified"
        # the rate matching ran at; runs from before generator.warm_lr matched a warm start at adam_lr too
        rate = distill.get("lr")
        if rate is None:
            rate = generator["warm_lr"] if warm and "warm_lr" in generator else distill.get("adam_lr", DistillConfig.adam_lr)
        default = GeneratorConfig.warm_lr if warm else DistillConfig.adam_lr
        if distill.get("iterations", 1) > 0 and not math.isclose(rate, default):  # no matching: no rate
            label += f"-lr{rate:g}"
        if task == "classification" and distill.get("lr_gamma") == 1.0:
            label += "-constant-lr"
    if distill.get("lr_step") is not None:
        label += f"-step{distill['lr_step']}"
    return label


def plot_losses(runs: Sequence[RunSummary], stem: Path) -> list[Path]:
    """Fig. 3: the matching-loss curves of ``runs`` in one figure (``stem``.png/.pdf)."""
    labels = [r.method.upper() for r in runs]
    curves = [(f"{label} ({r.folder.name})" if labels.count(label) > 1 else label, r.loss_curve,
               method_color(r.method)) for label, r in zip(labels, runs)]
    with figure_style():
        fig = new_figure(5.0, 3.2)
        draw_loss_curves(fig.add_subplot(), curves)
        return save_figure(fig, stem)


# ------------------------------------------------------------------------------ evaluations


@dataclass(frozen=True)
class Evaluated:
    """One ``dd3d eval`` result (``metrics.json``) with the distillation it evaluated."""

    run: RunSummary
    dataset: str
    setting: str
    cpc: int | None
    backbone: str
    oa_runs: tuple[float, ...]


def read_evaluations(run: RunSummary) -> list[Evaluated]:
    """The evaluations in a run folder's sub-folders (``eval/``, ``xeval-<backbone>/``, ...)."""
    from dd3d.table import collect

    found = []
    for folder in sorted(p for p in run.folder.iterdir() if (p / "metrics.json").is_file()):
        record = collect([folder])[0]
        size = record.get("backbone_size", "full")
        backbone = str(record.get("backbone")) + ("" if size == "full" else f" ({size})")
        found.append(Evaluated(run, str(record["dataset"]), str(record["setting"]), record["cpc"], backbone,
                               tuple(record.get("oa_runs", [record["oa_mean"]]))))
    return found


def pooled(evaluations: Sequence[Evaluated]) -> tuple[float, float]:
    """Mean and std (%) of OA over every evaluation run of every evaluation (as ``dd3d table``)."""
    values = 100 * np.concatenate([e.oa_runs for e in evaluations])
    return float(values.mean()), float(values.std())


def _group(evaluations: Sequence[Evaluated], key: Callable[[Evaluated], Any]) -> dict[Any, list[Evaluated]]:
    groups: dict[Any, list[Evaluated]] = defaultdict(list)
    for e in evaluations:
        groups[key(e)].append(e)
    return dict(groups)


def _method_order(methods: set[str]) -> list[str]:
    from dd3d.table import METHOD_ORDER

    return sorted(methods, key=lambda m: (METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER), m))


def iteration_groups(evaluations: Sequence[Evaluated]) -> dict[tuple, list[Evaluated]]:
    """Evaluations by (dataset, setting, cpc, backbone), where the group has two or more iteration counts."""
    groups = _group([e for e in evaluations if e.run.iterations is not None],
                    lambda e: (e.dataset, e.setting, e.cpc, e.backbone))
    return {k: g for k, g in groups.items() if len({e.run.iterations for e in g}) >= 2}


#: characters per line of a figure's footnote (a 5-inch figure at the "small" font size)
NOTE_WIDTH = 80


def seed_note(evaluations: Sequence[Evaluated], methods: Sequence[str]) -> str:
    """How many distillation seeds the bands pool: one count, or each method's when they differ."""
    seeds = {m: len({e.run.seed for e in evaluations if e.run.method == m}) for m in methods}
    if len(set(seeds.values())) == 1:
        n = next(iter(seeds.values()))
        return f"{n} distillation seed{'s' * (n > 1)}"
    return "distillation seeds (" + ", ".join(f"{m.upper()}: {n}" for m, n in seeds.items()) + ")"


def plot_accuracy_vs_iterations(key: tuple, evaluations: Sequence[Evaluated], stem: Path) -> list[Path]:
    """Accuracy against distillation iterations, one line per method with ± std as a band."""
    dataset, setting, cpc, backbone = key
    methods = _method_order({e.run.method for e in evaluations})
    with figure_style():
        fig = new_figure(5.0, 3.4)
        ax = fig.add_subplot()
        for method in methods:
            by_x = _group([e for e in evaluations if e.run.method == method], lambda e: e.run.iterations)
            xs = sorted(by_x)
            mean, std = np.array([pooled(by_x[x]) for x in xs]).T
            color = method_color(method)
            ax.plot(xs, mean, marker="o", markersize=4, color=color, label=method.upper())
            ax.fill_between(xs, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
        xs = sorted({e.run.iterations for e in evaluations})
        if xs[0] > 0 and xs[-1] >= 8 * xs[0]:
            ax.set_xscale("log")
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.minorticks_off()
        ax.set_xlabel("distillation iterations")
        ax.set_ylabel(f"test accuracy (%, {backbone})")
        ax.set_title(f"{dataset} · {setting} · cpc {cpc}")
        ax.legend(loc="best")
        note = f"band: ± std over {seed_note(evaluations, methods)} × evaluation runs"
        fig.text(0.01, -0.02, textwrap.fill(note, NOTE_WIDTH), fontsize="small", color="0.35", va="top")
        return save_figure(fig, stem)


def cross_architecture_groups(evaluations: Sequence[Evaluated]) -> dict[tuple, list[Evaluated]]:
    """Evaluations by (dataset, setting, cpc, iterations), where the group was evaluated with two or more
    backbones."""
    groups = _group(evaluations, lambda e: (e.dataset, e.setting, e.cpc, e.run.iterations))
    return {k: g for k, g in groups.items() if len({e.backbone for e in g}) >= 2}


def _backbone_order(backbones: set[str]) -> list[str]:
    from dd3d.models import CLASSIFIERS

    order = list(CLASSIFIERS)

    def key(backbone: str) -> tuple[int, str]:  # "dgcnn (small)" sorts as dgcnn
        name = backbone.split(" ")[0]
        return order.index(name) if name in order else len(order), backbone

    return sorted(backbones, key=key)


def plot_cross_architecture(key: tuple, evaluations: Sequence[Evaluated], stem: Path) -> list[Path]:
    """Table 3 as a heat map: rows methods, columns evaluation backbones, cells mean ± std OA (%)."""
    dataset, setting, cpc, iterations = key
    methods = _method_order({e.run.method for e in evaluations})
    backbones = _backbone_order({e.backbone for e in evaluations})
    cells = _group(evaluations, lambda e: (e.run.method, e.backbone))
    mean = np.full((len(methods), len(backbones)), np.nan)
    std = np.full_like(mean, np.nan)
    for (method, backbone), group in cells.items():
        cell = methods.index(method), backbones.index(backbone)
        mean[cell], std[cell] = pooled(group)
    with figure_style():
        fig = new_figure(1.0 + 1.1 * len(backbones), 1.0 + 0.55 * len(methods))
        ax = fig.add_subplot()
        cmap = colormaps[SEQUENTIAL_MAP].with_extremes(bad="0.92")  # grey: not evaluated
        image = ax.imshow(np.ma.masked_invalid(mean), cmap=cmap, aspect="auto")
        low, high = np.nanmin(mean), np.nanmax(mean)
        for (i, j), value in np.ndenumerate(mean):
            text = "—" if np.isnan(value) else f"{value:.1f}\n± {std[i, j]:.1f}"
            light = not np.isnan(value) and value < (low + high) / 2  # white text on the dark end of the map
            ax.text(j, i, text, ha="center", va="center", fontsize="small", color="white" if light else "black")
        ax.set_xticks(range(len(backbones)), backbones, rotation=30, ha="right")
        ax.set_yticks(range(len(methods)), [m.upper() for m in methods])
        ax.grid(False)
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_title(f"{dataset} · {setting} · cpc {cpc} · {iterations} iterations: test accuracy (%)")
        fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
        return save_figure(fig, stem)


# ------------------------------------------------------------------------- time and memory

#: memory.json sweep -> (x label, file stem)
SWEEPS = {
    "cpc": ("synthetic clouds per class (cpc)", "cost-vs-cpc"),
    "resolution": ("training points per cloud", "cost-vs-resolution"),
    "student_steps": ("unrolled student steps (TM)", "cost-vs-student-steps"),
}
#: memory.json measurement key -> (panel title, divisor, unit)
COSTS = {"seconds": ("time per iteration", 1.0, "s"), "peak_bytes": ("peak memory per iteration", 2**30, "GiB"),
         "synthetic_bytes": ("synthetic-set size", 2**20, "MiB")}


def read_memory(path: Path) -> dict[str, Any]:
    """A ``memory.json`` written by ``benchmarks/memory.py``."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise DD3DError(f"{path}: not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("measurements"), list):
        raise DD3DError(f"{path}: no 'measurements' list (not written by benchmarks/memory.py?)")
    return data


def plot_costs(data: dict[str, Any], out: Path) -> list[Path]:
    """Fig. 6: per sweep (cpc, resolution, TM unroll) one figure with a panel per measured cost
    (time, peak memory, and the synthetic-set size where recorded), one line per method."""
    written = []
    rows = [m for m in data["measurements"] if "error" not in m]
    for sweep, (xlabel, name) in SWEEPS.items():
        measured = [m for m in rows if m.get("sweep") == sweep]
        if not measured:
            continue
        costs = [c for c in COSTS if any(c in m for m in measured) and (c != "synthetic_bytes" or sweep == "cpc")]
        with figure_style():
            fig = new_figure(3.2 * len(costs), 3.0)
            for k, cost in enumerate(costs):
                title, scale, unit = COSTS[cost]
                ax = fig.add_subplot(1, len(costs), k + 1)
                for method in _method_order({m["method"] for m in measured}):
                    points = sorted((m["x"], m[cost] / scale) for m in measured if m["method"] == method and cost in m)
                    ax.plot(*zip(*points), marker="o", markersize=4, color=method_color(method), label=method.upper())
                xs = sorted({m["x"] for m in measured})
                if xs[0] > 0 and xs[-1] >= 8 * xs[0]:
                    ax.set_xscale("log")
                ax.set_xticks(xs, [str(x) for x in xs])
                ax.minorticks_off()
                ax.set_xlabel(xlabel)
                ax.set_ylabel(unit)
                ax.set_title(title)
                ax.set_ylim(bottom=0)
                if k == 0:
                    ax.legend(loc="best")
            fig.tight_layout()
            written += save_figure(fig, out / name)
    return written


# --------------------------------------------------------------------------- dd3d plot FOLDER


@dataclass
class _Plan:
    """Figures to draw into an output folder, and the given folders their data came from."""

    draw: Callable[[Path], list[Path]]
    sources: set[Path]


def _slug(*parts: Any) -> str:
    """A file stem from parts: ("cross-architecture", "shapes", "pointnet (small)") ->
    ``cross-architecture-shapes-pointnet-small``."""
    return "-".join(re.sub(r"[^A-Za-z0-9._]+", "-", str(p)).strip("-") for p in parts)


def runs_in(folder: Path) -> list[RunSummary]:
    """``folder`` itself when it is a run folder, else its run sub-folders (a benchmark folder); each
    followed by its snapshots (``distill.snapshot_every``: the run as it stood after N iterations)."""
    runs = [folder] if (folder / SUMMARY_FILE).is_file() else \
        [p for p in sorted(folder.iterdir()) if (p / SUMMARY_FILE).is_file()]
    return [read_run(p) for run in runs for p in [run, *_snapshots_of(run)]]


def _snapshots_of(run: Path) -> list[Path]:
    """The snapshot folders (``snapshots/it<N>``) of a run folder, in the order of N."""
    found = [p for p in (run / SNAPSHOTS_FOLDER).glob("it*") if p.name[2:].isdigit() and (p / SUMMARY_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name[2:]))


def _plans(folders: Sequence[Path]) -> list[_Plan]:
    plans = []
    direct = [read_run(f) for f in folders if (f / SUMMARY_FILE).is_file()]
    with_curves = [r for r in direct if np.isfinite(r.loss_curve).any()]
    if with_curves:
        plans.append(_Plan(lambda out: plot_losses(with_curves, out / "loss-curves"), {r.folder for r in with_curves}))
    origin = {}
    evaluations = []
    for folder in folders:
        for run in runs_in(folder):
            origin[run.folder] = folder
            evaluations += read_evaluations(run)
    for key, group in iteration_groups(evaluations).items():
        dataset, setting, cpc, backbone = key
        stem = _slug("accuracy-vs-iterations", dataset, setting, f"cpc{cpc}", backbone)
        plans.append(_Plan(lambda out, k=key, g=group, s=stem: plot_accuracy_vs_iterations(k, g, out / s),
                           {origin[e.run.folder] for e in group}))
    for key, group in cross_architecture_groups(evaluations).items():
        dataset, setting, cpc, iterations = key
        stem = _slug("cross-architecture", dataset, setting, f"cpc{cpc}", f"it{iterations}")
        plans.append(_Plan(lambda out, k=key, g=group, s=stem: plot_cross_architecture(k, g, out / s),
                           {origin[e.run.folder] for e in group}))
    for folder in folders:
        if (folder / MEMORY_FILE).is_file():
            data = read_memory(folder / MEMORY_FILE)
            if any("error" not in m and m.get("sweep") in SWEEPS for m in data["measurements"]):
                plans.append(_Plan(lambda out, d=data: plot_costs(d, out), {folder}))
    return plans


def plot_benchmark(folder: Path) -> list[Path]:
    """Every figure that applies to a benchmark's output folder, written into it (none: [])."""
    return [path for plan in _plans([Path(folder)]) for path in plan.draw(Path(folder))]


def plot_folders(folders: Sequence[Path], out: Path | None = None) -> list[Path]:
    """Draw every figure that applies to ``folders`` (run folders and benchmark folders) into ``out``
    (default: the folder, or the folders' common parent); the files written.

    A folder that contributes to no figure is an error (one line), raised before anything is written.
    """
    folders = [Path(f) for f in folders]
    if not folders:
        raise DD3DError("plot: give at least one run or benchmark folder")
    for folder in folders:
        if not folder.is_dir():
            raise DD3DError(f"{folder}: folder not found")
    plans = _plans(folders)
    used = {source for plan in plans for source in plan.sources}
    for folder in folders:
        if folder not in used:
            raise DD3DError(f"{folder}: nothing to plot (expected a run folder with a loss curve in distill.json, "
                            "runs evaluated at several iteration counts or with several backbones, or memory.json)")
    if out is None:
        out = folders[0] if len(folders) == 1 else Path(os.path.commonpath([f.resolve() for f in folders]))
    written = []
    for plan in plans:
        written += plan.draw(out)
    return written
