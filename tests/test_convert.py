"""`dd3d prepare`: any source converted once into an HDF5 release layout that the existing loaders read."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from formats import write_mesh_dataset, write_modelnet_resampled, write_shapenet_part_txt

import dd3d.data.folder as folder_module
from dd3d.cli import main
from dd3d.config import load_config
from dd3d.data.convert import prepare_dataset
from dd3d.data.folder import load_folder
from dd3d.data.modelnet import load_modelnet
from dd3d.data.shapenet_part import load_shapenet_part
from dd3d.data.transforms import normalize_unit_sphere
from dd3d.errors import DataError

CLASSES = ["chair", "desk", "sofa"]


def config(tmp: Path, body: str) -> Path:
    path = tmp / "config.yaml"
    path.write_text(body)
    return path


def mesh_config(tmp: Path) -> Path:
    root = write_mesh_dataset(tmp / "ModelNet3", CLASSES, [3, 2, 2], [1, 1, 1], suffixes=(".off", ".obj"),
                              off_defect=True)
    return config(tmp, f"data:\n  name: folder\n  root: {root}\n  rotation_seed: 5\n")


def h5_files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_meshes_become_the_modelnet_h5_layout(tmp_path: Path) -> None:
    cfg = load_config(mesh_config(tmp_path))
    out = tmp_path / "modelnet3_h5"
    summary = prepare_dataset(cfg, out, points=64, chunk=3)
    assert summary["splits"] == {"train": 7, "test": 3} and summary["written"] == 10
    assert sorted(p.name for p in out.iterdir()) == [
        "ply_data_test0.h5", "ply_data_train0.h5", "ply_data_train1.h5", "ply_data_train2.h5", "prepare.json",
        "shape_names.txt", "test_files.txt", "train_files.txt"]
    assert (out / "train_files.txt").read_text().splitlines()[0] == "data/modelnet3_h5/ply_data_train0.h5"
    with h5py.File(out / "ply_data_train0.h5") as file:
        assert file["data"].dtype == np.float32 and file["data"].shape == (3, 64, 3)
        assert file["label"].dtype == np.uint8 and file["label"].shape == (3, 1)
    for split in ("train", "test"):
        loaded = load_modelnet(out, split)
        direct = load_folder(Path(cfg.data.root), split, points=64, seed=5)
        assert loaded.class_names == CLASSES and loaded.names == direct.names
        np.testing.assert_array_equal(loaded.labels, direct.labels)
        expected = normalize_unit_sphere(torch.from_numpy(direct.points)).numpy()
        np.testing.assert_allclose(loaded.points, expected, atol=1e-6)  # same clouds, unit sphere as the release
        np.testing.assert_allclose(np.linalg.norm(loaded.points, axis=2).max(axis=1), 1.0, atol=1e-6)


def test_interrupted_conversion_resumes_where_it_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(mesh_config(tmp_path))
    reference = tmp_path / "reference"
    prepare_dataset(cfg, reference, points=32, chunk=2)
    reads: list[str] = []
    original = folder_module.read_shape
    stop_at = [5]

    def counted_read(path: Path, seed: int, index: int) -> np.ndarray:
        reads.append(path.name)
        if len(reads) == stop_at[0]:
            raise KeyboardInterrupt  # Ctrl-C while the fifth shape is read (the third chunk)
        return original(path, seed, index)

    monkeypatch.setattr(folder_module, "read_shape", counted_read)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(cfg, out, points=32, chunk=2)
    partial = tmp_path / ".out.partial"
    assert not out.exists()  # never a half-written dataset
    assert sorted(p.name for p in partial.glob("*.h5")) == ["ply_data_train0.h5", "ply_data_train1.h5"]
    assert not list(partial.glob(".*.tmp"))  # the interrupted chunk left no temporary behind
    reads.clear()
    stop_at[0] = 0
    summary = prepare_dataset(cfg, out, points=32, chunk=2)
    assert len(reads) == summary["written"] == 6 and not partial.exists()  # only the 3 + 3 shapes left
    assert {name: data for name, data in h5_files(out).items() if name.endswith(".h5")} == \
        {name: data for name, data in h5_files(reference).items() if name.endswith(".h5")}  # as if uninterrupted
    again = prepare_dataset(cfg, out, points=32, chunk=2)
    assert again["already_prepared"] and again["written"] == 0


def test_other_settings_or_a_foreign_folder_are_refused(tmp_path: Path) -> None:
    cfg = load_config(mesh_config(tmp_path))
    out = tmp_path / "out"
    prepare_dataset(cfg, out, points=16)
    with pytest.raises(DataError, match=rf"^{out / 'prepare.json'}: .* prepared from another source or with "
                                        r"other settings"):
        prepare_dataset(cfg, out, points=32)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match=rf"^{foreign}: folder exists and is not a dd3d prepare output"):
        prepare_dataset(cfg, foreign, points=16)


def test_part_data_becomes_the_shapenet_part_h5_layout(tmp_path: Path) -> None:
    folder = write_shapenet_part_txt(tmp_path / "snp", {"train": {0: [40, 50], 4: [30]}, "val": {15: [35]},
                                                         "test": {9: [45]}}, part_in_x=True)
    cfg = load_config(config(tmp_path, f"task: segmentation\ndata:\n  name: shapenet_part\n  root: {folder}\n"))
    out = tmp_path / "snp_h5"
    summary = prepare_dataset(cfg, out, points=24)
    assert summary["splits"] == {"train": 3, "val": 1, "test": 1} and summary["loader"] == "shapenet_part"
    assert (out / "train_hdf5_file_list.txt").read_text() == "ply_data_train0.h5\n"
    for split in ("train", "val", "test"):
        loaded = load_shapenet_part(out, split, points=999, seed=0)
        direct = load_shapenet_part(folder, split, points=24, seed=0)
        np.testing.assert_array_equal(loaded.parts, direct.parts)
        np.testing.assert_array_equal(loaded.labels, direct.labels)
        assert loaded.layout == "ShapeNet-part HDF5 (hdf5_data)"


def test_cli_prepare_then_data_on_pointnet2_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_modelnet_resampled(tmp_path / "modelnet40_normal_resampled", ["bed", "night_stand"], [2, 3], [1, 1],
                                    points=50, line_end="\r\n")
    cfg = config(tmp_path, f"data:\n  name: modelnet40\n  root: {root}\n  resolution: 16\n")
    assert main(["data", "--config", str(cfg)]) == 0
    shown = capsys.readouterr().out
    assert "layout: PointNet++ text (modelnet40_normal_resampled), modelnet40 lists" in shown
    assert f"train:  {root} (modelnet40_train.txt)" in shown
    assert "1 night_stand  train      3  test      1" in shown
    out = tmp_path / "h5"
    assert main(["prepare", "--config", str(cfg), "--out", str(out), "--points", "32"]) == 0
    printed = capsys.readouterr()
    assert "%|" in printed.err  # a progress bar
    assert f"--set data.name=modelnet40 --set data.root={out}" in printed.out
    assert main(["data", "--config", str(cfg), "--set", f"data.root={out}"]) == 0
    shown = capsys.readouterr().out
    assert "layout: ModelNet40 HDF5 (modelnet40_ply_hdf5_2048)" in shown and f"train:  {out}" in shown
    assert "1 night_stand  train      3  test      1" in shown
    assert main(["prepare", "--config", str(cfg), "--out", str(out), "--points", "32"]) == 0
    assert "already prepared" in capsys.readouterr().out
