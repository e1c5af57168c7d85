"""The runner shared by the benchmark grids (accuracy, segmentation, cross-architecture, rivals).

A grid is a list of :class:`Cell`: one distillation (a run folder) and one or more evaluations of
it (sub-folders, e.g. one per backbone or evaluation protocol). Finished steps are skipped, so an
interrupted grid resumes where it stopped (an interrupted distillation resumes from its checkpoint).
At the end the grid prints the command, machine, settings and the ``dd3d table`` of every evaluation,
and draws the plots that apply to its folder (:func:`dd3d.plots.plot_benchmark`: accuracy against
iterations, the cross-architecture heat map) beside the run folders.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

from dd3d.config import load_config
from dd3d.distill.run import distill
from dd3d.errors import DD3DError
from dd3d.evaluate import evaluate_synthetic
from dd3d.plots import plot_benchmark
from dd3d.provenance import command, machine
from dd3d.table import collect, render_markdown

from benchmarks.harness import REPO, profile_parser


#: DD3D started from the herding clouds (``distill.generator.init=real``, beyond the paper): the grids' dd3d-warm column
DD3D_WARM = ["distill.method=dd3d", "distill.generator.init=real"]
#: each cloud's noise drawn stratified (``distill.generator.noise``, beyond the paper)
STRATIFIED = ["distill.generator.noise=stratified"]
#: DD3D from noise (the paper's start) with stratified noise: the grids' dd3d-stratified column
DD3D_STRATIFIED = ["distill.method=dd3d", *STRATIFIED]
#: both options: the grids' dd3d-warm-stratified column
DD3D_WARM_STRATIFIED = [*DD3D_WARM, *STRATIFIED]


@dataclass
class Evaluation:
    """One evaluation of a cell's distilled set, written to ``<cell>/<folder>/metrics.json``; ``source`` is
    the run folder evaluated, relative to the cell's ("": the cell's run; e.g. ``snapshots/it50``)."""

    folder: str = "eval"
    overrides: list[str] = field(default_factory=list)
    backbone: str | None = None
    source: str = ""


@dataclass
class Cell:
    """One distillation: ``configs/<config>`` with ``overrides``, and its evaluations."""

    name: str
    config: str
    overrides: list[str]
    evaluations: list[Evaluation] = field(default_factory=lambda: [Evaluation()])


def comma_list(text: str) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]`` (an argparse ``type``)."""
    return [item for item in text.split(",") if item]


def comma_ints(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]`` (an argparse ``type``)."""
    return [int(item) for item in comma_list(text)]


def column_overrides(column: str, variants: dict[str, list[str]]) -> list[str]:
    """The config overrides that select the grid column ``column``: one of ``variants`` (a method with
    options, e.g. dd3d-warm) or a method name."""
    return variants.get(column, [f"distill.method={column}"])


def grid_parser(doc: str | None, subset: str, choices: list[str],
                seeds: list[int] | None = None) -> argparse.ArgumentParser:
    """The profile flags plus ``--out`` (folder of the run folders), ``--<subset>`` (a comma-separated
    subset of ``choices``, e.g. methods or backbones, parsed to a list) and, given default ``seeds``,
    ``--seeds`` (comma-separated distillation seeds, parsed to a list of ints)."""
    parser = profile_parser(doc)
    parser.add_argument("--out", type=Path, help="folder for the run folders")
    parser.add_argument(f"--{subset}", type=comma_list, default=",".join(choices),
                        help=f"comma-separated subset of {', '.join(choices)}")
    if seeds is not None:
        parser.add_argument("--seeds", type=comma_ints, default=",".join(map(str, seeds)),
                            help="comma-separated distillation seeds")
    return parser


def run_cell(cell: Cell, folder: Path) -> str:
    """Distil (unless done) and run every evaluation (unless done); a one-line status."""
    start = time.perf_counter()
    cfg = load_config(REPO / "configs" / cell.config, cell.overrides)
    if not (folder / "distill.json").is_file():
        distill(cfg, folder, resume=(folder / "checkpoint.pt").is_file(), progress=False)
    scores = []
    for ev in cell.evaluations:
        target = folder / ev.folder
        if not (target / "metrics.json").is_file():
            evaluate_synthetic(load_config(REPO / "configs" / cell.config, cell.overrides + ev.overrides),
                               folder / ev.source, target, backbone=ev.backbone, progress=False)
        metrics = collect([target])[0]
        scores.append(f"{ev.folder} OA {100 * metrics['oa_mean']:.1f} ± {100 * metrics['oa_std']:.1f}")
    return f"{'; '.join(scores)} ({time.perf_counter() - start:.0f} s)"


def run_grid(cells: list[Cell], out: Path, title: str, settings: list[str], by: str = "method",
             table: bool = True) -> list[Path]:
    """Run every cell under ``out``; print progress, provenance and (``table``) the ``dd3d table`` of the
    evaluations followed by the plots that apply to ``out`` (:func:`print_figures`); return the
    evaluation folders (with ``table=False`` the caller prints its own table, then the figures).

    A dataset whose files are absent (e.g. ModelNet10 off this machine) is reported as skipped: the
    first failing cell of a config skips that config's remaining cells.
    """
    began = time.perf_counter()
    folders: list[Path] = []
    skipped: dict[str, str] = {}
    for cell in cells:
        if cell.config in skipped:
            continue
        folder = out / cell.name
        try:
            status = run_cell(cell, folder)
        except DD3DError as exc:
            skipped[cell.config] = str(exc)
            continue
        folders += [folder / ev.folder for ev in cell.evaluations]
        print(f"{cell.name}: {status}", flush=True)
    print(f"\n{title}, total {(time.perf_counter() - began) / 60:.1f} min")
    print(f"command: {command()}\nmachine: {machine()}")
    print("settings: " + (" ".join(settings) or "the configs' paper defaults"))
    for config, reason in skipped.items():
        print(f"skipped: {config}: {reason}")
    if folders and table:
        print()
        print(render_markdown(collect(folders), by=by))
        print_figures(out)
    return folders


def print_figures(out: Path) -> None:
    """Draw the plots that apply to the benchmark folder ``out`` beside its runs and list them."""
    print("figures:", *plot_benchmark(out) or ["none apply"], sep="\n  ")
