"""``dd3d prepare``: convert any supported dataset source into an HDF5 release layout, once.

Sources stored one file per shape (meshes, PointNet++ text, ShapeNet-part txt) are slow to read:
every mesh is sampled and every text file parsed on each load. Converting them once makes every
later command load in seconds with the existing HDF5 loaders, unchanged.

Output layouts:

* classification sources: the ModelNet40 HDF5 layout — ``ply_data_{train,test}<k>.h5`` with
  ``data`` (N, P, 3) float32, ``label`` (N, 1) uint8 (int32 beyond 256 classes) and ``name``
  (N,) bytes; ``{train,test}_files.txt`` listing them as ``data/<out name>/<file>`` like the
  release; ``shape_names.txt``. Load with ``data.name: modelnet40``.
* ShapeNet-part sources: the ShapeNet-part HDF5 layout — ``ply_data_{train,val,test}<k>.h5`` with
  ``data``, ``label`` (N, 1) category and ``pid`` (N, P) global part id, and the release's
  ``{train,val,test}_hdf5_file_list.txt``. Load with ``data.name: shapenet_part``.

Each cloud is what the loader gives at ``points`` points (a seeded random subset of the shape's
points; a mesh is first sampled on its surface), centred and scaled into the unit sphere as in the
releases. The seed is ``data.rotation_seed``, so the output is reproducible.

Written once, resumable, atomic: everything goes into ``.<out name>.partial`` beside ``out``, one
h5 file per chunk of ``chunk`` clouds, each written atomically (``dd3d.io.atomic_path``). A rerun
after an interruption keeps the finished chunks and continues. When every split is written the
folder is renamed to ``out``, so ``out`` either does not exist or is complete. ``prepare.json``
records the source and settings; resuming or re-running with other settings is refused.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from tqdm import tqdm

from dd3d.config import Config
from dd3d.data.base import PointCloudSet
from dd3d.data.filesplit import FileSplit
from dd3d.data.h5util import resample
from dd3d.data.transforms import normalize_unit_sphere
from dd3d.errors import DataError
from dd3d.io import atomic_path, remove_temporaries, write_json, write_text

FORMAT = "dd3d-prepare/1"
MANIFEST = "prepare.json"
CHUNK = 2048  # clouds per h5 file, as the ModelNet40 release
POINTS = 2048  # points per cloud, as the ModelNet40 and ShapeNet-part releases
MODELNET_LAYOUT = "ModelNet40 HDF5"
SHAPENET_LAYOUT = "ShapeNet-part HDF5"


@dataclass
class SplitSource:
    """One split to convert: its size and a reader of clouds ``start..stop`` at the output resolution."""

    name: str
    size: int
    read: Callable[[int, int, tqdm], PointCloudSet]
    class_names: list[str]


def prepare_dataset(cfg: Config, out: Path, points: int = POINTS, chunk: int = CHUNK) -> dict:
    """Convert the dataset of ``cfg.data`` into ``out`` (see the module doc); returns a summary.

    Raises DataError when ``out`` holds something else or was prepared with other settings.
    """
    from dd3d.data import load_raw_split, shape_files

    out = Path(out)
    part_layout = cfg.data.name == "shapenet_part"
    split_names = ("train", "val", "test") if part_layout else ("train", "test")
    seed = cfg.data.rotation_seed
    sources = [_source(split, shape_files(cfg, split), lambda s=split: load_raw_split(cfg, s), points, seed)
               for split in split_names]
    manifest = {
        "format": FORMAT,
        "source": {"name": cfg.data.name, "root": cfg.data.root, "variant": cfg.data.variant},
        "layout": SHAPENET_LAYOUT if part_layout else MODELNET_LAYOUT,
        "points": points, "seed": seed, "chunk": chunk,
        "splits": {source.name: source.size for source in sources},
    }
    summary = {"out": str(out), "layout": manifest["layout"], "loader": "shapenet_part" if part_layout else "modelnet40",
               "splits": manifest["splits"], "points": points}
    if _finished(out, manifest):
        return {**summary, "written": 0, "already_prepared": True}
    partial = out.parent / f".{out.name}.partial"
    _start(partial, manifest)
    total = sum(source.size for source in sources)
    done = sum(min(chunk, source.size - start) for source in sources for start in range(0, source.size, chunk)
               if _chunk_path(partial, source.name, start, chunk).is_file())  # written before an interruption
    try:
        with tqdm(total=total, initial=done, desc=f"prepare {out.name}", unit="shape") as bar:
            for source in sources:
                _write_split(partial, out.name, source, chunk, part_layout, bar)
    except DataError:
        if not any(partial.glob("ply_data_*.h5")):  # nothing worth resuming from
            shutil.rmtree(partial)
        raise
    if not part_layout:  # the ShapeNet-part loader knows its 16 categories
        write_text(partial / "shape_names.txt", "".join(f"{name}\n" for name in sources[0].class_names))
    os.replace(partial, out)  # out is absent or an empty folder (checked by _finished)
    return {**summary, "written": total - done, "already_prepared": False}


def _source(split: str, files: FileSplit | None, load: Callable[[], PointCloudSet], points: int, seed: int
            ) -> SplitSource:
    """A split read in chunks: file by file, or sliced from the arrays of an HDF5/built-in source."""
    if files is not None:
        return SplitSource(split, len(files), lambda start, stop, bar: files.load(points, seed, start, stop, bar),
                           files.class_names)
    arrays = load()

    def read(start: int, stop: int, bar: tqdm) -> PointCloudSet:
        chunk = arrays.subset(np.arange(start, stop))
        native = chunk.points.shape[1]
        if native != points:
            picks = np.stack([resample(native, points, seed, index) for index in range(start, stop)])
            rows = np.arange(stop - start)[:, None]
            chunk = chunk.with_points(chunk.points[rows, picks], None if chunk.parts is None else chunk.parts[rows, picks])
        bar.update(stop - start)
        return chunk

    return SplitSource(split, len(arrays), read, arrays.class_names)


def _finished(out: Path, manifest: dict) -> bool:
    """True when ``out`` already holds this very conversion; raises when it holds something else."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder; choose another --out")
    recorded = out / MANIFEST
    if recorded.is_file():
        if _read_manifest(recorded) != manifest:
            raise DataError(f"{recorded}: {out} was prepared from another source or with other settings; "
                            "choose another --out or delete it")
        return True
    if any(out.iterdir()):
        raise DataError(f"{out}: folder exists and is not a dd3d prepare output (no {MANIFEST}); "
                        "choose another --out")
    return False


