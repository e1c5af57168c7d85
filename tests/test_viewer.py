"""The lab's GUI under Xvfb, each run in its own process (docs/open3d.md: keep the X server alive until
the GUI process has exited, and never render before the display exists in that process)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, offscreen_rendering_problem
from test_engine import TINY_LAB

from dd3d.engine import LAB_METHODS
from viewer.lossplot import LossPlot, loss_caption, method_curves
from dd3d.palette import METHOD_COLORS, PART_COLORS, height_colors, to_uint8

XVFB = ["xvfb-run", "-a", "-s", "-screen 0 1600x900x24"]
SIZE = (1280, 720)
TINY_ARGS = [arg for item in TINY_LAB for arg in ("--set", item)]

DRIVER = r'''
import os, sys, threading, time
from pathlib import Path
sys.path.insert(0, "tests")
from guidriver import drive
from dd3d.engine import load_lab_config, memory_bytes
from viewer.app import DEFAULT_RENDERER, LabApp

out = Path(sys.argv[1])
app = LabApp(load_lab_config("configs/shapes.yaml", sys.argv[2:]), resolution=256, size=(1280, 720),
             renderer=os.environ.get("LAB_RENDERER", DEFAULT_RENDERER))

def mb_per_redraw(seconds, warm_up=1.0, period=0.1):
    """RSS growth per frame while every 3D view is re-rendered every ``period`` s (window tick)."""
    state = {"frames": 0, "last": 0.0, "start": time.monotonic() + warm_up}
    done = threading.Event()

    def tick():
        now = time.monotonic()
        if now >= state["start"] and "rss" not in state:
            state["rss"], state["frames"] = memory_bytes(), 0
        if now > state["start"] + seconds:
            if not done.is_set():
                state["growth"] = memory_bytes() - state["rss"]
                done.set()
            return False
        if now - state["last"] < period:
            return False
        state["last"], state["frames"] = now, state["frames"] + 1
        for widget in (*app.view.scenes, app.view.canonical_scene):
            widget.force_redraw()
        return True

    app.call(lambda: app.view.window.set_on_tick_event(tick)).result(10)
    done.wait(warm_up + seconds + 60)
    return state["growth"] / 2**20 / max(state["frames"], 1)

def dd3d_has(n):
    return lambda s: s.method("dd3d") is not None and s.method("dd3d").cloud is not None and len(s.method("dd3d").cloud) == n

def steps(result):
    result["iteration"] = app.controller.wait_applied(lambda s: s.iteration >= 1, 60).iteration
    result["titles"] = app.call(app.panel_titles).result(10)
    for n in (300, 4096, 1, 64):
        app.call(lambda n=n: app.set_resolution(n)).result(10)
        app.controller.wait_applied(dd3d_has(n), 30)
        result[f"dd3d_{n}"] = app.call(app.dd3d_point_count).result(10)
    result["counts"] = app.call(app.point_counts).result(10)
    app.call(lambda: app.select("bed", 1)).result(10)
    app.controller.wait_applied(lambda s: s.selected_class == 1 and s.selected_sample == 1, 30)
    result["titles_after_select"] = app.call(app.panel_titles).result(10)
    result["later_iteration"] = app.controller.wait_applied(lambda s: s.iteration > result["iteration"], 60).iteration
    app.engine.pause()  # the render's child process then gets the CPU
    app.call(lambda: app.save_render(out / "render.png", 128)).result(10).result(120)
    result["mb_per_redraw"] = mb_per_redraw(3.0)
    app.engine.inject_failure("injected by the test")  # training ends; viewing must go on
    app.controller.wait_applied(lambda s: s.state.value == "error", 30)
    result["lines_after_error"] = app.call(app.status_lines).result(10)
    result["buttons_after_error"] = app.call(lambda: [b.enabled for b in app.view.distill_buttons]).result(10)
    app.call(lambda: app.set_resolution(500)).result(10)
    app.controller.wait_applied(dd3d_has(500), 30)
    result["dd3d_after_error"] = app.call(app.dd3d_point_count).result(10)
    result["geometries"] = app.call(app.geometry_count).result(10)

drive(app, out, steps)
'''


def _gui_unavailable() -> str | None:
    if shutil.which("xvfb-run") is None or shutil.which("Xvfb") is None:
        return "Xvfb is not installed (apt-get install xvfb xauth)"
    return offscreen_rendering_problem()


@pytest.fixture(scope="module")
def gui() -> None:
    reason = _gui_unavailable()
    if reason:
        pytest.skip(reason)


def run_gui(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """``python args`` under a fresh Xvfb (depth 24) that lives until the process has exited."""
    runtime = tempfile.mkdtemp(prefix="xdg-")  # mode 700; silences a Mesa warning
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "XDG_RUNTIME_DIR": runtime}
    try:
        return subprocess.run([*XVFB, sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                              timeout=timeout, env=env)
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


def load_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def count_near(image: np.ndarray, colors: np.ndarray, tolerance: int = 2) -> int:
    """Pixels within ``tolerance`` (per channel) of any of ``colors`` (floats in [0, 1])."""
    target = np.round(np.asarray(colors) * 255).astype(int).reshape(-1, 3)
    unique, counts = np.unique(image.reshape(-1, 3), axis=0, return_counts=True)
    near = (np.abs(unique[:, None, :] - target[None]).max(axis=2) <= tolerance).any(axis=1)
    return int(counts[near].sum())


def test_screenshot_after_iterations_shows_clouds_and_curves(gui, tmp_path: Path) -> None:
    shot = tmp_path / "lab.png"
    result = run_gui("-m", "viewer.app", "--config", "configs/shapes.yaml", *TINY_ARGS, "--size", "1280x720",
                     "--screenshot", str(shot), "--after", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "screenshot at iteration 2" in result.stdout
    image = load_rgb(shot)
    assert image.shape == (SIZE[1], SIZE[0], 3)
    assert image.std() > 30, "blank screenshot"
    white = (image == 255).all(axis=2).mean()
    assert 0.2 < white < 0.9  # white 3D panels beside the dark side panel
    ramp = height_colors(np.c_[np.zeros(256), np.linspace(-1, 1, 256), np.zeros(256)])
    assert count_near(image, ramp) > 300  # height-coloured clouds
    for name in LAB_METHODS:
        assert count_near(image, np.array(METHOD_COLORS[name]), tolerance=12) > 20, f"no {name} loss curve"
    # the loss panel stands upright (Filament's OpenGL backend flips images): GM's orange, only drawn in
    # that panel, stays above the bottom 12% of its white image, where the x axis and its labels are
    orange = (np.abs(image - np.round(np.array(METHOD_COLORS["gm"]) * 255)).max(axis=2) <= 40)
    rows, cols = np.nonzero(orange)
    # rows of white images across the curves and the white margin left of the axes (~50 px here)
    white = (image[:, cols.min() - 40:cols.max() + 1] == 255).all(axis=2).any(axis=1)
    edges = np.flatnonzero(np.diff(np.r_[0, white.astype(int), 0]))
    top, bottom = next((a, b - 1) for a, b in zip(edges[::2], edges[1::2]) if a <= np.median(rows) < b)
    assert (rows.max() - top) / (bottom - top) < 0.88, (rows.max(), top, bottom)


def test_app_api_slider_selection_and_render(gui, tmp_path: Path) -> None:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    result = run_gui(str(script), str(tmp_path), *TINY_LAB)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads((tmp_path / "result.json").read_text())
    assert "error" not in found, found
    assert [t.split(" ")[0] for t in found["titles"]] == ["Real", "GM", "DD3D"]
    assert (found["dd3d_300"], found["dd3d_4096"], found["dd3d_1"], found["dd3d_64"]) == (300, 4096, 1, 64)
    assert found["counts"] == {"Real": 64, "GM": 32, "DD3D": 64}  # GM keeps its trained size
    assert found["titles_after_select"][0].startswith("Real · bed #1")
    assert found["later_iteration"] > found["iteration"] >= 1
    from viewer.render import grid_size

    render = load_rgb(tmp_path / "render.png")
    assert render.shape[1::-1] == grid_size(1, 4, 128)  # Real | GM | DD3D | loss panel
    assert (render[0, 0] == 255).all() and (render[-1, -1] == 255).all()
    assert (render[:, :-128].sum(axis=2) < 600).sum() > 50  # points drawn
    for name in LAB_METHODS:  # the loss panel's curves, as in the lab
        assert count_near(render[:, -128:], np.array(METHOD_COLORS[name]), tolerance=12) > 10, name
    # Open3D 0.20's Vulkan default on Mesa's software driver grew ~9 MB per such frame
    assert found["mb_per_redraw"] < 1.0, found["mb_per_redraw"]
    # after an engine failure: the message and state in the status lines, the slider still works,
    # and the app exits 0 (returncode above)
    message, status = found["lines_after_error"]
    assert message == "injected by the test" and status.startswith("error · it "), found["lines_after_error"]
    assert found["dd3d_after_error"] == 500 and found["geometries"] == 6
    assert found["buttons_after_error"] == [False] * 4  # play, step, export, save checkpoint: nothing to run


def top_panels(image: np.ndarray) -> list[np.ndarray]:
    """The Real | GM | DD3D panels of a lab screenshot: the white runs along the whitest row of the
    top half (above the clouds, below the titles)."""
    white = (image == 255).all(axis=2)
    row = white[np.argmax(white[:image.shape[0] // 2].sum(axis=1))].astype(int)
    edges = np.flatnonzero(np.diff(np.r_[0, row, 0]))
    runs = [(a, b) for a, b in zip(edges[::2], edges[1::2]) if b - a > 100]
    assert len(runs) == 3, runs
    column = white[:, runs[0][0] + 2]
    top = np.flatnonzero(column)[0]
    bottom = top + np.argmin(column[top:])  # the first non-white pixel below: the panel's edge
    return [image[top:bottom, a:b] for a, b in runs]


def test_segmentation_config_shows_part_colours_in_every_panel(gui, tmp_path: Path) -> None:
    shot = tmp_path / "seg.png"
    result = run_gui("-m", "viewer.app", "--config", "configs/shapes-seg.yaml", *TINY_ARGS,
                     "--set", "distill.batchnorm_clouds=2", "--size", "1280x720", "--screenshot", str(shot),
                     "--after", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "screenshot at iteration 1" in result.stdout
    # the first class (airplane: fuselage, wings, tail, engines) in exact palette colours
    for name, panel, least in zip(("Real", "GM", "DD3D"), top_panels(load_rgb(shot)), (3, 2, 3)):
        present = [count_near(panel, PART_COLORS[k], tolerance=1) for k in range(4)]
        assert sum(n > 20 for n in present) >= least, (name, present)
        assert count_near(panel, PART_COLORS[4:], tolerance=1) < 5, name  # no colours beyond the class's parts


def drawn_rows(image: np.ndarray, name: str) -> np.ndarray:
    """Rows of the pixels in method ``name``'s exact colour."""
    return np.nonzero((image == to_uint8(METHOD_COLORS[name])).all(axis=2))[0]


