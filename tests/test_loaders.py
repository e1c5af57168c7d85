"""Real-format dataset loaders: round trips from tiny fixture files, one-line bad-input errors."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import REPO

from dd3d.config import load_config
from dd3d.data import load_dataset
from dd3d.data.folder import load_folder
from dd3d.data.mesh import SURFACE_POINTS, read_off
from dd3d.data.modelnet import MODELNET40_CLASSES, load_modelnet
from dd3d.data.scanobjectnn import SCANOBJECTNN_CLASSES, load_scanobjectnn
from dd3d.data.shapenet_part import load_shapenet_part
from dd3d.errors import DataError
from formats import (
    box_mesh,
    shared_modelnet10,
    truncate,
    write_cloud,
    write_folder_dataset,
    write_garbage,
    write_h5,
    write_mesh,
    write_mesh_dataset,
    write_modelnet_h5,
    write_modelnet_resampled,
    write_scanobjectnn,
    write_shapenet_part_h5,
    write_shapenet_part_txt,
)

TXT_SPLITS = {  # Airplane shapes of different sizes, one smaller than the resolution
    "train": {0: [40, 57, 20], 15: [33]},
    "val": {4: [36]},
    "test": {0: [45], 9: [50, 38]},
}


# --- ModelNet ---------------------------------------------------------------------------------

def test_modelnet_round_trip_over_several_files(tmp_path: Path) -> None:
    names = ["chair", "lamp", "sofa"]
    root = write_modelnet_h5(tmp_path / "mn", names, [3, 2, 4], [1, 2, 1], points=16,
                             files_per_split=2)
    train = load_modelnet(root, "train")
    test = load_modelnet(root, "test")
    assert train.class_names == names and test.class_names == names
    assert train.counts() == [3, 2, 4] and test.counts() == [1, 2, 1]
    assert train.points.shape == (9, 16, 3) and train.points.dtype == np.float32
    assert all(n.startswith(names[c]) for n, c in zip(train.names, train.labels))
    with h5py.File(root / "ply_data_train1.h5") as file:
        np.testing.assert_array_equal(train.points[-len(file["data"]):], file["data"][()])


def test_modelnet_without_lists_or_shape_names_uses_glob_and_builtin_40(tmp_path: Path) -> None:
    root = write_modelnet_h5(tmp_path, MODELNET40_CLASSES[::-1], [1] * 40, [1] * 40, points=4,
                             files_per_split=2, list_prefix=None, shape_names=False)
    data = load_modelnet(root, "test")
    assert data.class_names[:3] == ["airplane", "bathtub", "bed"] and data.class_names[-1] == "xbox"
    assert data.counts() == [1] * 40


def test_modelnet_without_shape_names_and_not_40_classes_names_the_file(tmp_path: Path) -> None:
    root = write_modelnet_h5(tmp_path, ["a", "b"], [1, 1], [1, 1], shape_names=False)
    with pytest.raises(DataError, match=r"shape_names\.txt: not found; needed to name the 2"):
        load_modelnet(root, "train")


def test_modelnet_list_entry_without_file_names_list_and_line(tmp_path: Path) -> None:
    root = write_modelnet_h5(tmp_path, ["a", "b"], [2, 2], [1, 1], files_per_split=2)
    (root / "ply_data_train1.h5").unlink()
    with pytest.raises(DataError, match=r"train_files\.txt: line 2: lists 'data/.*ply_data_train1"):
        load_modelnet(root, "train")


def test_real_modelnet10_reads_unchanged() -> None:
    root = shared_modelnet10()
    if root is None:
        pytest.skip("real ModelNet10 folder shared/data/modelnet10_hdf5_1024 not present")
    train, test = load_modelnet(root, "train"), load_modelnet(root, "test")
    assert train.class_names == ["bathtub", "bed", "chair", "desk", "dresser", "monitor",
                                 "night_stand", "sofa", "table", "toilet"]
    assert train.points.shape == (3991, 1024, 3) and test.points.shape == (908, 1024, 3)
    assert train.counts() == [106, 515, 889, 200, 200, 465, 200, 680, 392, 344]
    assert test.counts() == [50, 100, 100, 86, 86, 100, 86, 100, 100, 100]
    assert test.names[0].startswith(test.class_names[test.labels[0]])


# --- ScanObjectNN -----------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["obj_bg", "obj_only"])
@pytest.mark.parametrize("sub", ["", "h5_files"])
def test_scanobjectnn_variants_and_roots(tmp_path: Path, variant: str, sub: str) -> None:
    write_scanobjectnn(tmp_path, [2] * 15, [1] * 15, points=8, label_column=sub == "")
    data = load_scanobjectnn(tmp_path / sub, "train", variant)
    assert data.class_names == list(SCANOBJECTNN_CLASSES) and len(data.class_names) == 15
    assert data.counts() == [2] * 15 and data.points.shape == (30, 8, 3)
    suffix = "_nobg" if variant == "obj_only" else ""
    file = tmp_path / "h5_files" / "main_split" / f"training_objectdataset{suffix}.h5"
    with h5py.File(file) as h5:
        np.testing.assert_array_equal(data.points, h5["data"][()])


def test_scanobjectnn_missing_variant_file_is_named(tmp_path: Path) -> None:
    write_scanobjectnn(tmp_path, [1] * 15, [1] * 15, variants=("obj_bg",))
    with pytest.raises(DataError, match=r"test_objectdataset_nobg\.h5 not found.*docs/datasets\.md"):
        load_scanobjectnn(tmp_path, "test", "obj_only")


# --- ShapeNet-part ----------------------------------------------------------------------------

def _check_part_tables(data) -> None:
    assert len(data.class_names) == 16 and data.class_names[0] == "Airplane"
    assert data.class_names[15] == "Table" and len(data.part_names) == 50
    assert data.category_parts[0] == [0, 1, 2, 3] and data.category_parts[10] == list(range(30, 36))
    assert data.category_parts[15] == [47, 48, 49]
    assert sorted(p for ids in data.category_parts.values() for p in ids) == list(range(50))
    for cloud_parts, category in zip(data.parts, data.labels):
        assert set(cloud_parts.tolist()) <= set(data.category_parts[int(category)])


@pytest.mark.parametrize("sub", ["", "hdf5_data"])
def test_shapenet_part_h5_trainval(tmp_path: Path, sub: str) -> None:
    write_shapenet_part_h5(tmp_path, {"train": {0: 3, 4: 2}, "val": {15: 2}, "test": {9: 1}},
                           points=12, files_per_split=2)
    data = load_shapenet_part(tmp_path / sub, "trainval", points=99, seed=0)
    assert data.points.shape == (7, 12, 3) and data.parts.shape == (7, 12)
    assert data.counts()[0] == 3 and data.counts()[4] == 2 and data.counts()[15] == 2
    _check_part_tables(data)


def test_shapenet_part_h5_bad_part_id_names_file_and_shape(tmp_path: Path) -> None:
    write_shapenet_part_h5(tmp_path, {"train": {0: 3}, "val": {0: 1}, "test": {0: 1}}, points=8)
    path = tmp_path / "hdf5_data" / "ply_data_train0.h5"
    with h5py.File(path, "a") as file:
        file["pid"][2, 5] = 47  # a Table part in an Airplane
    with pytest.raises(DataError, match=r"ply_data_train0\.h5: shape 2, point 5: part id 47 is "
                                        r"not a part of Airplane"):
        load_shapenet_part(tmp_path, "train", points=8, seed=0)


@pytest.mark.parametrize("parent", [False, True])
def test_shapenet_part_txt_resamples_with_aligned_labels(tmp_path: Path, parent: bool) -> None:
    folder = write_shapenet_part_txt(tmp_path, TXT_SPLITS, part_in_x=True)
    data = load_shapenet_part(tmp_path if parent else folder, "train", points=32, seed=3)
    assert data.points.shape == (4, 32, 3) and data.parts.shape == (4, 32)
    assert data.counts()[0] == 3 and data.counts()[15] == 1
    np.testing.assert_array_equal(data.points[..., 0], data.parts)  # x encodes the part id
    _check_part_tables(data)
    again = load_shapenet_part(folder, "train", points=32, seed=3)
    other = load_shapenet_part(folder, "train", points=32, seed=4)
    np.testing.assert_array_equal(again.points, data.points)
    assert not np.array_equal(other.points, data.points)


def test_shapenet_part_txt_subset_without_replacement(tmp_path: Path) -> None:
    folder = write_shapenet_part_txt(tmp_path, {"train": {0: [50]}, "val": {}, "test": {}})
    data = load_shapenet_part(folder, "train", points=30, seed=0)
    source = np.loadtxt(folder / "02691156" / "train0000.txt")[:, :3].astype(np.float32)
    assert len(np.unique(data.points[0], axis=0)) == 30
    assert {tuple(p) for p in data.points[0]} <= {tuple(p) for p in source}


def _rewrite_line(path: Path, line: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(("row", "message"), [
    ("0.1 0.2 0.3 0 0 1 47.000000", r"line 5: part id 47 is not a part of Airplane"),
    ("0.1 0.2 0.3 0 0 1 50", r"line 5: part id 50 is not a part of Airplane"),
    ("0.1 0.2 0.3 0 0 1", r"line 5: expected 7 numeric columns, got '0.1 0.2 0.3 0 0 1'"),
    ("0.1 0.2 nan? 0 0 1 2", r"line 5: expected 7 numeric columns, got '0.1 0.2 nan\? 0 0 1 2'"),
    ("0.1 nan 0.3 0 0 1 2", r"line 5: NaN or Inf value"),
])
def test_shapenet_part_txt_bad_row_names_file_and_line(tmp_path: Path, row: str, message: str
                                                       ) -> None:
    folder = write_shapenet_part_txt(tmp_path, {"train": {0: [20]}, "val": {}, "test": {}})
    path = folder / "02691156" / "train0000.txt"
    _rewrite_line(path, 5, row)
    with pytest.raises(DataError, match=r"train0000\.txt: " + message):
        load_shapenet_part(folder, "train", points=8, seed=0)


def test_shapenet_part_txt_split_entry_without_file(tmp_path: Path) -> None:
    folder = write_shapenet_part_txt(tmp_path, {"train": {0: [20, 20]}, "val": {}, "test": {}})
    (folder / "02691156" / "train0001.txt").unlink()
    with pytest.raises(DataError, match=r"shuffled_train_file_list\.json: entry "
                                        r"'shape_data/02691156/train0001': .* not found"):
        load_shapenet_part(folder, "train", points=8, seed=0)


# --- Folder per class -------------------------------------------------------------------------

@pytest.mark.parametrize("split_first", [False, True])
def test_folder_layouts_and_formats(tmp_path: Path, split_first: bool) -> None:
    root = write_folder_dataset(tmp_path, ["mug", "cap", "bag"], [4, 2, 3], [1, 1, 1],
                                split_first=split_first, suffixes=(".ply", ".pcd", ".npy", ".txt"),
                                points=(20, 60), extra_columns=3)
    train = load_folder(root, "train", points=24, seed=0)
    test = load_folder(root, "test", points=24, seed=0)
    assert train.class_names == ["bag", "cap", "mug"] == test.class_names
    assert train.counts() == [3, 2, 4] and test.counts() == [1, 1, 1]
    assert train.points.shape == (9, 24, 3)
    assert all(name.split("/")[-1].startswith(train.class_names[c])
               for name, c in zip(train.names, train.labels))


def test_folder_reads_first_three_columns_of_npy_and_comma_text(tmp_path: Path) -> None:
    xyz = np.array([[1, 2, 3], [4, 5, 6]], dtype=float)
    write_cloud(tmp_path / "a" / "train" / "x.txt", xyz, extra_columns=3, delimiter=",")
    write_cloud(tmp_path / "a" / "train" / "y.npy", xyz, extra_columns=3)
    data = load_folder(tmp_path, "train", points=2, seed=0)
    assert data.names == ["a/train/x.txt", "a/train/y.npy"]
    for cloud in data.points:
        assert sorted(map(tuple, cloud.tolist())) == [(1, 2, 3), (4, 5, 6)]


def test_folder_empty_class_folder_is_named(tmp_path: Path) -> None:
    write_folder_dataset(tmp_path, ["a", "b"], [1, 1], [1, 1])
    (tmp_path / "b" / "train" / "b_0000.npy").unlink()
    with pytest.raises(DataError, match=rf"{tmp_path / 'b' / 'train'}: class folder is missing or "
                                        r"holds no point clouds"):
        load_folder(tmp_path, "train", points=8, seed=0)


@pytest.mark.parametrize("name", ["bad.ply", "bad.npy", "bad.txt"])
def test_folder_unreadable_file_is_named(tmp_path: Path, name: str) -> None:
    write_folder_dataset(tmp_path, ["a"], [1], [1])
    write_garbage(tmp_path / "a" / "train" / name)
    with pytest.raises(DataError, match=rf"{name}: "):
        load_folder(tmp_path, "train", points=8, seed=0)


# --- Meshes ------------------------------------------------------------------------------------

def _on_box_surface(points: np.ndarray, half: np.ndarray) -> np.ndarray:
    """True for points on the surface of the box [-half, half] (inside it, on one face)."""
    inside = (np.abs(points) <= half + 1e-5).all(axis=1)
    on_face = (np.abs(np.abs(points) - half) < 1e-5).any(axis=1)
    return inside & on_face


@pytest.mark.parametrize("split_first", [False, True])
def test_mesh_folders_in_every_format_are_sampled_on_the_surface(tmp_path: Path, split_first: bool) -> None:
    root = write_mesh_dataset(tmp_path, ["chair", "desk"], [4, 4], [1, 2], suffixes=(".off", ".obj", ".stl", ".ply"),
                              split_first=split_first)
    train = load_folder(root, "train", points=256, seed=0)
    assert train.class_names == ["chair", "desk"] and train.counts() == [4, 4]
    assert train.layout.startswith(f"folder-per-class ({'<split>/<class>' if split_first else '<class>/<split>'}), "
                                   ".obj, .off, .ply, .stl files; meshes sampled uniformly on their surface")
    assert train.points.shape == (8, 256, 3)
    for cloud, name in zip(train.points, train.names):
        path = root / name
        vertices = np.loadtxt(path, skiprows=2, max_rows=8) if path.suffix == ".off" else None
        half = np.abs(cloud).max(axis=0)
        if vertices is not None:
            np.testing.assert_allclose(half, np.abs(vertices).max(axis=0), atol=0.05)
        assert _on_box_surface(cloud, half).all(), name
        assert len(np.unique(cloud, axis=0)) == 256  # a subset of a surface sample, not 8 vertices repeated
    again = load_folder(root, "train", points=256, seed=0)
    other = load_folder(root, "train", points=256, seed=1)
    np.testing.assert_array_equal(again.points, train.points)
    assert not np.array_equal(other.points, train.points)


def test_mesh_sampling_is_area_weighted(tmp_path: Path) -> None:
    # a 4 x 1 x 1 box: the four long sides hold 16 of its 18 units of area but only 8 of its 12 triangles
    vertices, faces = box_mesh([4.0, 1.0, 1.0])
    write_mesh(tmp_path / "bar" / "train" / "bar.off", vertices, faces)
    cloud = load_folder(tmp_path, "train", points=SURFACE_POINTS, seed=0).points[0]
    on_ends = np.abs(np.abs(cloud[:, 0]) - 2.0) < 1e-5
    assert abs(on_ends.mean() - 2 / 18) < 0.02  # per-triangle sampling would give 4/12


def test_modelnet_off_defect_reads_like_a_correct_header(tmp_path: Path) -> None:
    vertices, faces = box_mesh([1.0, 2.0, 3.0])
    good = write_mesh(tmp_path / "good.off", vertices, faces)
    broken = write_mesh(tmp_path / "broken.off", vertices, faces, off_defect=True)
    assert broken.read_text().startswith("OFF8 12 0\n")
    for got, want in zip(read_off(broken), read_off(good)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(read_off(good)[0], vertices, atol=1e-6)


def test_off_polygons_comments_and_crlf(tmp_path: Path) -> None:
    square = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1]], dtype=float)
    path = write_mesh(tmp_path / "quad.off", square, [(0, 1, 2, 3), (0, 1, 4)], line_end="\r\n")
    path.write_bytes(path.read_bytes().replace(b"OFF\r\n", b"OFF # a comment\r\n"))
    vertices, triangles = read_off(path)
    np.testing.assert_array_equal(vertices, square)
    np.testing.assert_array_equal(triangles, [[0, 1, 2], [0, 2, 3], [0, 1, 4]])


@pytest.mark.parametrize(("name", "text", "message"), [
    ("empty.off", "OFF\n0 0 0\n", r"empty or faceless mesh \(0 vertices, 0 faces\)"),
    ("points.off", "OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n", r"empty or faceless mesh \(3 vertices, 0 faces\)"),
    ("points.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\n", r"empty or faceless mesh \(0 vertices, 0 faces; unreadable"),
    ("empty.stl", "", r"empty or faceless mesh \(0 vertices, 0 faces"),
    ("flat.off", "OFF\n3 1 0\n0 0 0\n1 1 1\n2 2 2\n3 0 1 2\n", r"every face has zero area"),
    ("short.off", "OFF\n4 2 0\n0 0 0\n1 0 0\n0 1 0\n", r"truncated: the header promises 4 vertices and 2"),
    ("index.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", r"face index 7 outside 0\.\.2"),
    ("header.off", "PLY\n3 1 0\n", r"not an OFF file: first line 'PLY'"),
])
def test_bad_mesh_is_one_line_naming_the_file(tmp_path: Path, name: str, text: str, message: str) -> None:
    write_mesh_dataset(tmp_path, ["a"], [1], [1])
    (tmp_path / "a" / "train" / name).write_text(text)
    with pytest.raises(DataError, match=rf"^{tmp_path / 'a' / 'train' / name}: {message}") as info:
        load_folder(tmp_path, "train", points=8, seed=0)
    assert "\n" not in str(info.value)


def test_ply_without_faces_is_a_cloud_and_hidden_files_are_not_shapes(tmp_path: Path) -> None:
    xyz = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=float)
    write_mesh(tmp_path / "a" / "train" / "cloud.ply", xyz, [])
    (tmp_path / "a" / "train" / "._cloud.ply").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    write_garbage(tmp_path / "__MACOSX" / "a" / "train" / "x.off")
    data = load_folder(tmp_path, "train", points=3, seed=0)
    assert data.class_names == ["a"] and data.names == ["a/train/cloud.ply"]
    assert sorted(map(tuple, data.points[0].tolist())) == sorted(map(tuple, xyz.tolist()))


# --- ModelNet, PointNet++ text (modelnet40_normal_resampled) ---------------------------------------

@pytest.mark.parametrize(("delimiter", "line_end"), [(",", "\n"), (" ", "\n"), (",", "\r\n")])
def test_modelnet_resampled_reads_coordinates_of_listed_shapes(tmp_path: Path, delimiter: str, line_end: str) -> None:
    names = ["airplane", "night_stand", "xbox"]
    root = write_modelnet_resampled(tmp_path, names, [2, 3, 1], [1, 1, 2], points=40, delimiter=delimiter,
                                    line_end=line_end)
    train = load_modelnet(root, "train", points=16, seed=0)
    test = load_modelnet(root, "test", points=16, seed=0)
    assert train.class_names == names and train.counts() == [2, 3, 1] and test.counts() == [1, 1, 2]
    assert train.layout == "PointNet++ text (modelnet40_normal_resampled), modelnet40 lists"
    assert train.names[2] == "night_stand_0001" and test.names[1] == "night_stand_0004"
    rows = np.loadtxt(root / "night_stand" / "night_stand_0001.txt", delimiter=None if delimiter == " " else ",")
    assert {tuple(p) for p in train.points[2]} <= {tuple(p) for p in rows[:, :3].astype(np.float32)}
    assert len(np.unique(train.points[2], axis=0)) == 16  # a subset without repeats, normals left out
    np.testing.assert_array_equal(load_modelnet(root, "train", points=16, seed=0).points, train.points)


def test_modelnet10_lists_and_h5_files_win(tmp_path: Path) -> None:
    root = write_modelnet_resampled(tmp_path, ["bathtub", "bed"], [1, 2], [1, 1], prefix="modelnet10")
    assert load_modelnet(root, "train", 8, 0).layout.endswith("modelnet10 lists")
    write_modelnet_h5(root, ["x", "y", "z"], [1, 1, 1], [1, 1, 1], points=8)
    assert load_modelnet(root, "train", 8, 0).class_names == ["x", "y", "z"]


def test_released_folder_with_both_lists_loads_either_through_data_lists(tmp_path: Path) -> None:
    root = write_modelnet_resampled(tmp_path, ["bathtub", "bed", "cup"], [1, 2, 1], [1, 1, 1])
    ten = write_modelnet_resampled(tmp_path / "ten", ["bathtub", "bed"], [1, 2], [1, 1], prefix="modelnet10")
    for name in ("train", "test", "shape_names"):  # the released folder: both sets of lists, one set of shapes
        (root / f"modelnet10_{name}.txt").write_text((ten / f"modelnet10_{name}.txt").read_text())
    assert load_modelnet(root, "train", 8, 0).class_names == ["bathtub", "bed", "cup"]  # auto: modelnet40's
    ten_classes = load_modelnet(root, "train", 8, 0, lists="modelnet10")
    assert ten_classes.class_names == ["bathtub", "bed"] and ten_classes.layout.endswith("modelnet10 lists")
    cfg = load_config(REPO / "configs" / "modelnet10.yaml", [f"data.root={root}"])
    assert cfg.data.lists == "modelnet10" and load_dataset(cfg).train.class_names == ["bathtub", "bed"]


def test_modelnet_resampled_list_naming_a_missing_file_is_one_line(tmp_path: Path) -> None:
    root = write_modelnet_resampled(tmp_path, ["cup", "vase"], [2, 2], [1, 1])
    (root / "vase" / "vase_0002.txt").unlink()
    with pytest.raises(DataError, match=rf"^{root / 'modelnet40_train.txt'}: line 4: lists 'vase_0002' but "
                                        rf"{root / 'vase' / 'vase_0002.txt'} does not exist$"):
        load_modelnet(root, "train", 8, 0)


def test_modelnet_resampled_unknown_class_and_bad_row(tmp_path: Path) -> None:
    root = write_modelnet_resampled(tmp_path, ["cup", "vase"], [2, 2], [1, 1])
    (root / "modelnet40_test.txt").write_text("cup_0003\nlamp_0001\n")
    with pytest.raises(DataError, match=r"modelnet40_test\.txt: line 2: 'lamp_0001' is not '<class>_<number>'"):
        load_modelnet(root, "test", 8, 0)
    _rewrite_line(root / "cup" / "cup_0001.txt", 3, "0.1,oops,0.3,0,0,1")
    with pytest.raises(DataError, match=r"cup_0001\.txt: line 3: expected at least 3 numeric columns"):
        load_modelnet(root, "train", 8, 0)


# --- Shared bad input -------------------------------------------------------------------------

@pytest.mark.parametrize(("load", "layout"), [
    (lambda root: load_modelnet(root, "train"), "ModelNet40 HDF5 (modelnet40_ply_hdf5_2048) or PointNet++ text"),
    (lambda root: load_scanobjectnn(root, "train", "obj_bg"), "ScanObjectNN HDF5"),
    (lambda root: load_shapenet_part(root, "train", 8, 0), "ShapeNet-part HDF5"),
    (lambda root: load_folder(root, "train", 8, 0), "folder-per-class"),
])
def test_missing_root_says_path_layout_and_readme(tmp_path: Path, load, layout: str) -> None:
    root = tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        load(root)
    message = str(info.value)
    assert message.startswith(f"{root}: dataset folder not found; expected the {layout}")
    assert message.endswith("see docs/datasets.md") and "\n" not in message


def test_empty_shapenet_folder_names_both_layouts(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"neither hdf5_data/ply_data_\*\.h5 nor "
                                        r"synsetoffset2category\.txt found"):
        load_shapenet_part(tmp_path, "train", 8, 0)


def test_wrong_keys_lists_found_keys(tmp_path: Path) -> None:
    write_h5(tmp_path / "ply_data_train0.h5", points=np.zeros((2, 4, 3), np.float32),
             label=np.zeros((2, 1), np.uint8))
    with pytest.raises(DataError, match=r"ply_data_train0\.h5: missing key 'data' \(found: label, "
                                        r"points\); expected 'data' \(N, P, 3\) float"):
        load_modelnet(tmp_path, "train")


@pytest.mark.parametrize(("arrays", "message"), [
    ({"data": np.zeros((2, 4, 2), np.float32), "label": np.zeros((2, 1), np.uint8)},
     r"key 'data' has shape \(2, 4, 2\), expected \(N, P, 3\) float"),
    ({"data": np.zeros((2, 4, 3), np.float32), "label": np.zeros((2, 1), np.float32)},
     r"key 'label' has dtype float32, expected \(N, 1\) or \(N\) integer"),
    ({"data": np.zeros((2, 4, 3), np.float32), "label": np.zeros((3, 1), np.uint8)},
     r"key 'label' has shape \(3, 1\) but key 'data' has N=2"),
])
def test_wrong_shape_or_dtype_names_file_and_key(tmp_path: Path, arrays: dict, message: str
                                                  ) -> None:
    write_h5(tmp_path / "ply_data_train0.h5", **arrays)
    with pytest.raises(DataError, match=r"ply_data_train0\.h5: " + message):
        load_modelnet(tmp_path, "train")


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_h5_is_one_line_error(tmp_path: Path, damage: str) -> None:
    write_scanobjectnn(tmp_path, [4] * 15, [1] * 15, points=64, variants=("obj_bg",))
    path = tmp_path / "h5_files" / "main_split" / "training_objectdataset.h5"
    truncate(path, 0.5) if damage == "truncated" else write_garbage(path)
    with pytest.raises(DataError, match=rf"^{path}: not a readable HDF5 file \(truncated or "
                                        r"corrupt\?\)$"):
        load_scanobjectnn(tmp_path, "train", "obj_bg")


def test_meshes_without_open3d_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    root = write_mesh_dataset(tmp_path, ["a"], [1], [1], suffixes=(".obj",))
    monkeypatch.setitem(sys.modules, "open3d", None)  # as on a machine without Open3D
    with pytest.raises(DataError, match=r"a_0001\.obj: reading \.obj files needs Open3D .* `dd3d prepare`"):
        load_folder(root, "train", points=8, seed=0)
