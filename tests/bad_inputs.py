"""The table of bad inputs every command must answer in one line (docs/commands.md, "Bad input").

Each :class:`Case` builds its input under a temporary folder and returns the ``dd3d`` arguments;
the command must exit with status 2 and print exactly one stderr line that contains every
``expect`` fragment (the file, key or flag and what was expected), with no traceback and no new file
under ``<tmp>/out``. ``tests/test_bad_inputs.py`` runs them all.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import torch
from formats import (
    truncate,
    write_folder_dataset,
    write_garbage,
    write_h5,
    write_mesh_dataset,
    write_modelnet_h5,
    write_modelnet_resampled,
    write_scanobjectnn,
    write_shapenet_part_txt,
)

CLASSES = ["airplane", "bathtub", "bed"]
FACELESS_OFF = "OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n"
BAD_FACE_OFF = "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 x\n"
TINY = ["--set", "data.resolution=16", "--set", "distill.resolution=16", "--set", "eval.resolution=16"]


@dataclass(frozen=True)
class Case:
    """One bad input: ``build(tmp)`` writes it and returns the dd3d argv."""

    name: str
    build: Callable[[Path], list[str]]
    expect: tuple[str, ...]


def config(tmp: Path, text: str) -> str:
    path = tmp / "config.yaml"
    path.write_text(text)
    return str(path)


def modelnet(tmp: Path, damage: Callable[[Path], object] | None = None) -> list[str]:
    """``dd3d data`` on a tiny ModelNet40-layout folder, after ``damage(root)``."""
    root = write_modelnet_h5(tmp / "modelnet", CLASSES, [2, 2, 2], [1, 1, 1], points=16)
    if damage is not None:
        damage(root)
    return ["data", "--config", config(tmp, f"data:\n  name: modelnet40\n  root: {root}\n  resolution: 16\n")]


def rewrite_h5(path: Path, **changes: np.ndarray | None) -> None:
    """Replace (or, with None, delete) datasets of an existing h5 file."""
    with h5py.File(path, "a") as f:
        for key, value in changes.items():
            del f[key]
            if value is not None:
                f.create_dataset(key, data=value)


def train_file(root: Path) -> Path:
    return root / "ply_data_train0.h5"


def with_nan(root: Path) -> None:
    with h5py.File(train_file(root), "a") as f:
        data = f["data"][()]
        data[1, 3, 0] = np.nan
        f["data"][...] = data


def shapenet_txt(tmp: Path, damage: Callable[[Path], object]) -> list[str]:
    folder = write_shapenet_part_txt(tmp / "snp", {"train": {0: [20, 24]}, "val": {}, "test": {0: [20]}})
    damage(folder)
    return ["data", "--config", config(tmp, f"task: segmentation\ndata:\n  name: shapenet_part\n  root: {folder}\n"
                                            "  resolution: 16\n  train_split: train\n")]


def first_shape(folder: Path) -> Path:
    return sorted((folder / "02691156").glob("train*.txt"))[0]


def replace_line(path: Path, index: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[index] = text
    path.write_text("\n".join(lines) + "\n")


def shapes_cli(tmp: Path, *args: str) -> list[str]:
    """A command on the built-in dataset with a tiny config."""
    return [*args, "--config", config(tmp, "data:\n  builtin:\n    train_per_class: 2\n    test_per_class: 1\n"),
            *TINY]


def run_folder(tmp: Path, **files: Callable[[Path], object]) -> Path:
    folder = tmp / "run"
    folder.mkdir()
    for name, write in files.items():
        write(folder / name.replace("_", ".", 1))
    return folder


def generator_file(fmt: str) -> Callable[[Path], object]:
    return lambda path: torch.save({"format": fmt, "generator": {}}, path)


CASES: list[Case] = [
    # --- datasets -------------------------------------------------------------------------
    Case("modelnet root missing", lambda t: ["data", "--config", config(
        t, f"data:\n  name: modelnet40\n  root: {t / 'nowhere'}\n")], ("nowhere", "docs/datasets.md")),
    Case("modelnet truncated h5", lambda t: modelnet(t, lambda r: truncate(train_file(r))),
         ("ply_data_train0.h5",)),
    Case("modelnet garbage h5", lambda t: modelnet(t, lambda r: write_garbage(train_file(r))),
         ("ply_data_train0.h5",)),
    Case("modelnet empty h5", lambda t: modelnet(t, lambda r: write_h5(train_file(r))),
         ("ply_data_train0.h5", "data")),
    Case("modelnet missing label key", lambda t: modelnet(t, lambda r: rewrite_h5(train_file(r), label=None)),
         ("ply_data_train0.h5", "label")),
    Case("modelnet wrong data shape", lambda t: modelnet(t, lambda r: rewrite_h5(
        train_file(r), data=np.zeros((6, 16, 2), np.float32))), ("ply_data_train0.h5", "data")),
    Case("modelnet string data", lambda t: modelnet(t, lambda r: rewrite_h5(
        train_file(r), data=np.array([b"x"] * 6))), ("ply_data_train0.h5", "data")),
    Case("modelnet label out of range", lambda t: modelnet(t, lambda r: rewrite_h5(
        train_file(r), label=np.full((6, 1), 45, np.uint8))), ("45",)),
    Case("modelnet NaN coordinates", lambda t: modelnet(t, with_nan), ("NaN",)),
    Case("modelnet listed file missing", lambda t: modelnet(t, lambda r: train_file(r).unlink()),
         ("ply_data_train0.h5",)),
    Case("scanobjectnn file missing", lambda t: ["data", "--config", config(
        t, f"data:\n  name: scanobjectnn\n  root: {write_scanobjectnn(t / 'sonn', [1] * 15, [1] * 15, variants=('obj_bg',))}\n"
           "  variant: obj_only\n")], ("nobg.h5",)),
    Case("shapenet txt non-numeric row", lambda t: shapenet_txt(
        t, lambda f: replace_line(first_shape(f), 3, "0.1 0.2 abc 0 0 0 1")), ("train0000.txt", "line 4")),
    Case("shapenet txt bad part id", lambda t: shapenet_txt(
        t, lambda f: replace_line(first_shape(f), 2, "0.1 0.2 0.3 0 0 0 47")), ("train0000.txt", "line 3", "47")),
    Case("shapenet split list missing", lambda t: shapenet_txt(
        t, lambda f: (f / "train_test_split" / "shuffled_train_file_list.json").unlink()),
         ("shuffled_train_file_list.json",)),
    Case("folder dataset empty class", lambda t: ["data", "--config", config(
        t, f"data:\n  name: folder\n  root: {write_folder_dataset(t / 'fold', ['a', 'b'], [2, 0], [1, 1])}\n"
           "  resolution: 16\n")], ("b",)),
    Case("folder dataset garbage cloud", lambda t: ["data", "--config", config(
        t, f"data:\n  name: folder\n  root: {write_garbage_cloud(t)}\n  resolution: 16\n")], ("a_0000.npy", "numpy.save")),
    Case("modelnet text list names a missing file", lambda t: ["data", "--config", config(
        t, f"data:\n  name: modelnet40\n  root: {resampled_without(t, 'vase/vase_0002.txt')}\n")],
         ("modelnet40_train.txt", "line 4", "vase_0002.txt", "does not exist")),
    Case("modelnet text class list missing", lambda t: ["data", "--config", config(
        t, f"data:\n  name: modelnet40\n  root: {resampled_without(t, 'modelnet40_shape_names.txt')}\n")],
         ("modelnet40_shape_names.txt", "not found")),
    Case("modelnet folder of neither layout", lambda t: ["data", "--config", config(
        t, f"data:\n  name: modelnet40\n  root: {write_mesh_dataset(t / 'ModelNet2', ['a'], [1], [1])}\n")],
         ("ModelNet2", "ply_data_*.h5", "modelnet40_*.txt")),
    Case("folder faceless mesh", lambda t: ["data", "--config", config(
        t, f"data:\n  name: folder\n  root: {meshes_with(t, FACELESS_OFF)}\n")],
         ("chair_0002.off", "faceless")),
    Case("folder mesh with bad face", lambda t: ["data", "--config", config(
        t, f"data:\n  name: folder\n  root: {meshes_with(t, BAD_FACE_OFF)}\n")],
         ("chair_0002.off", "face 1")),
    Case("prepare unreadable mesh", lambda t: ["prepare", "--out", str(t / "out" / "h5"), "--config", config(
        t, f"data:\n  name: folder\n  root: {meshes_with(t, 'not a mesh')}\n")], ("chair_0002.off", "OFF")),
    Case("prepare into a foreign folder", lambda t: ["prepare", "--out", str(foreign_folder(t)), "--config", config(
        t, f"data:\n  name: folder\n  root: {meshes_with(t, None)}\n")], ("foreign", "not a dd3d prepare output")),
    Case("prepare points zero", lambda t: ["prepare", "--out", str(t / "out" / "h5"), "--points", "0", "--config",
                                          config(t, "{}\n")], ("--points",)),
    # --- configs --------------------------------------------------------------------------
    Case("config not a mapping", lambda t: ["data", "--config", config(t, "- 1\n- 2\n")], ("config.yaml", "mapping")),
    Case("config invalid yaml", lambda t: ["data", "--config", config(t, "data: [1,\n")], ("config.yaml", "YAML")),
    Case("config missing", lambda t: ["data", "--config", str(t / "absent.yaml")], ("absent.yaml", "not found")),
    Case("config unknown key", lambda t: ["data", "--config", config(t, "data:\n  resolutoin: 5\n")],
         ("data.resolutoin", "data.resolution")),
    Case("config wrong type", lambda t: ["data", "--config", config(t, "distill:\n  cpc: ten\n")], ("distill.cpc",)),
    Case("config cpc zero", lambda t: ["data", "--config", config(t, "distill:\n  cpc: 0\n")], ("distill.cpc", "1")),
    Case("config resolution zero", lambda t: ["data", "--config", config(t, "data:\n  resolution: 0\n")],
         ("data.resolution",)),
    Case("config negative epochs", lambda t: ["data", "--config", config(t, "train:\n  epochs: -3\n")],
         ("train.epochs",)),
    Case("config bad --set", lambda t: ["data", "--config", config(t, "{}\n"), "--set", "data.resolution"],
         ("--set", "key=value")),
    Case("config unknown model", lambda t: ["data", "--config", config(t, "model:\n  name: resnet\n")],
         ("model.name",)),
    # --- command-line flags ---------------------------------------------------------------
    Case("distill unknown method", lambda t: shapes_cli(t, "distill", "--method", "magic", "--out", str(t / "out")),
         ("--method", "magic")),
    Case("distill cpc zero", lambda t: shapes_cli(t, "distill", "--cpc", "0", "--out", str(t / "out")), ("--cpc",)),
    Case("distill resume not a run folder", lambda t: ["distill", "--resume", str(run_folder(t))],
         ("--resume", "not a dd3d run folder")),
    Case("eval run folder missing", lambda t: shapes_cli(t, "eval", "--synthetic", str(t / "missing")),
         ("missing", "not found")),
    Case("eval folder without outputs", lambda t: shapes_cli(t, "eval", "--synthetic", str(run_folder(t))),
         ("synthetic.h5",)),
    Case("eval synthetic h5 without labels", lambda t: shapes_cli(t, "eval", "--synthetic", str(run_folder(
        t, synthetic_h5=lambda p: write_h5(p, data=np.zeros((2, 16, 3), np.float32))))), ("synthetic.h5", "label")),
    Case("eval runs zero", lambda t: shapes_cli(t, "eval", "--synthetic", str(t), "--runs", "0"), ("--runs",)),
    Case("eval unknown backbone", lambda t: shapes_cli(t, "eval", "--synthetic", str(run_folder(
        t, synthetic_h5=lambda p: write_h5(p, data=np.zeros((3, 16, 3), np.float32),
                                           label=np.arange(3, dtype=np.uint8)[:, None]))),
        "--backbone", "resnet", "--set", "data.max_classes=3"), ("resnet",)),
    Case("generate corrupt generator", lambda t: ["generate", "--run", str(run_folder(
        t, generator_pt=write_garbage)), "--points", "8", "--out", str(t / "out" / "x.h5")],
         ("generator.pt", "corrupt")),
    Case("generate other version", lambda t: ["generate", "--run", str(run_folder(
        t, generator_pt=generator_file("dd3d-generator/0"))), "--points", "8", "--out", str(t / "out" / "x.h5")],
         ("generator.pt", "dd3d-generator/1")),
    Case("generate points zero", lambda t: ["generate", "--run", str(t), "--points", "0", "--out",
                                            str(t / "out" / "x.h5")], ("--points",)),
    Case("generate unknown extension", lambda t: ["generate", "--run", str(run_folder(
        t, generator_pt=generator_file("dd3d-generator/1"))), "--points", "8", "--out", str(t / "out" / "x.xyz")],
         ("x.xyz", ".h5")),
    Case("generate generator without fields", lambda t: ["generate", "--run", str(run_folder(
        t, generator_pt=generator_file("dd3d-generator/1"))), "--points", "8", "--out", str(t / "out" / "x.h5")],
         ("generator.pt", "num_classes")),
    Case("table invalid json", lambda t: ["table", str(run_folder(t, metrics_json=lambda p: p.write_text("{oops")))],
         ("metrics.json", "JSON")),
    Case("table metrics missing fields", lambda t: ["table", str(run_folder(
        t, metrics_json=lambda p: p.write_text(json.dumps({"method": "gm"}))))], ("metrics.json", "missing")),
    Case("table folder without metrics", lambda t: ["table", str(run_folder(t))], ("metrics.json",)),
]


def write_garbage_cloud(tmp: Path) -> Path:
    root = write_folder_dataset(tmp / "fold", ["a", "b"], [2, 2], [1, 1])
    write_garbage(root / "a" / "train" / "a_0000.npy")
    return root


def resampled_without(tmp: Path, name: str) -> Path:
    """A tiny modelnet40_normal_resampled folder with the file ``name`` removed."""
    root = write_modelnet_resampled(tmp / "mn40", ["cup", "vase"], [2, 2], [1, 1])
    (root / name).unlink()
    return root


def meshes_with(tmp: Path, second_chair: str | None) -> Path:
    """A tiny ModelNet-style .off folder whose ``chair/train/chair_0002.off`` holds ``second_chair`` (None: intact)."""
    root = write_mesh_dataset(tmp / "ModelNet2", ["chair", "desk"], [2, 1], [1, 1], off_defect=True)
    if second_chair is not None:
        (root / "chair" / "train" / "chair_0002.off").write_text(second_chair)
    return root


def foreign_folder(tmp: Path) -> Path:
    folder = tmp / "foreign"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a dataset")
    return folder