def test_loss_panel_has_axis_values_a_legend_and_each_method_in_its_colour() -> None:
    curves = [("gm", np.linspace(2.0, 1.0, 50)), ("dd3d", np.linspace(1.0, 0.5, 50))]
    plot = LossPlot(size=(320, 220))
    image = plot.image(method_curves(curves))
    assert image.shape == (220, 320, 3) and (image[0, 0] == 255).all()
    ax = plot.ax
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_yscale()) == ("iteration", "matching loss", "linear")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["GM", "DD3D"]
    assert ax.get_ylim()[0] <= 0.5 and ax.get_ylim()[1] >= 2.0 and ax.get_xlim()[1] >= 50
    left = int(ax.get_position().x0 * 320)
    assert (image[:, :left].sum(axis=2) < 300).sum() > 100  # dark tick labels left of the axes
    for name, _ in curves:
        assert len(drawn_rows(image, name)) > 150, name  # a line across the plotting area (plus its legend key)
    gm, dd3d = (np.median(drawn_rows(image, n)) for n in ("gm", "dd3d"))
    assert gm < dd3d  # GM's higher losses are drawn above DD3D's
    assert loss_caption([n for n, _ in curves], [c for _, c in curves]) == "Matching loss · GM 1 · DD3D 0.5"
    blank = LossPlot(size=(320, 220)).image(method_curves([("gm", np.array([np.nan]))]))
    assert len(drawn_rows(blank, "gm")) < 60  # only the legend key: nothing finite, no curve


