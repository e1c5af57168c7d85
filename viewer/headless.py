"""The lab on a machine without a display (``dd3d-lab --headless DIR``, what ``make lab`` runs).

The same lab runs in a virtual X display for a bounded number of iterations (``--after N``) and
exits; then ``dd3d-render`` (:mod:`viewer.render`) draws what it distilled. Written into DIR:

- ``lab.png``: the lab window's screenshot at iteration N;
- ``runs/gm``, ``runs/dd3d``: the distilled sets as run folders (``dd3d-lab --run`` reopens them);
- ``render.png``: ``dd3d-render`` of those runs, every class (rows) × Real, GM, DD3D (columns).

Open3D's traps (docs/open3d.md): the X server needs depth 24, must be up before the
first Open3D call of the GUI process, and must outlive that process. So the GUI runs in a child
process under ``xvfb-run`` (which starts Xvfb first and stops it after the child has exited), and
this process never touches Open3D; the render runs in another child without ``DISPLAY``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from dd3d.engine.profile import DEFAULT_RESOLUTION

XVFB_RUN = ["xvfb-run", "-a", "-s", "-screen 0 1600x900x24"]
LAB_TIMEOUT_S = 900  # the bounded run: start-up, N iterations, screenshot, run folders
RENDER_TIMEOUT_S = 600
RENDER_TILE = 240


def xvfb_problem() -> str | None:
    """None when a virtual display can be started here, else what is missing."""
    missing = [tool for tool in ("xvfb-run", "Xvfb", "xauth") if shutil.which(tool) is None]
    return f"not installed: {', '.join(missing)} (Debian: apt-get install xvfb xauth)" if missing else None


def _lab_command(args: argparse.Namespace, out: Path) -> list[str]:
    """The child's command line: the lab as asked for, in screenshot mode, saving its runs."""
    command = [sys.executable, "-m", "viewer.app", "--config", str(args.config), "--points", str(args.points),
               "--size", args.size, "--renderer", args.renderer, "--screenshot", str(out / "lab.png"),
               "--after", str(args.after), "--save-runs", str(out / "runs")]
    for item in args.overrides:
        command += ["--set", item]
    return command + (["--full"] if args.full else [])


def _fail(message: str) -> int:
    print(f"dd3d-lab: error: {message}", file=sys.stderr)
    return 2


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def headless_lab(args: argparse.Namespace) -> int:
    """Run the lab under Xvfb for ``args.after`` iterations, then ``dd3d-render`` its runs; print the
    paths of the screenshot and the figure. 0 on success, 2 with one line otherwise."""
    if args.runs or args.watch is not None:
        return _fail("--headless runs the lab's own training; for run folders use dd3d-render --run DIR ...")
    out = args.headless
    out.mkdir(parents=True, exist_ok=True)
    print(f"no display: running the lab in a virtual display (Xvfb) for {args.after} iterations...", flush=True)
    with tempfile.TemporaryDirectory(prefix="xdg-") as runtime:  # mode 700; silences a Mesa warning
        env = {**os.environ, "XDG_RUNTIME_DIR": os.environ.get("XDG_RUNTIME_DIR") or runtime}
        try:
            lab = subprocess.run([*XVFB_RUN, *_lab_command(args, out)], capture_output=True, text=True,
                                 timeout=LAB_TIMEOUT_S, env=env)
        except subprocess.TimeoutExpired:
            return _fail(f"the headless lab did not finish {args.after} iterations within {LAB_TIMEOUT_S} s")
    if lab.returncode != 0:
        return _fail(f"the headless lab failed: {_last_line(lab.stderr) or f'exit status {lab.returncode}'}")
    runs = [out / "runs" / "gm", out / "runs" / "dd3d"]
    classes = json.loads((runs[1] / "distill.json").read_text())["class_names"]
    plain = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    render = [sys.executable, "-m", "viewer.render", *(a for run in runs for a in ("--run", str(run))),
              "--classes", ",".join(classes), "--points", str(min(args.points, DEFAULT_RESOLUTION)), "--tile", str(RENDER_TILE),
              "--out", str(out / "render.png")]
    try:
        figure = subprocess.run(render, capture_output=True, text=True, timeout=RENDER_TIMEOUT_S, env=plain)
    except subprocess.TimeoutExpired:
        return _fail(f"dd3d-render did not finish within {RENDER_TIMEOUT_S} s")
    if figure.returncode != 0:
        return _fail(_last_line(figure.stderr) or f"dd3d-render failed with exit status {figure.returncode}")
    print(f"lab screenshot: {out / 'lab.png'}")
    print(f"distilled (dd3d-render): {out / 'render.png'}")
    print(f"run folders (open with dd3d-lab --run): {runs[0]} {runs[1]}")
    return 0