def _start(partial: Path, manifest: dict) -> None:
    """Create the partial folder, or check that an interrupted one was started with the same settings."""
    recorded = partial / MANIFEST
    if recorded.is_file():
        if _read_manifest(recorded) != manifest:
            raise DataError(f"{recorded}: an interrupted conversion with other settings or another source; "
                            f"delete {partial} to start again")
        remove_temporaries(partial)
        return
    partial.mkdir(parents=True, exist_ok=True)
    write_json(recorded, manifest)


def _read_manifest(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable {MANIFEST} ({exc})") from None


def _chunk_path(folder: Path, split: str, start: int, chunk: int) -> Path:
    return folder / f"ply_data_{split}{start // chunk}.h5"


def _write_split(folder: Path, out_name: str, source: SplitSource, chunk: int, part_layout: bool, bar: tqdm
                 ) -> None:
    """Write the chunks of one split not written yet, then its list of files."""
    files = []
    for start in range(0, source.size, chunk):
        path = _chunk_path(folder, source.name, start, chunk)
        files.append(path.name)
        if not path.is_file():
            _write_chunk(path, source.read(start, min(start + chunk, source.size), bar), part_layout)
    if part_layout:
        write_text(folder / f"{source.name}_hdf5_file_list.txt", "".join(f"{name}\n" for name in files))
    else:
        write_text(folder / f"{source.name}_files.txt", "".join(f"data/{out_name}/{name}\n" for name in files))


def _write_chunk(path: Path, clouds: PointCloudSet, part_layout: bool) -> None:
    """One h5 file of the release layout, written atomically."""
    points = normalize_unit_sphere(torch.from_numpy(clouds.points)).numpy().astype(np.float32)
    label_type = np.uint8 if clouds.num_classes <= 256 else np.int32
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as file:
        file.create_dataset("data", data=points)
        file.create_dataset("label", data=clouds.labels[:, None].astype(label_type))
        if part_layout:
            file.create_dataset("pid", data=clouds.parts.astype(np.uint8))
        elif clouds.names is not None:
            file.create_dataset("name", data=np.array([name.encode() for name in clouds.names]))

