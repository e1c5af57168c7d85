"""Publication renders (``viewer.scene``, ``viewer.render``: no display needed) and the shared palette."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_distill import tiny
from test_viewer import count_near

from dd3d.distill.run import distill
from dd3d.errors import DD3DError
from conftest import offscreen_rendering_problem
from dd3d.palette import HEIGHT_STOPS, PART_COLORS, height_colors, legend, part_colors, to_uint8

CLASSES = ["airplane", "bottle"]
TILE = 96


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    reason = offscreen_rendering_problem()
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("runs")
    folders = {}
    threads = torch.get_num_threads()
    try:
        for method in ("gm", "dd3d"):  # one thread: tiny tensors only lose time to a busy second core
            folders[method] = out / method
            distill(tiny(f"distill.method={method}", f"out={out}", "distill.iterations=1", "distill.outer_loop=1",
                         "threads=1"), folders[method], progress=False)
    finally:
        torch.set_num_threads(threads)
    return folders


def test_png_grid_has_expected_size_white_background_and_points(runs, tmp_path: Path) -> None:
    from PIL import Image

    from viewer.render import HEADER_HEIGHT, LABEL_WIDTH, grid_size, render_runs

    out = render_runs([runs["gm"], runs["dd3d"]], CLASSES, 300, tmp_path / "fig.png", tile=TILE)
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape[1::-1] == grid_size(len(CLASSES), 3, TILE)
    for corner in (image[0, 0], image[-1, -1], image[0, -1], image[-1, 0]):
        assert corner.tolist() == [255, 255, 255]
    for row in range(len(CLASSES)):
        for column in range(3):
            top, left = HEADER_HEIGHT + row * TILE, LABEL_WIDTH + column * TILE
            tile = image[top:top + TILE, left:left + TILE]
            drawn = (tile.astype(int).sum(axis=2) < 600).sum()
            assert drawn > 30, f"tile ({row}, {column}) is empty"
    # height colouring: points keep the exact colours of the height map
    ramp = height_colors(np.c_[np.zeros(256), np.linspace(-1, 1, 256), np.zeros(256)])
    assert count_near(image[HEADER_HEIGHT:, LABEL_WIDTH:], ramp) > 100


def test_pdf_and_bad_requests(runs, tmp_path: Path) -> None:
    from viewer.render import render_runs

    pdf = render_runs([runs["dd3d"]], ["bed"], 128, tmp_path / "fig.pdf", tile=64)
    assert pdf.read_bytes().startswith(b"%PDF")
    with pytest.raises(DD3DError, match=r"--classes: spaceship not in .*available: airplane"):
        render_runs([runs["gm"]], ["spaceship"], 128, tmp_path / "x.png", tile=64)
    with pytest.raises(DD3DError, match="run folder not found"):
        render_runs([tmp_path / "missing"], CLASSES, 128, tmp_path / "x.png", tile=64)
    with pytest.raises(DD3DError, match="expected .png or .pdf"):
        render_runs([runs["gm"]], CLASSES, 128, tmp_path / "x.jpg", tile=64)
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.jpg").exists()



def test_dd3d_render_command_writes_the_grid(runs, tmp_path: Path) -> None:
    from conftest import run_cli
    from PIL import Image

    from viewer.render import grid_size

    out = tmp_path / "fig.png"
    result = run_cli("--run", str(runs["gm"]), "--run", str(runs["dd3d"]), "--classes", ",".join(CLASSES),
                     "--points", "128", "--tile", "64", "--out", str(out), module="viewer.render")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == f"{len(CLASSES)} classes x 3 columns -> {out}"  # after Open3D's notes
    assert Image.open(out).size == grid_size(len(CLASSES), 3, 64)

def test_part_colours_follow_the_position_within_the_class() -> None:
    chair_parts = (12, 13, 14)  # global ids of a class's parts
    colors = part_colors(np.array([14, 12, 13, 12]), chair_parts)
    assert np.array_equal(colors, PART_COLORS[[2, 0, 1, 0]])
    assert legend([f"p{i}" for i in range(12)] + ["chair/seat", "chair/back", "chair/legs"], chair_parts)[1] == \
        ("back", tuple(float(v) for v in PART_COLORS[1]))


def test_height_colours_span_the_map_on_a_fixed_scale() -> None:
    points = np.array([[0.3, -1.0, 0.0], [0.0, 1.0, 0.5], [0.0, 5.0, 0.0], [0.0, 0.0, 0.0]])
    colors = height_colors(points)
    assert np.allclose(colors[0], HEIGHT_STOPS[0]) and np.allclose(colors[1], HEIGHT_STOPS[-1])
    assert np.allclose(colors[2], HEIGHT_STOPS[-1]) and np.allclose(colors[3], HEIGHT_STOPS[2])


# --------------------------------------------------------------------------------------- up axis

TOP = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}
#: the side facing the camera in each frame: +z for y-up data (and x-up), -y for z-up ModelNet meshes
FRONT = {"x": (0.0, 0.0, 1.0), "y": (0.0, 0.0, 1.0), "z": (0.0, -1.0, 0.0)}
RED, BLUE, GREY = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.6, 0.6, 0.6)


def asymmetric_cloud(up: str) -> tuple[np.ndarray, np.ndarray]:
    """A grey ball with a red blob on top and a blue blob in front, stored with ``up`` as its up axis."""
    rng = np.random.default_rng(0)
    ball = rng.normal(size=(600, 3))
    ball *= 0.3 / np.linalg.norm(ball, axis=1, keepdims=True)
    top = 0.75 * np.array(TOP[up]) + 0.06 * rng.normal(size=(200, 3))
    front = 0.75 * np.array(FRONT[up]) + 0.06 * rng.normal(size=(200, 3))
    colors = np.repeat(np.array([GREY, RED, BLUE]), [600, 200, 200], axis=0)
    return np.concatenate([ball, top, front]).astype(np.float32), colors.astype(np.float32)


def centroid(image: np.ndarray, color: tuple[float, float, float]) -> np.ndarray:
    """(row, column) centre of the pixels of exactly ``color``."""
    rows, cols = np.nonzero((image == to_uint8(color)).all(axis=2))
    assert len(rows) > 20, f"{color} not drawn"
    return np.array([rows.mean(), cols.mean()])


def test_every_up_axis_stands_the_top_up_and_turns_the_front_to_the_camera() -> None:
    reason = offscreen_rendering_problem()
    if reason:
        pytest.skip(reason)
    from viewer.scene import offscreen
    from viewer.upright import upright

    size = 128
    found = {}
    with offscreen(size, size) as draw:
        for up in ("x", "y", "z"):
            points, colors = asymmetric_cloud(up)
            image = draw(upright(points, up), colors, 3.0)
            found[up] = centroid(image, RED), centroid(image, BLUE)
        raw = draw(*asymmetric_cloud("z"), 3.0)  # control: z-up data drawn as stored lies on its back
    for up, (top, front) in found.items():
        assert top[0] < 0.3 * size, (up, top)  # the top lands in the upper part of the image
        assert front[0] > top[0] + 0.25 * size, (up, top, front)  # the front below it, towards the camera
        assert np.allclose(top, found["y"][0], atol=1.5) and np.allclose(front, found["y"][1], atol=1.5), up
    assert centroid(raw, RED)[0] > 0.5 * size


def test_up_axis_resolution_per_dataset_and_config() -> None:
    from dd3d.config import DEFAULT_UP_AXIS, load_config, resolve_up_axis

    from conftest import REPO

    assert {name: resolve_up_axis(load_config(None, [f"data.name={name}", "data.root=/x"]).data)
            for name in DEFAULT_UP_AXIS} == {"shapes": "y", "modelnet40": "y", "scanobjectnn": "y",
                                             "shapenet_part": "y", "folder": "y"}
    assert resolve_up_axis(load_config(REPO / "configs" / "modelnet10.yaml").data) == "z"  # sampled from .off meshes
    folder = load_config(None, ["data.name=folder", "data.root=/x"]).data
    assert resolve_up_axis(folder, reported="z") == "z"  # a loader that knows its files' axis
    folder.up_axis = "x"
    assert resolve_up_axis(folder, reported="z") == "x"  # the config wins
    with pytest.raises(DD3DError, match=r"data.up_axis: got 'up', expected one of 'auto', 'x', 'y', 'z'"):
        load_config(None, ["data.up_axis=up"])


def test_render_turns_every_column_by_the_run_configs_up_axis(runs, tmp_path: Path) -> None:
    import yaml
    from PIL import Image

    from viewer.render import HEADER_HEIGHT, LABEL_WIDTH, render_runs

    def extent(up: str) -> tuple[np.ndarray, np.ndarray]:
        """(height, width) of the drawn pixels of the Real and the DD3D tile of a bottle."""
        run = tmp_path / f"run-{up}"
        shutil.copytree(runs["dd3d"], run)
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        cfg["data"]["up_axis"] = up
        (run / "config.yaml").write_text(yaml.safe_dump(cfg))
        image = np.asarray(Image.open(render_runs([run], ["bottle"], 300, tmp_path / f"{up}.png", tile=TILE)).convert("RGB"))
        sizes = []
        for column in range(2):
            tile = image[HEADER_HEIGHT:HEADER_HEIGHT + TILE, LABEL_WIDTH + column * TILE:LABEL_WIDTH + (column + 1) * TILE]
            rows, cols = np.nonzero(tile.astype(int).sum(axis=2) < 600)
            sizes.append((np.ptp(rows), np.ptp(cols)))
        return np.array(sizes).T

    upright_size, lying_size = extent("y"), extent("x")  # built-in shapes are y-up: the bottle stands
    assert (upright_size[0] > 1.5 * upright_size[1])[0], upright_size  # Real: taller than wide
    assert (lying_size[1] > 1.5 * lying_size[0])[0], lying_size  # told x is up: turned on its side
    assert not np.array_equal(upright_size[:, 1], lying_size[:, 1])  # the DD3D column turns with it


def test_save_render_panels_end_with_the_loss_panel(tmp_path: Path) -> None:
    reason = offscreen_rendering_problem()
    if reason:
        pytest.skip(reason)
    from PIL import Image

    from dd3d.palette import METHOD_COLORS
    from viewer.render import grid_size, render_panels_file, write_panels

    points, colors = asymmetric_cloud("y")
    x = np.arange(40)
    write_panels(tmp_path / "panels.npz", [(points, colors), None, (points, colors)], "chair", ["Real", "GM", "DD3D"],
                 loss=[("gm", 2.0 - x / 40), ("dd3d", 1.0 - x / 80)])
    out = render_panels_file(tmp_path / "panels.npz", tmp_path / "row.png", TILE)
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape[1::-1] == grid_size(1, 4, TILE)
    loss_tile = image[:, -TILE:]
    for name in ("gm", "dd3d"):
        assert count_near(loss_tile, np.array(METHOD_COLORS[name]), tolerance=20) > 30, name
    assert count_near(image[:, :-TILE], np.array(METHOD_COLORS["gm"]), tolerance=20) == 0  # only in the loss panel
    assert render_panels_file(tmp_path / "panels.npz", tmp_path / "row.pdf", TILE).read_bytes().startswith(b"%PDF")
