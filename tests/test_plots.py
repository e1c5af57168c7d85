"""The paper's plots (``dd3d.plots``, ``dd3d plot``) from run folders and benchmark folders.

Run and evaluation folders are written here in the format of ``dd3d distill`` / ``dd3d eval`` (only
the fields the plots read), so the tests take a second instead of distilling.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run_cli
from test_viewer import count_near, load_rgb

from dd3d.errors import DD3DError
from dd3d.palette import METHOD_COLORS, method_color
from dd3d.plots import log_scale, method_label, plot_benchmark, plot_folders, pooled, read_evaluations, read_run, runs_in, seed_note


def make_run(folder: Path, method: str, iterations: int = 10, seed: int = 0, loss: list[float] | None = None,
             evaluations: dict[str, list[float]] | None = None, cpc: int = 1) -> Path:
    """A run folder with distill.json, config.yaml and one metrics.json per evaluation folder
    (``{"eval": [oa per run]}``, ``{"xeval-dgcnn": [...]}`` evaluated with that backbone)."""
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(f"seed: {seed}\n")
    (folder / "distill.json").write_text(json.dumps({
        "method": method, "cpc": cpc, "dataset": "shapes", "setting": "aligned", "iterations": iterations,
        "loss_curve": list(loss if loss is not None else np.linspace(2.0, 1.0, iterations))}))
    for name, runs in (evaluations or {}).items():
        backbone = name.removeprefix("xeval-") if name.startswith("xeval-") else "pointnet"
        (folder / name).mkdir()
        (folder / name / "metrics.json").write_text(json.dumps({
            "method": method, "cpc": cpc, "dataset": "shapes", "setting": "aligned", "backbone": backbone,
            "backbone_size": "full", "oa_mean": float(np.mean(runs)), "oa_std": float(np.std(runs)), "oa_runs": runs}))
    return folder


def tinted(color: tuple[float, ...], alpha: float) -> np.ndarray:
    """``color`` drawn with ``alpha`` over white."""
    return alpha * np.asarray(color) + (1 - alpha)


def test_loss_curves_of_run_folders_in_png_and_pdf(tmp_path: Path) -> None:
    gm = make_run(tmp_path / "gm", "gm", loss=[3.0, 2.0, 1.5, 1.2])
    dd3d = make_run(tmp_path / "dd3d", "dd3d", loss=[1.0, 0.9, 0.7, 0.6])
    written = plot_folders([gm, dd3d], tmp_path / "figs")
    assert [p.name for p in written] == ["loss-curves.png", "loss-curves.pdf"]
    assert written[1].read_bytes().startswith(b"%PDF")
    image = load_rgb(written[0])
    for name in ("gm", "dd3d"):
        assert count_near(image, np.array(METHOD_COLORS[name]), tolerance=20) > 200, name
    assert plot_folders([gm]) == [gm / "loss-curves.png", gm / "loss-curves.pdf"]  # default: into the folder


def test_many_loss_curves_keep_the_figure_narrow(tmp_path: Path) -> None:
    """Seeds of several methods (long folder names in the labels) stack the legend in rows instead of
    one row many times the figure's width."""
    runs = [make_run(tmp_path / f"modelnet10-aligned-cpc1-{m}-s{seed}", m) for m in ("gm", "dd3d", "dm")
            for seed in range(4)]
    two = load_rgb(plot_folders(runs[:1] + runs[4:5], tmp_path / "two")[0])
    many = load_rgb(plot_folders(runs, tmp_path / "many")[0])
    assert many.shape[1] <= 1.2 * two.shape[1]  # as wide as a two-curve figure
    assert many.shape[0] > two.shape[0]  # the legend's rows add height instead


def test_log_scale_only_when_values_span_orders_of_magnitude() -> None:
    assert not log_scale([np.linspace(2.0, 1.0, 10), np.linspace(1.0, 0.5, 10)])
    assert log_scale([np.array([5.0, 1.0]), np.array([0.01, 0.001])])
    assert not log_scale([np.array([5.0, -1.0, 0.001])])  # a negative loss: linear
    assert not log_scale([np.array([np.nan])])


