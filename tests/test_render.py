"""Publication renders (``viewer.render``, no display needed) and the shared palette."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_distill import tiny
from test_viewer import count_near

from dd3d.distill.run import distill
from dd3d.errors import DD3DError
from conftest import offscreen_rendering_problem
from viewer.palette import HEIGHT_STOPS, PART_COLORS, height_colors, legend, part_colors

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
