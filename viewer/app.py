"""``dd3d-lab``: the Open3D desktop lab (engine + window + controller), and its scripting API.

``dd3d-lab --config C`` opens the window and distils with the lab profile
(:data:`dd3d.engine.LAB_PROFILE`; ``--full`` keeps the config's own settings). ``dd3d-lab --run DIR
[--run DIR ...]`` shows finished ``dd3d distill`` run folders beside the real data of their config,
``dd3d-lab --watch DIR`` follows a run that another process is writing
(:class:`dd3d.engine.RunEngine`); neither trains. The window renders with Filament's OpenGL backend
(:data:`DEFAULT_RENDERER`, ``--renderer`` to change it). ``--screenshot FILE --after N`` waits for
N iterations (run folders: for their clouds), saves a screenshot of the whole window and exits 0.
Without a display it prints one line saying how to render headless and exits 2 — before Open3D's
``gui`` module is imported, because opening a window without a display kills the process
(docs/open3d.md) — unless ``--headless DIR`` is given and Xvfb is installed: then the
same lab runs in a virtual display for N iterations and writes the screenshot and a ``dd3d-render``
figure of what it distilled into DIR (:mod:`viewer.headless`, what ``make lab`` does on a server).

:class:`LabApp` is also the API used by tests and benchmarks: its methods run on the GUI main
thread; from another thread wrap them with :meth:`LabApp.call`.
"""
from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence, TypeVar

from dd3d.config import Config
from dd3d.engine import DEFAULT_RESOLUTION, Engine, Mode, RunEngine, RunFolder, Snapshot, State, load_lab_config
from dd3d.errors import DD3DError
from viewer.controller import MIN_VIEW_INTERVAL, PANELS, Controller

if TYPE_CHECKING:
    from PIL import Image

T = TypeVar("T")
NO_DISPLAY = ('dd3d-lab: no display found (DISPLAY is unset or unreachable); render figures headless with '
              '`dd3d-render --run DIR --classes a,b --out fig.png`, or run the lab in a virtual display: '
              '`xvfb-run -a -s "-screen 0 1600x900x24" dd3d-lab --config ... --screenshot lab.png`')
SETTLE_INTERVAL_S = 0.25  # between screen grabs while waiting for the last frame to be presented
SETTLE_GRABS = 3
SETTLE_TIMEOUT_S = 20.0
#: Filament backends of Open3D's windows (``EngineInstance::RenderingType`` of Open3D's C++ API)
RENDERERS = {"default": 0, "opengl": 1, "vulkan": 2}
#: OpenGL: Open3D 0.20 picks Vulkan, and Mesa 22.3's software Vulkan driver (lavapipe, Debian 12)
#: recompiles and leaks a shader on every pipeline bind: ~1 MB and ~30 ms of main-thread wait per
#: compile, 2 per frame plus 2 per 3D panel redrawn (docs/lab.md, "Renderer")
DEFAULT_RENDERER = "opengl"
_SELECT_BACKEND = "_ZN6open3d13visualization9rendering14EngineInstance13SelectBackendENS1_13RenderingTypeE"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dd3d-lab",
        description="Watch point cloud dataset distillation live: Real | GM | DD3D panels, the rotator "
                    "canonicalising clouds, loss curves and a DD3D resolution slider.")
    parser.add_argument("--config", type=Path, default=Path("configs/shapes.yaml"), metavar="FILE",
                        help="YAML config (default: configs/shapes.yaml)")
    parser.add_argument("--run", dest="runs", type=Path, action="append", default=[], metavar="DIR",
                        help="show a finished dd3d distill run folder instead of training (repeatable: one "
                             "panel each, beside the real data of the run's config)")
    parser.add_argument("--watch", type=Path, metavar="DIR",
                        help="follow a dd3d distill run folder that another process is writing")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value after the lab profile (repeatable; with --run/--watch: "
                             "of the runs' configs, e.g. data.root)")
    parser.add_argument("--full", action="store_true",
                        help="use the config's distillation settings instead of the faster lab profile")
    parser.add_argument("--points", type=int, default=DEFAULT_RESOLUTION,
                        help=f"initial points of the DD3D clouds (default {DEFAULT_RESOLUTION})")
    parser.add_argument("--checkpoint", type=Path, metavar="FILE",
                        help="save a checkpoint here every distill.checkpoint_every iterations")
    parser.add_argument("--resume", type=Path, metavar="FILE", help="continue from a lab checkpoint")
    parser.add_argument("--screenshot", type=Path, metavar="FILE",
                        help="save a screenshot of the window after --after iterations and exit")
    parser.add_argument("--after", type=int, default=10, metavar="N", help="iterations before --screenshot")
    parser.add_argument("--save-runs", type=Path, metavar="DIR",
                        help="with --screenshot: also save GM and DD3D as run folders DIR/gm, DIR/dd3d")
    parser.add_argument("--headless", type=Path, metavar="DIR",
                        help="without a display (and with Xvfb installed): run --after N iterations in a "
                             "virtual display, write DIR/lab.png and a dd3d-render figure DIR/render.png")
    parser.add_argument("--size", default="1600x900", metavar="WxH", help="window size (default 1600x900)")
    parser.add_argument("--refresh", type=float, default=MIN_VIEW_INTERVAL, metavar="SECONDS",
                        help=f"minimum seconds between redraws while training (default {MIN_VIEW_INTERVAL}); "
                             "raise it on machines without a GPU")
    parser.add_argument("--renderer", choices=sorted(RENDERERS), default=DEFAULT_RENDERER,
                        help=f"Filament backend of the window (default {DEFAULT_RENDERER}; Open3D's own default "
                             "is Vulkan, which leaks memory per frame on Mesa's software driver lavapipe 22.3)")
    return parser