def test_loss_panel_uses_a_log_scale_when_curves_differ_by_orders_of_magnitude() -> None:
    x = np.arange(80)
    curves = method_curves([("gm", 5 * np.exp(-x / 40) + 1), ("dd3d", 0.01 * np.exp(-x / 40) + 0.001)])
    plot = LossPlot(size=(320, 220))
    image = plot.image(curves)
    assert plot.ax.get_yscale() == "log"
    low, high = plot.ax.get_ylim()
    assert low <= 0.001 and high >= 6 and np.log10(high / low) == pytest.approx(round(np.log10(high / low)))
    gm, dd3d = (np.median(drawn_rows(image, n)) for n in ("gm", "dd3d"))
    assert dd3d - gm > 0.3 * 220  # both curves readable, far apart


def test_loss_panel_redraws_only_the_lines_while_the_axes_stay_and_matches_a_fresh_panel() -> None:
    x = np.arange(200)
    losses = [("gm", 2 - x / 400), ("dd3d", 1.5 - x / 300)]
    plot = LossPlot(size=(320, 220))
    for n in range(30, 45):  # 30 .. 44 iterations: same axes (x up to 50)
        image = plot.image(method_curves([(m, v[:n]) for m, v in losses]))
    assert plot.full_redraws == 1
    fresh = LossPlot(size=(320, 220)).image(method_curves([(m, v[:44]) for m, v in losses]))
    assert np.array_equal(image, fresh)  # no stale pixels from earlier frames
    plot.image(method_curves([(m, v[:120]) for m, v in losses]))  # x beyond 50: new axes
    assert plot.full_redraws == 2


@pytest.mark.parametrize("display", [None, ":4711"], ids=["unset", "unreachable"])
def test_no_display_gives_one_line_before_importing_the_gui(display: str | None) -> None:
    code = ("import sys; from viewer.app import main; rc = main(['--config', 'configs/shapes.yaml']); "
            "print('gui imported' if 'open3d.visualization.gui' in sys.modules else 'gui not imported'); "
            "sys.exit(rc)")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    if display is not None:
        env["DISPLAY"] = display
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                            env=env)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no display found" in lines[0]
    assert "dd3d-render" in lines[0] and "xvfb-run" in lines[0]
    assert result.stdout.strip() == "gui not imported"