def test_accuracy_against_iterations_pools_seeds_and_draws_a_band(tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    oa = {("gm", 5): [0.50, 0.54], ("gm", 20): [0.60, 0.62], ("dd3d", 5): [0.30, 0.34], ("dd3d", 20): [0.70, 0.80]}
    for (method, iterations), runs in oa.items():
        for seed in (0, 1):
            make_run(bench / f"{method}-it{iterations}-s{seed}", method, iterations, seed,
                     evaluations={"eval": [v + 0.02 * seed for v in runs]})
    evaluations = [e for run in (read_run(p) for p in sorted(bench.iterdir())) for e in read_evaluations(run)]
    dd3d_20 = [e for e in evaluations if e.run.method == "dd3d" and e.run.iterations == 20]
    values = 100 * np.array([0.70, 0.80, 0.72, 0.82])
    assert pooled(dd3d_20) == pytest.approx((values.mean(), values.std()))
    written = plot_benchmark(bench)
    assert [p.name for p in written] == ["accuracy-vs-iterations-shapes-aligned-cpc1-pointnet.png",
                                         "accuracy-vs-iterations-shapes-aligned-cpc1-pointnet.pdf"]
    image = load_rgb(written[0])
    for name in ("gm", "dd3d"):
        assert count_near(image, np.array(METHOD_COLORS[name]), tolerance=20) > 100, name
        assert count_near(image, tinted(METHOD_COLORS[name], 0.2), tolerance=4) > 300, f"no {name} band"


def test_a_run_with_its_own_rate_schedule_is_a_line_of_its_own(tmp_path: Path) -> None:
    """dd3d with Table 7's ×0.1 every 100 iterations (``distill.lr_step: 100``) is labelled dd3d-step100 and
    drawn in a lighter dd3d colour, not pooled with the release's schedule (one step at half the run)."""
    bench = tmp_path / "bench"
    for name, lr_step, oa in (("dd3d", None, 0.30), ("table7", 100, 0.80)):
        for iterations in (25, 400):
            run = make_run(bench / f"{name}-it{iterations}", "dd3d", iterations, evaluations={"eval": [oa, oa]})
            if lr_step is not None:
                (run / "config.yaml").write_text(f"seed: 0\ndistill:\n  lr_step: {lr_step}\n")
    methods = {read_run(p).method for p in bench.iterdir()}
    assert methods == {"dd3d", "dd3d-step100"}
    lighter = method_color("dd3d-step100")
    assert lighter == pytest.approx(tuple(0.6 * c + 0.4 for c in METHOD_COLORS["dd3d"]))
    assert method_color("dd3d-stepwise") == method_color("unknown")  # only -step<N> marks a schedule
    image = load_rgb(plot_benchmark(bench)[0])
    for color in (METHOD_COLORS["dd3d"], lighter):
        assert count_near(image, np.array(color), tolerance=12) > 100, color


def make_long_run(folder: Path, iterations: list[int], evaluated: list[int], lr_step: int | None = None) -> Path:
    """A run of ``iterations[-1]`` iterations with a snapshot after each of the others (where
    ``dd3d.distill.run.snapshot_folder`` puts them); the final set and the ``evaluated`` snapshots have an
    evaluation, whose accuracy grows with the iterations."""
    from dd3d.distill.run import snapshot_folder

    def evaluations(n: int) -> dict[str, list[float]] | None:
        return {"eval": [0.3 + n / 1000, 0.4 + n / 1000]} if n in evaluated or n == iterations[-1] else None

    run = make_run(folder, "dd3d", iterations[-1], evaluations=evaluations(iterations[-1]))
    for n in iterations[:-1]:
        make_run(snapshot_folder(run, n), "dd3d", n, evaluations=evaluations(n))
    if lr_step is not None:
        for config in run.rglob("config.yaml"):
            config.write_text(f"seed: 0\ndistill:\n  lr_step: {lr_step}\n")
    return run


def test_a_runs_evaluated_snapshots_give_its_accuracy_against_iterations(tmp_path: Path) -> None:
    """``dd3d plot RUN`` on a run distilled with ``distill.snapshot_every``: its evaluated snapshots and final
    set are the points of accuracy against iterations; an unevaluated snapshot adds no point."""
    run = make_long_run(tmp_path / "run", [25, 50, 75, 100], evaluated=[25, 50])
    written = plot_folders([run])
    assert [p.name for p in written] == ["loss-curves.png", "loss-curves.pdf",
                                         "accuracy-vs-iterations-shapes-aligned-cpc1-pointnet.png",
                                         "accuracy-vs-iterations-shapes-aligned-cpc1-pointnet.pdf"]
    evaluations = [e for r in runs_in(run) for e in read_evaluations(r)]
    assert sorted(e.run.iterations for e in evaluations) == [25, 50, 100]
    plain = make_run(tmp_path / "plain", "dd3d", 100, evaluations={"eval": [0.5, 0.6]})
    assert [p.name for p in plot_folders([plain])] == ["loss-curves.png", "loss-curves.pdf"]


def test_the_long_run_benchmark_draws_accuracy_along_its_snapshots_and_its_loss_curves(tmp_path: Path) -> None:
    """benchmarks/long_run.py: each variant's runs (evaluated snapshots and final set) give one line; the
    figures are those of ``dd3d plot`` on the finished runs; unfinished runs are left out."""
    from benchmarks.long_run import EVALUATED, draw_figures

    out = tmp_path / "bench"
    out.mkdir()
    assert draw_figures(out) == []  # no finished run yet
    for name, lr_step in (("dd3d-s0", None), ("dd3d-table7-s0", 100)):
        make_long_run(out / name, sorted([*EVALUATED, 75]), evaluated=EVALUATED, lr_step=lr_step)
    (out / "unfinished").mkdir()
    written = draw_figures(out)
    assert [p.name for p in written] == ["loss-curves.png", "loss-curves.pdf",
                                         "accuracy-vs-iterations-shapes-aligned-cpc1-pointnet.png",
                                         "accuracy-vs-iterations-shapes-aligned-cpc1-pointnet.pdf"]
    evaluations = [e for r in runs_in(out) for e in read_evaluations(r)]
    assert seed_note(evaluations, ["dd3d", "dd3d-step100"]) == "1 distillation seed"
    assert seed_note(evaluations + [replace(e, run=replace(e.run, seed=1)) for e in evaluations
                                    if e.run.method == "dd3d"], ["dd3d", "dd3d-step100"]) == \
        "distillation seeds (DD3D: 2, DD3D-STEP100: 1)"
    image = load_rgb(written[2])
    for color in (METHOD_COLORS["dd3d"], method_color("dd3d-step100")):
        assert count_near(image, np.array(color), tolerance=12) > 100, color


def test_cross_architecture_heat_map_and_memory_plots(tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    for method, oa in (("gm", 0.6), ("dd3d", 0.7)):
        make_run(bench / method, method, cpc=10,
                 evaluations={"xeval-pointnet": [oa, oa + 0.02], "xeval-dgcnn": [oa - 0.1, oa - 0.08]})
    memory = [{"sweep": "cpc", "x": cpc, "method": m, "seconds": 0.1 * cpc, "peak_bytes": 2**28 * cpc,
               "synthetic_bytes": 2**20 * cpc} for cpc in (1, 10) for m in ("gm", "dd3d")]
    memory += [{"sweep": "resolution", "x": 256, "method": "dd3d", "seconds": 1.0, "peak_bytes": 2**29},
               {"sweep": "resolution", "x": 512, "method": "dd3d", "error": "out of memory"}]
    (bench / "memory.json").write_text(json.dumps({"measurements": memory}))
    names = sorted(p.name for p in plot_benchmark(bench))
    assert names == ["cost-vs-cpc.pdf", "cost-vs-cpc.png", "cost-vs-resolution.pdf", "cost-vs-resolution.png",
                     "cross-architecture-shapes-aligned-cpc10-it10.pdf", "cross-architecture-shapes-aligned-cpc10-it10.png"]
    assert load_rgb(bench / "cross-architecture-shapes-aligned-cpc10-it10.png").std() > 30  # a coloured heat map


def test_a_folder_with_nothing_to_plot_is_a_one_line_error(tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    make_run(bench / "gm", "gm", evaluations={"eval": [0.5]})  # one iteration count, one backbone
    run = make_run(tmp_path / "run", "random", loss=[])  # a coreset: no matching loss
    for folder in (bench, run):
        with pytest.raises(DD3DError, match="nothing to plot"):
            plot_folders([folder])
    assert plot_benchmark(bench) == []
    assert not list(tmp_path.rglob("*.png"))
    result = run_cli("plot", str(bench))
    assert_one_line_error(result, str(bench), "nothing to plot")
    assert_one_line_error(run_cli("plot", str(tmp_path / "missing")), "folder not found")


@pytest.mark.parametrize("distill, label", [
    ({"generator": {"init": "noise", "noise": "uniform"}}, "dd3d"),
    ({"generator": {"init": "noise", "noise": "stratified"}}, "dd3d-stratified"),
    ({"generator": {"init": "real", "noise": "stratified", "warm_lr": 1e-4}, "lr_step": 100},
     "dd3d-warm-stratified-step100"),
    ({"generator": {"init": "real", "noise_dim": 2, "warm_lr": 1e-4}}, "dd3d-warm-sheet"),
    ({"generator": {"init": "real"}, "adam_lr": 1e-3}, "dd3d-warm-lr0.001"),  # before warm_lr: matched at adam_lr
    ({"generator": {"init": "real", "warm_lr": 1e-4}, "lr": 1e-4}, "dd3d-warm"),  # the warm start's own rate
    ({"generator": {"init": "real", "warm_lr": 1e-4}, "lr": 1e-3}, "dd3d-warm-lr0.001"),
    ({"generator": {"init": "noise"}, "adam_lr": 1e-3, "lr": 1e-3}, "dd3d"),
    ({"generator": {"init": "real"}, "iterations": 0}, "dd3d-warm"),  # the fit alone: no matching rate
    ({"generator": {"init": "noise"}, "lr_gamma": 1.0}, "dd3d-constant-lr"),
])
def test_runs_that_depart_from_the_paper_settings_are_lines_of_their_own(distill: dict, label: str) -> None:
    """Every variant the benchmarks run gets its own label (so ``dd3d plot`` never pools two of them)."""
    assert method_label("dd3d", distill) == label
    # Table 7 has no schedule for segmentation: a constant rate is the paper's there
    assert method_label("dd3d", {"generator": {}, "lr_gamma": 1.0}, "segmentation") == "dd3d"


def test_variant_labels_have_colours_of_their_own() -> None:
    named = ("dd3d", "dd3d-warm", "dd3d-stratified", "dd3d-warm-stratified", "dd3d-warm-sheet")
    assert len({method_color(label) for label in named}) == len(named)
    assert method_color("dd3d-warm-lr0.001") == method_color("dd3d-warm-step100")  # a rate of its own: lighter
    assert method_color("dd3d-constant-lr") == method_color("dd3d-step100") != method_color("dd3d")
    assert method_color("dd3d-sheet-lr1e-05") == method_color("unknown")  # no colour for the unmarked name
