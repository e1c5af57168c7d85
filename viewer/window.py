"""The lab window: layout and widgets, main thread only (Open3D ``gui``).

Layout: synchronised panels on top — Real | GM | DD3D for the lab's own training, Real and one per
run folder for ``--run`` / ``--watch`` — the canonicalisation view (randomly
rotated → PCA → rotator, side by side in one scene) and the loss curves below, and a side panel
with the class picker, sample index, resolution slider (of DD3D / of the generator runs), point size, play/pause/step, "Save
render", "Export synthetic set", "Save checkpoint", the part legend and the status line.

Widget callbacks only call the ``on_*`` hooks (set by the app) or change display settings; all
data arrives through :meth:`LabWindow.apply`. Every scene keeps a fixed set of geometry names,
updated in place when the point count is unchanged and replaced otherwise (bounded add/remove).
"""
from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np
import open3d as o3d
import open3d.visualization.gui as gui
import open3d.visualization.rendering as rendering

from dd3d.engine import DEFAULT_RESOLUTION, Cloud
from viewer import scene
from viewer.controller import PANELS, PanelView, ViewModel

MIN_POINTS, MAX_POINTS = 64, 8192
DEFAULT_POINT_SIZE = 3.0
LEGEND_ROWS = 8
CANONICAL_OFFSET = 2.1  # x spacing of the three canonicalisation stages
CANONICAL_EYE = np.array([0.0, 1.2, 5.6], dtype=np.float32)
SIDE_WIDTH_EM = 22
_UPDATE_FLAGS = rendering.Scene.UPDATE_POINTS_FLAG | rendering.Scene.UPDATE_COLORS_FLAG
_UNIT_BOX = o3d.geometry.AxisAlignedBoundingBox([-1.0, -1.0, -1.0], [1.0, 1.0, 1.0])


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a GUI callback so that an exception is printed instead of escaping into Open3D."""

    def wrapper(*args: Any) -> Any:
        try:
            return fn(*args)
        except Exception:  # noqa: BLE001 - an escaping exception would abort the event loop
            traceback.print_exc(file=sys.stderr)
            return None

    return wrapper


class SceneCloud:
    """One named cloud in a scene: same size -> updated in place, else removed and added again."""

    def __init__(self, scene: rendering.Open3DScene, name: str, offset: float = 0.0) -> None:
        self.scene, self.name, self.offset = scene, name, offset
        self.cloud: Cloud | None = None
        self.count = 0
        self._uploaded: o3d.t.geometry.PointCloud | None = None  # kept alive until the renderer copied it

    def show(self, panel: PanelView, mat: rendering.MaterialRecord) -> bool:
        """Show the panel's cloud; False when it is the one already shown."""
        if panel.cloud is self.cloud:
            return False
        self.cloud = panel.cloud
        n = 0 if panel.cloud is None else len(panel.cloud)
        if n == 0:
            if self.scene.has_geometry(self.name):
                self.scene.remove_geometry(self.name)
        else:
            points = panel.points + np.array([self.offset, 0.0, 0.0], dtype=np.float32)
            pc = scene.point_cloud(points, panel.colors)
            # the renderer reads the tensors after this call returns: ``_uploaded`` keeps them alive
            if n == self.count and self.scene.has_geometry(self.name):
                self.scene.scene.update_geometry(self.name, pc, _UPDATE_FLAGS)
            else:
                if self.scene.has_geometry(self.name):
                    self.scene.remove_geometry(self.name)
                self.scene.add_geometry(self.name, pc, mat)
            self._uploaded = pc
        self.count = n
        return True


SLIDER_LABEL = "DD3D points (GM keeps its size)"
RUNS_SLIDER_LABEL = "Generator points (stored sets keep their size)"