def has_display() -> bool:
    """True when ``DISPLAY`` names an X server that accepts a connection (checked with Xlib, so a
    stale ``DISPLAY`` is caught before Open3D's gui could abort the process)."""
    if not os.environ.get("DISPLAY"):
        return False
    name = ctypes.util.find_library("X11")
    if name is None:  # cannot check without Xlib: trust DISPLAY
        return True
    xlib = ctypes.CDLL(name)
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    display = xlib.XOpenDisplay(None)
    if not display:
        return False
    xlib.XCloseDisplay(display)
    return True


def select_renderer(name: str) -> bool:
    """Make Open3D render windows with Filament's ``name`` backend (see :data:`RENDERERS`); call it
    before the gui application is initialised. Open3D's Python API does not expose the choice, so
    this calls the C++ ``EngineInstance::SelectBackend`` of ``libOpen3D.so``; returns False (and
    Open3D keeps its default) where that library or symbol is missing."""
    import open3d

    if RENDERERS[name] == RENDERERS["default"]:
        return True
    library = next(iter(sorted(Path(open3d.__file__).parent.glob("libOpen3D.so*"))), None)
    try:
        select = getattr(ctypes.CDLL(str(library)), _SELECT_BACKEND)
    except (OSError, AttributeError, TypeError):
        return False
    select.argtypes, select.restype = [ctypes.c_int], None
    select(RENDERERS[name])
    return True


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise DD3DError(f"--size: got {text!r}, expected WIDTHxHEIGHT, e.g. 1600x900") from None
    if width < 640 or height < 480:
        raise DD3DError(f"--size: got {text!r}, expected at least 640x480")
    return width, height


