"""``dd3d-lab --run`` / ``--watch`` / ``--headless`` as a user meets them: under Xvfb, each GUI in its
own process (see test_viewer.py), on tiny run folders made by ``dd3d distill``."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, assert_one_line_error
from runfolders import tiny_runs
from test_viewer import SIZE, TINY_ARGS, gui, load_rgb, run_gui  # noqa: F401 - gui is a fixture

RUNS_DRIVER = r'''
import sys
from pathlib import Path
sys.path.insert(0, "tests")
from guidriver import drive
from dd3d.engine import RunEngine, RunFolder
from viewer.app import LabApp

out = Path(sys.argv[1])
engine = RunEngine([RunFolder.open(Path(d)) for d in sys.argv[2:]], resolution=256)
app = LabApp(engine=engine, size=(1280, 720))

def shown(app):
    return [id(c.cloud) for c in app.view.clouds]

def steps(result):
    app.controller.wait_applied(lambda s: s.real is not None and all(m.cloud is not None for m in s.methods), 120)
    result["titles"] = app.call(app.panel_titles).result(10)
    result["before"] = app.call(app.point_counts).result(10)
    ids = app.call(lambda: shown(app)).result(10)
    app.call(lambda: app.set_resolution(1000)).result(10)
    app.controller.wait_applied(lambda s: s.resolution == 1000 and len(s.methods[0].cloud) == 1000, 60)
    result["after"] = app.call(app.point_counts).result(10)
    result["replaced"] = [a != b for a, b in zip(ids, app.call(lambda: shown(app)).result(10))]
    app.call(lambda: app.select("bottle", 1)).result(10)
    app.controller.wait_applied(lambda s: s.selected_class == 2, 60)
    result["titles_after_select"] = app.call(app.panel_titles).result(10)
    result["buttons"] = app.call(lambda: [b.enabled for b in app.view.distill_buttons]).result(10)
    app.call(lambda: app.save_render(out / "render.png", 128)).result(10).result(180)

drive(app, out, steps)
'''

WATCH_DRIVER = r'''
import signal, sys, time
from pathlib import Path
sys.path.insert(0, "tests")
from guidriver import drive
from runfolders import start_watched_run
from dd3d.engine import RunEngine
from viewer.app import LabApp

out, folder = Path(sys.argv[1]), Path(sys.argv[2])
app = LabApp(engine=RunEngine(watch=folder, resolution=200), size=(1280, 720))

def steps(result):
    result["waiting"] = app.controller.wait_applied(lambda s: True, 60).state.value
    process = start_watched_run(folder, iterations=400)
    try:
        first = app.controller.wait_applied(lambda s: s.iteration >= 1 and s.methods[0].cloud is not None, 180)
        later = app.controller.wait_applied(lambda s: s.iteration > first.iteration, 60)
        result["lag"] = time.time() - later.updated_at
        result["iterations"] = [first.iteration, later.iteration]
        result["titles"] = app.call(app.panel_titles).result(10)
        result["status"] = app.call(app.status_lines).result(10)[1]
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        time.sleep(1.5)
        killed = app.engine.snapshots.latest().iteration
        app.call(lambda: app.set_resolution(300)).result(10)
        shown = app.controller.wait_applied(lambda s: s.resolution == 300 and len(s.methods[0].cloud) == 300, 30)
        result["after_kill"] = [killed, shown.iteration, app.call(app.point_counts).result(10)]
    finally:
        process.kill()
        process.wait(30)

drive(app, out, steps)
'''


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    return tiny_runs(tmp_path_factory.mktemp("runs"))


def test_two_runs_show_both_panels_and_the_slider_changes_only_the_generator_run(gui, runs, tmp_path: Path) -> None:
    script = tmp_path / "driver.py"
    script.write_text(RUNS_DRIVER)
    result = run_gui(str(script), str(tmp_path), str(runs["dd3d"]), str(runs["gm"]))
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads((tmp_path / "result.json").read_text())
    assert "error" not in found, found
    real, dd3d, gm = found["titles"]
    assert real.startswith("Real · airplane #0 · 64 pts")
    assert dd3d == "DD3D · cpc 2 · 2 it · 256 pts (regenerated)" and gm == "GM · cpc 1 · 2 it · 64 pts (as stored)"
    assert found["before"] == {"Real": 64, "DD3D": 256, "GM": 64}
    assert found["after"] == {"Real": 64, "DD3D": 1000, "GM": 64}
    assert found["replaced"] == [False, True, False]  # the slider re-uploaded the generator panel only
    assert [t.split(" · ")[1] for t in found["titles_after_select"][:1]] == ["bottle #1"]
    assert found["buttons"] == [False, False, True, False]  # play, step, export, save checkpoint
    from viewer.render import grid_size

    render = load_rgb(tmp_path / "render.png")
    # Real | DD3D | GM | the runs' loss curves
    assert render.shape[1::-1] == grid_size(1, 4, 128) and (render.sum(axis=2) < 600).sum() > 50


def test_a_watched_run_that_advances_shows_the_new_iteration_and_survives_a_kill(gui, tmp_path: Path) -> None:
    script = tmp_path / "driver.py"
    script.write_text(WATCH_DRIVER)
    result = run_gui(str(script), str(tmp_path), str(tmp_path / "live"), timeout=400)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads((tmp_path / "result.json").read_text())
    assert "error" not in found, found
    assert found["waiting"] == "waiting"
    first, later = found["iterations"]
    assert later > first >= 1
    assert found["lag"] < 2.0, found["lag"]  # on screen within 2 s of the checkpoint's writing
    assert found["titles"][1].startswith(f"DD3D · cpc 1 · it {later}/400 · 200 pts (regenerated)")
    status = found["status"]
    assert status.startswith(f"running · it {later}/400 · ") and " ETA " in status and "checkpoint " in status
    killed, shown, counts = found["after_kill"]
    assert shown == killed >= later and counts["run"] == 300  # the lab still follows the slider


@pytest.mark.parametrize("case, fragments", [
    ("foreign", ["not a dd3d distill run folder (no config.yaml)"]),
    ("corrupt", ["generator.pt: not a readable dd3d generator file"]),
    ("classes", ["class list differs from that of"]),
])
def test_a_corrupt_or_foreign_folder_gives_one_line(gui, runs, tmp_path: Path, case: str, fragments: list[str]) -> None:
    other = tmp_path / "other"
    if case == "foreign":
        other.mkdir()
        (other / "notes.txt").write_text("not a run")
    elif case == "corrupt":
        shutil.copytree(runs["dd3d"], other)
        (other / "generator.pt").write_bytes(b"\x00" * 64)
    else:
        other = runs["two"]
    result = run_gui("-m", "viewer.app", "--run", str(runs["dd3d"]), "--run", str(other))
    assert result.returncode == 2
    line = assert_one_line_error(result, f"--run {other}" if case != "corrupt" else str(other), *fragments)
    assert line.startswith("dd3d-lab: error: ")


def test_headless_lab_writes_a_screenshot_and_a_render_of_what_it_distilled(tmp_path: Path) -> None:
    from viewer.headless import xvfb_problem

    if xvfb_problem():
        pytest.skip(xvfb_problem())
    out = tmp_path / "lab-output"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run([sys.executable, "-m", "viewer.app", "--config", "configs/shapes.yaml", *TINY_ARGS,
                             "--size", "1280x720", "--after", "2", "--headless", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=900, env={**env, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"lab screenshot: {out / 'lab.png'}" in result.stdout
    assert f"distilled (dd3d-render): {out / 'render.png'}" in result.stdout
    assert load_rgb(out / "lab.png").shape == (SIZE[1], SIZE[0], 3)
    from viewer.headless import RENDER_TILE
    from viewer.render import grid_size

    render = load_rgb(out / "render.png")
    assert render.shape[1::-1] == grid_size(3, 3, RENDER_TILE)  # airplane, bed, bottle x Real, GM, DD3D
    assert (render.sum(axis=2) < 600).sum() > 300
    summary = json.loads((out / "runs" / "dd3d" / "distill.json").read_text())
    assert summary["iterations"] == 2 and len(summary["loss_curve"]) == 2


def test_headless_lab_without_xvfb_gives_the_one_line_hint(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PATH"] = str(tmp_path)  # no xvfb-run, Xvfb or xauth to be found
    result = subprocess.run([sys.executable, "-m", "viewer.app", "--headless", str(tmp_path / "out")], cwd=REPO,
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2
    assert_one_line_error(result, "no display found", "xvfb-run")
    assert not (tmp_path / "out").exists()