class LabWindow:
    """The lab's window. Hooks ``on_select``, ``on_resolution``, ``on_play``, ``on_step``,
    ``on_save_render``, ``on_export``, ``on_save_checkpoint`` are set by the app; ``panels`` names
    the top panels (Real first), ``slider_label`` says what the resolution slider changes."""

    def __init__(self, title: str, width: int = 1600, height: int = 900, resolution: int = DEFAULT_RESOLUTION,
                 panels: tuple[str, ...] = PANELS, slider_label: str = SLIDER_LABEL, flip_images: bool = False) -> None:
        self.app = gui.Application.instance
        # Filament's OpenGL backend shows an ImageWidget's image upside down (seen with Open3D 0.20 on
        # Mesa; the Vulkan backend shows it as given): the app sets this when it selected OpenGL
        self.flip_images = flip_images
        self.window = self.app.create_window(title, width, height, 0, 0)
        w, em = self.window, self.window.theme.font_size
        self.em = em
        self.point_size = DEFAULT_POINT_SIZE
        self.material = scene.material(self.point_size * w.scaling)
        self.view: ViewModel | None = None
        self._class_names: tuple[str, ...] = ()
        self._running = False

        noop = lambda *args: None  # noqa: E731 - replaced by the app
        self.on_select: Callable[[int, int], None] = noop
        self.on_resolution: Callable[[int], None] = noop
        self.on_play: Callable[[bool], None] = noop
        self.on_step: Callable[[], None] = noop
        self.on_save_render: Callable[[Path, int], None] = noop
        self.on_export: Callable[[Path], None] = noop
        self.on_save_checkpoint: Callable[[Path], None] = noop

        self._eyes: dict[gui.SceneWidget, np.ndarray] = {}
        self.panels = tuple(panels)
        self.scenes = [self._scene_widget() for _ in self.panels]
        self.titles = [self._title(name) for name in self.panels]
        self.clouds = [SceneCloud(s.scene, "cloud") for s in self.scenes]
        for widget in self.scenes:
            widget.set_on_mouse(self._sync_from(widget))
        self.canonical_scene = self._scene_widget(CANONICAL_EYE)
        self.canonical_title = self._title("Canonicalisation")
        self.canonical_clouds = [SceneCloud(self.canonical_scene.scene, f"stage{i}", (i - 1) * CANONICAL_OFFSET)
                                 for i in range(3)]
        self.loss_title = self._title("Matching loss")
        self.loss_image = gui.ImageWidget(o3d.geometry.Image(np.full((8, 8, 3), 255, np.uint8)))
        w.add_child(self.loss_image)
        self.side = self._side_panel(resolution, slider_label)
        w.add_child(self.side)
        w.set_on_layout(guarded(self._layout))

    # ---------------------------------------------------------------------------------- building

    def _scene_widget(self, eye: np.ndarray = scene.EYE) -> gui.SceneWidget:
        widget = gui.SceneWidget()
        widget.scene = rendering.Open3DScene(self.window.renderer)
        scene.prepare_scene(widget.scene)
        widget.setup_camera(scene.FOV, _UNIT_BOX, scene.CENTER)
        widget.look_at(scene.CENTER, eye, scene.UP)
        widget.enable_scene_caching(True)  # redrawn only when its clouds change (force_redraw) or on interaction
        self.window.add_child(widget)
        self._eyes[widget] = eye
        return widget

    def _aim(self, widget: gui.SceneWidget) -> None:
        """The fixed camera for the widget's current size (field of view on its shorter side)."""
        frame = widget.frame
        scene.aim(widget.scene.camera, frame.width, frame.height, self._eyes[widget])
        widget.force_redraw()

    def _title(self, text: str) -> gui.Label:
        label = gui.Label(text)
        self.window.add_child(label)
        return label

    def _side_panel(self, resolution: int, slider_label: str) -> gui.Vert:
        em = self.em
        panel = gui.Vert(0.4 * em, gui.Margins(0.6 * em, 0.6 * em, 0.6 * em, 0.6 * em))

        self.class_box = gui.Combobox()
        self.class_box.set_on_selection_changed(guarded(lambda text, index: self._selection_changed()))
        self.sample_edit = gui.NumberEdit(gui.NumberEdit.INT)
        self.sample_edit.set_limits(0, 0)
        self.sample_edit.set_on_value_changed(guarded(lambda value: self._selection_changed()))
        self.sample_of = gui.Label("of 1")
        panel.add_child(gui.Label("Class"))
        panel.add_child(self.class_box)
        row = gui.Horiz(0.5 * em)
        row.add_child(gui.Label("Sample"))
        row.add_child(self.sample_edit)
        row.add_child(self.sample_of)
        panel.add_child(row)

        self.resolution_slider = gui.Slider(gui.Slider.INT)
        self.resolution_slider.set_limits(MIN_POINTS, MAX_POINTS)
        self.resolution_slider.int_value = min(max(resolution, MIN_POINTS), MAX_POINTS)
        self.resolution_slider.set_on_value_changed(guarded(lambda value: self.on_resolution(int(value))))
        panel.add_child(gui.Label(slider_label))
        panel.add_child(self.resolution_slider)

        size = gui.Slider(gui.Slider.DOUBLE)
        size.set_limits(1.0, 10.0)
        size.double_value = self.point_size
        size.set_on_value_changed(guarded(self._point_size_changed))
        panel.add_child(gui.Label("Point size"))
        panel.add_child(size)

        self.play_button = gui.Button("Pause")
        self.play_button.set_on_clicked(guarded(lambda: self.on_play(not self._running)))
        step = gui.Button("Step")
        step.set_on_clicked(guarded(lambda: self.on_step()))
        row = gui.Horiz(0.5 * em)
        row.add_child(self.play_button)
        row.add_child(step)
        panel.add_child(row)
        self.distill_buttons = [self.play_button, step]  # disabled where nothing is distilled (+ export, save)

        self.render_size = gui.NumberEdit(gui.NumberEdit.INT)
        self.render_size.set_limits(64, 4096)
        self.render_size.int_value = scene.TILE
        row = gui.Horiz(0.5 * em)
        row.add_child(gui.Label("Render tile (px)"))
        row.add_child(self.render_size)
        panel.add_child(row)
        for text, handler in (("Save render...", self._ask_save_render), ("Export synthetic set...", self._ask_export),
                              ("Save checkpoint...", self._ask_save_checkpoint)):
            button = gui.Button(text)
            button.set_on_clicked(guarded(handler))
            panel.add_child(button)
            if handler != self._ask_save_render:
                self.distill_buttons.append(button)
            if handler == self._ask_export:
                self.export_button = button

        self.legend_title = gui.Label("Parts")
        panel.add_child(self.legend_title)
        self.legend_rows = [gui.Label("") for _ in range(LEGEND_ROWS)]
        for label in self.legend_rows:
            panel.add_child(label)
        panel.add_stretch()
        self.message = gui.Label("")
        self.status = gui.Label("starting...")
        panel.add_child(self.message)
        panel.add_child(self.status)
        return panel

    def _layout(self, context: gui.LayoutContext) -> None:
        r = self.window.content_rect
        side_w = int(SIDE_WIDTH_EM * self.em)
        self.side.frame = gui.Rect(r.get_right() - side_w, r.y, side_w, r.height)
        x, y, width, height = r.x, r.y, r.width - side_w, r.height
        title_h = int(1.6 * self.em)
        top_h = int(height * 0.6)
        col = width // 3  # bottom row: canonicalisation view over two columns, loss curves in the third
        col_top = width // len(self.scenes)
        for i, (title, widget) in enumerate(zip(self.titles, self.scenes)):
            title.frame = gui.Rect(x + i * col_top, y, col_top, title_h)
            widget.frame = gui.Rect(x + i * col_top, y + title_h, col_top - 2, top_h - title_h)
        bottom, rest = y + top_h, height - top_h
        self.canonical_title.frame = gui.Rect(x, bottom, 2 * col, title_h)
        self.canonical_scene.frame = gui.Rect(x, bottom + title_h, 2 * col - 2, rest - title_h)
        self.loss_title.frame = gui.Rect(x + 2 * col, bottom, width - 2 * col, title_h)
        self.loss_image.frame = gui.Rect(x + 2 * col, bottom + title_h, width - 2 * col, rest - title_h)
        for widget in (*self.scenes, self.canonical_scene):
            self._aim(widget)

    # ------------------------------------------------------------------------------- callbacks

    def _selection_changed(self) -> None:
        self.on_select(max(self.class_box.selected_index, 0), int(self.sample_edit.int_value))

    def _point_size_changed(self, value: float) -> None:
        self.point_size = float(value)
        self.material = scene.material(self.point_size * self.window.scaling)
        for widget in (*self.scenes, self.canonical_scene):
            widget.scene.update_material(self.material)
        self.window.post_redraw()

    def _sync_from(self, source: gui.SceneWidget) -> Callable[[gui.MouseEvent], int]:
        """Mouse handler: after the widget has moved its camera, copy it to the other panels."""

        def sync() -> None:
            for widget in self.scenes:
                if widget is not source:
                    widget.scene.camera.copy_from(source.scene.camera)
                    widget.force_redraw()

        def on_mouse(event: gui.MouseEvent) -> int:
            if event.type in (gui.MouseEvent.Type.DRAG, gui.MouseEvent.Type.WHEEL, gui.MouseEvent.Type.BUTTON_UP):
                self.app.post_to_main_thread(self.window, guarded(sync))
            return gui.Widget.EventCallbackResult.IGNORED

        return on_mouse

    def _ask_path(self, title: str, filters: list[tuple[str, str]], default: str, then: Callable[[Path], None]) -> None:
        dialog = gui.FileDialog(gui.FileDialog.SAVE, title, self.window.theme)
        for ext, text in filters:
            dialog.add_filter(ext, text)
        dialog.set_path(str(Path.cwd() / default))
        dialog.set_on_cancel(guarded(self.window.close_dialog))

        def done(path: str) -> None:
            self.window.close_dialog()
            then(Path(path))

        dialog.set_on_done(guarded(done))
        self.window.show_dialog(dialog)

    def _default_name(self, stem: str, ext: str) -> str:
        snap = self.view.snapshot if self.view else None
        if snap is None or not snap.class_names:
            return f"{stem}{ext}"
        return f"{stem}-{snap.class_names[snap.selected_class]}-it{snap.iteration}{ext}"

    def _ask_save_render(self) -> None:
        self._ask_path("Save render", [(".png", "PNG image"), (".pdf", "PDF")], self._default_name("lab", ".png"),
                       lambda p: self.on_save_render(p, int(self.render_size.int_value)))

    def _ask_export(self) -> None:
        self._ask_path("Export synthetic set", [(".h5", "synthetic set (ModelNet h5 layout)")],
                       self._default_name("dd3d-synthetic", ".h5"), self.on_export)

    def _ask_save_checkpoint(self) -> None:
        self._ask_path("Save checkpoint", [(".pt", "dd3d-lab checkpoint")], self._default_name("lab", ".pt"),
                       self.on_save_checkpoint)

    # -------------------------------------------------------------------------------- updates

    def show_message(self, text: str, is_error: bool = False) -> None:
        self.message.text = text
        self.message.text_color = gui.Color(0.85, 0.1, 0.1) if is_error else gui.Color(0.75, 0.75, 0.75)
        self.window.set_needs_layout()

    def apply(self, view: ViewModel) -> None:
        """Show a view model (main thread)."""
        snap = view.snapshot
        self.view = view
        if snap.class_names != self._class_names:
            self.class_box.clear_items()
            for name in snap.class_names:
                self.class_box.add_item(name)
            self._class_names = snap.class_names
            self.class_box.selected_index = snap.selected_class
        if self._class_names:
            self.sample_edit.set_limits(0, max(snap.samples_in_class - 1, 0))
            self.sample_of.text = f"of {snap.samples_in_class}"
        changed = [cloud.show(panel, self.material) for cloud, panel in zip(self.clouds, view.panels)]
        for title, panel in zip(self.titles, view.panels):
            title.text = panel.title
        canonical = [cloud.show(panel, self.material) for cloud, panel in zip(self.canonical_clouds, view.canonical)]
        self.canonical_title.text = view.canonical_title
        self.loss_title.text = view.loss_title
        if view.loss_image is not None:
            image = view.loss_image[::-1] if self.flip_images else view.loss_image
            self.loss_image.update_image(o3d.geometry.Image(np.ascontiguousarray(image)))
        self._show_legend(view.legend)
        for button in self.distill_buttons:  # after an engine error only viewing (and Save render) remain
            button.enabled = view.can_export if button is self.export_button else view.can_train
        self._running = view.running
        self.play_button.text = "Pause" if view.running and view.can_train else "Play"
        self.status.text = view.status
        if view.message or view.is_error:
            self.show_message(view.message, view.is_error)
        for widget, dirty in zip((*self.scenes, self.canonical_scene), (*changed, any(canonical))):
            if dirty:
                widget.force_redraw()
        self.window.post_redraw()

    def _show_legend(self, entries: tuple[tuple[str, tuple[float, ...]], ...]) -> None:
        self.legend_title.visible = bool(entries)
        for i, label in enumerate(self.legend_rows):
            if i < len(entries):
                name, color = entries[i]
                label.text = name
                label.text_color = gui.Color(*color)
                label.visible = True
            else:
                label.visible = False

    def set_resolution(self, points: int) -> None:
        """Move the slider as the user would (the hook forwards the value to the engine)."""
        self.resolution_slider.int_value = points
        self.on_resolution(points)

    def select(self, class_index: int, sample: int) -> None:
        self.class_box.selected_index = class_index
        self.sample_edit.int_value = sample
        self.on_select(class_index, sample)

    def point_count(self, panel: str) -> int:
        """Points currently in the panel named ``panel`` (e.g. ``Real``, ``GM``, ``DD3D``)."""
        return self.clouds[self.panels.index(panel)].count

    def geometry_count(self) -> int:
        """Geometries in all scenes now, as Open3D reports them (each scene keeps a fixed set of names)."""
        return sum(c.scene.has_geometry(c.name) for c in (*self.clouds, *self.canonical_clouds))

    def panel_clouds(self) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """The top panels' clouds shown now, as drawn (view frame), with their colours (None where a panel
        is empty)."""
        if self.view is None:
            return [None] * len(self.clouds)
        return [None if cloud.cloud is None or not cloud.count else (panel.points, panel.colors)
                for cloud, panel in zip(self.clouds, self.view.panels)]