class LabApp:
    """The lab: an engine, a :class:`~viewer.window.LabWindow` and their controller.

    The engine is an :class:`~dd3d.engine.Engine` training ``cfg``, or the given ``engine`` (a
    :class:`~dd3d.engine.RunEngine` showing run folders; ``cfg``, ``autosave``, ``resume`` and
    ``pause_at`` then play no role).
    """

    def __init__(self, cfg: Config | None = None, title: str = "dd3d-lab", resolution: int = DEFAULT_RESOLUTION,
                 size: tuple[int, int] = (1600, 900), autosave: Path | None = None, resume: Path | None = None,
                 pause_at: int | None = None, refresh: float = MIN_VIEW_INTERVAL,
                 renderer: str = DEFAULT_RENDERER, engine: RunEngine | None = None) -> None:
        import open3d.visualization.gui as gui  # only now: a display exists (see the module docstring)

        from viewer.window import RUNS_SLIDER_LABEL, SLIDER_LABEL, LabWindow, guarded

        opengl = select_renderer(renderer) and renderer == "opengl"
        self._app = gui.Application.instance
        self._app.initialize()
        self._guarded = guarded
        self.engine: Engine | RunEngine = engine if engine is not None else Engine(
            cfg, resolution, autosave=autosave, resume=resume, pause_at=pause_at)
        panels = PANELS if engine is None else engine.panel_names
        self.view = LabWindow(title, *size, resolution=resolution, panels=panels,
                              slider_label=SLIDER_LABEL if engine is None else RUNS_SLIDER_LABEL,
                              flip_images=opengl)
        self.controller = Controller(self.engine, self._post, self.view.apply, self.view.show_message, refresh,
                                     panels)
        v, c = self.view, self.controller
        v.on_select, v.on_resolution, v.on_play, v.on_step = c.select, c.set_resolution, c.play, c.step
        v.on_export, v.on_save_checkpoint, v.on_save_render = c.export, c.save_checkpoint, self._save_render_reporting
        v.window.set_on_close(self._on_close)
        self.exit_code = 0
        self._quitting = False

    # ------------------------------------------------------------------------------ running

    def run(self) -> int:
        """Start the engine and run the event loop until the window closes; returns the exit code."""
        self.engine.start()
        self.controller.start()
        self._app.run()
        self._shutdown()
        return self.exit_code

    def quit(self, code: int = 0) -> None:
        """Stop the engine, then end the event loop once the closures already posted have run
        (a closure still queued when Open3D's application is destroyed crashes the exit)."""
        self.exit_code = code
        self._quitting = True
        self._shutdown()
        self._app.post_to_main_thread(self.view.window, self._app.quit)

    def call(self, fn: Callable[[], T]) -> "Future[T]":
        """Run ``fn`` on the main thread (from any other thread); the future holds its result."""
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                future.set_exception(exc)

        self._app.post_to_main_thread(self.view.window, run)
        return future

    def _post(self, fn: Callable[[], None]) -> None:
        self._app.post_to_main_thread(self.view.window, self._guarded(fn))

    def _on_close(self) -> bool:
        """The window's close button: quit through :meth:`quit` (the window closes right after)."""
        if self._quitting:
            return True
        self.quit(self.exit_code)
        return False

    def _shutdown(self) -> None:
        self.controller.stop()
        if not self.engine.stop():  # still loading data: let it finish rather than exit under torch
            self.engine.stop(timeout=120)

    # ---------------------------------------------------------------------- API (main thread)

    def set_resolution(self, points: int) -> None:
        """Move the DD3D resolution slider to ``points``."""
        self.view.set_resolution(points)

    def dd3d_point_count(self) -> int:
        """Points in the DD3D panel now."""
        return self.view.point_count("DD3D")

    def point_counts(self) -> dict[str, int]:
        """Points in each top panel now, by panel name."""
        return {name: self.view.point_count(name) for name in self.view.panels}

    def panel_titles(self) -> list[str]:
        return [t.text for t in self.view.titles]

    def status_lines(self) -> tuple[str, str]:
        """(message, status) as the side panel shows them now, e.g. an engine error's one line and
        ``error · it 12/400 · ...``."""
        return self.view.message.text, self.view.status.text

    def geometry_count(self) -> int:
        """Geometries in all the window's scenes now (constant while the lab runs: 6)."""
        return self.view.geometry_count()

    def select(self, class_name_or_index: str | int, sample: int = 0) -> None:
        """Pick a class (name or index) and a sample index, as with the class picker."""
        names = self.engine.snapshots.latest().class_names
        index = names.index(class_name_or_index) if isinstance(class_name_or_index, str) else class_name_or_index
        self.view.select(index, sample)

    def save_render(self, path: Path, tile: int = 400) -> "Future[Path]":
        """The top panels (Real | GM | DD3D, or Real and the runs) and the loss panel as a paper-ready PNG/PDF
        (fixed camera, white background, exact colours), rendered offscreen in a child process; the future
        resolves to ``path``."""
        from viewer.render import render_in_subprocess, write_panels

        view = self.view.view
        if view is None or not view.snapshot.class_names:
            raise DD3DError("nothing to render yet")
        snap = view.snapshot
        panels = Path(tempfile.mkdtemp(prefix="dd3d-lab-render-")) / "panels.npz"
        columns = list(self.view.panels)
        if snap.mode != Mode.LAB:  # the runs' labels (a watched run's method is known once it is read)
            columns[1:1 + len(snap.methods)] = [m.label or m.name.upper() for m in snap.methods]
        write_panels(panels, self.view.panel_clouds(), snap.class_names[snap.selected_class], columns,
                     list(view.legend), [(m.name, m.losses) for m in snap.methods])
        future: Future[Path] = Future()

        def work() -> None:
            try:
                future.set_result(render_in_subprocess(panels, Path(path), tile))
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                future.set_exception(exc)
            finally:
                shutil.rmtree(panels.parent, ignore_errors=True)

        threading.Thread(target=work, name="dd3d-lab-render", daemon=True).start()
        return future

    def _save_render_reporting(self, path: Path, tile: int) -> None:
        self.view.show_message(f"rendering {path}...")

        def done(f: "Future[Path]") -> None:
            error = f.exception()
            text = f"render saved to {path}" if error is None else f"save render failed: {error}"
            self._post(lambda: self.view.show_message(text, error is not None))

        try:
            self.save_render(path, tile).add_done_callback(done)
        except DD3DError as exc:
            self.view.show_message(f"save render failed: {exc}", True)

    def screenshot(self, path: Path) -> Path:
        """Save the whole window as it is on screen now to ``path`` (PNG)."""
        return _save_png(self._grab(self._bbox()), path)

    def _bbox(self) -> tuple[int, int, int, int]:
        frame, size = self.view.window.os_frame, self.view.window.size
        return frame.x, frame.y, frame.x + size.width, frame.y + size.height

    @staticmethod
    def _grab(bbox: tuple[int, int, int, int]) -> "Image.Image":
        """The X display's pixels in ``bbox`` (any thread: a separate X connection)."""
        from PIL import ImageGrab

        return ImageGrab.grab(bbox=bbox, xdisplay=os.environ.get("DISPLAY")).convert("RGB")

    # ------------------------------------------------------------------------- screenshot mode

    def screenshot_after(self, iterations: int, path: Path, save_runs: Path | None = None) -> None:
        """Once the window shows ``iterations`` iterations (run folders: all their clouds; a watched
        run: ``iterations`` or finished) and the screen has settled, save a screenshot and quit
        (waits in a helper thread; the lab's engine pauses there in screenshot mode). ``save_runs``:
        then also write the lab's methods as run folders there (:meth:`Engine.save_runs`).

        The renderer presents frames asynchronously, so the grab is repeated until
        :data:`SETTLE_GRABS` consecutive grabs are identical (bounded by :data:`SETTLE_TIMEOUT_S`).
        """

        def ready(s: Snapshot) -> bool:
            if s.state in (State.ERROR, State.STOPPED):
                return True
            if s.real is None or s.state == State.STARTING:
                return False
            clouds = all(m.cloud is not None for m in s.methods)
            if s.mode == Mode.RUNS:
                return clouds
            if s.mode == Mode.WATCH:
                return bool(s.methods) and clouds and (s.iteration >= iterations or s.state == State.FINISHED)
            return not s.methods or (s.iteration >= iterations and clouds)

        def settled_image(bbox: tuple[int, int, int, int]) -> "Image.Image":
            deadline = time.monotonic() + SETTLE_TIMEOUT_S
            time.sleep(SETTLE_INTERVAL_S)
            grabs = [self._grab(bbox)]
            while time.monotonic() < deadline and not (
                    len(grabs) >= SETTLE_GRABS and all(g.tobytes() == grabs[-1].tobytes() for g in grabs[-SETTLE_GRABS:])):
                time.sleep(SETTLE_INTERVAL_S)
                grabs = [*grabs[-SETTLE_GRABS:], self._grab(bbox)]
            return grabs[-1]

        def wait() -> None:
            snap = None
            while snap is None:
                snap = self.controller.wait_applied(ready, 1.0)
            if snap.state == State.ERROR:
                print(f"dd3d-lab: error: {snap.message}", file=sys.stderr)
                self._post(lambda: self.quit(2))
                return
            try:
                image = settled_image(self.call(self._bbox).result(30))
                print(f"screenshot at iteration {snap.iteration} -> {_save_png(image, path)}")
                code = 0
            except (OSError, ValueError) as exc:
                print(f"dd3d-lab: error: cannot save the screenshot {path}: {exc}", file=sys.stderr)
                code = 1
            if code == 0 and save_runs is not None and isinstance(self.engine, Engine):
                try:
                    print(f"run folders -> {self.engine.save_runs(save_runs).result(600)}")
                except (DD3DError, OSError) as exc:
                    print(f"dd3d-lab: error: cannot save the run folders {save_runs}: {exc}", file=sys.stderr)
                    code = 1
            self._post(lambda: self.quit(code))

        threading.Thread(target=wait, name="dd3d-lab-screenshot", daemon=True).start()


def _save_png(image: "Image.Image", path: Path) -> Path:
    from dd3d.io import atomic_path

    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return Path(path)


def _run_engine(args: argparse.Namespace) -> RunEngine | None:
    """The engine of ``--run`` / ``--watch`` (every run folder read and checked here, before any
    window opens), or None for the lab's own training."""
    if args.runs and args.watch is not None:
        raise DD3DError("--run and --watch: give finished run folders or one folder to watch, not both")
    if args.runs:
        return RunEngine([RunFolder.open(d, args.overrides) for d in args.runs], resolution=args.points)
    if args.watch is not None:
        if args.watch.exists() and not args.watch.is_dir():
            raise DD3DError(f"--watch {args.watch}: not a folder (expected the --out DIR of a dd3d distill run)")
        return RunEngine(watch=args.watch, resolution=args.points, overrides=args.overrides)
    return None


def _title(args: argparse.Namespace) -> str:
    if args.runs:
        return "dd3d-lab — " + ", ".join(str(d) for d in args.runs)
    return f"dd3d-lab — watching {args.watch}" if args.watch is not None else f"dd3d-lab — {args.config}"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not has_display():
        from viewer.headless import headless_lab, xvfb_problem

        if args.headless is not None and xvfb_problem() is None:
            return headless_lab(args)
        print(NO_DISPLAY, file=sys.stderr)
        return 2
    try:
        size = _size(args.size)
        if args.after < 0:
            raise DD3DError(f"--after: got {args.after}, expected an integer >= 0")
        if args.points < 1:
            raise DD3DError(f"--points: got {args.points}, expected an integer >= 1")
        if args.refresh < 0:
            raise DD3DError(f"--refresh: got {args.refresh}, expected seconds >= 0")
        engine = _run_engine(args)
        cfg = load_lab_config(args.config, args.overrides, profile=not args.full) if engine is None else None
    except DD3DError as exc:
        print(f"dd3d-lab: error: {exc}", file=sys.stderr)
        return 2
    app = LabApp(cfg, title=_title(args), resolution=args.points, size=size,
                 autosave=args.checkpoint, resume=args.resume,
                 pause_at=args.after if args.screenshot is not None else None, refresh=args.refresh,
                 renderer=args.renderer, engine=engine)
    if args.screenshot is not None:
        app.screenshot_after(args.after, args.screenshot, args.save_runs)
    return app.run()


if __name__ == "__main__":
    sys.exit(main())
