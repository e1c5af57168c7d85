"""Write tiny datasets in the exact on-disk formats of the real releases, for tests.

Every writer creates its folder, fills it with random clouds (deterministic from ``seed``) and
returns the path a loader should be pointed at. Labels are shuffled so that files are not sorted
by class, as in the real releases.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from dd3d.data.shapenet_part import CATEGORIES, TXT_FOLDER

SCANOBJECTNN_FILES = {
    "obj_bg": "{split}_objectdataset.h5",
    "obj_only": "{split}_objectdataset_nobg.h5",
}


def shared_modelnet10() -> Path | None:
    """The real ModelNet10 h5 folder next to the repository (``/work/shared``), or None."""
    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "modelnet10_hdf5_1024"
    return path if path.is_dir() else None


def random_clouds(rng: np.random.Generator, count: int, points: int) -> np.ndarray:
    """``count`` float32 clouds of ``points`` points in [-1, 1]^3."""
    return rng.uniform(-1, 1, size=(count, points, 3)).astype(np.float32)


def shuffled_labels(rng: np.random.Generator, counts: Sequence[int]) -> np.ndarray:
    """Labels with ``counts[c]`` copies of class ``c``, in random order."""
    return rng.permutation(np.repeat(np.arange(len(counts)), counts))


def write_h5(path: Path, **arrays: np.ndarray) -> Path:
    """One HDF5 file holding ``arrays`` under their keyword names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as file:
        for key, value in arrays.items():
            file.create_dataset(key, data=value)
    return path


def truncate(path: Path, fraction: float = 0.5) -> Path:
    """Cut a file down to ``fraction`` of its size (an interrupted download)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def write_garbage(path: Path) -> Path:
    """Bytes that are not in any cloud format, e.g. an HTML error page saved as the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"<html>404 Not Found</html>\n\x00\x01\x02")
    return path


def write_modelnet_h5(root: Path, class_names: Sequence[str], train_counts: Sequence[int],
                      test_counts: Sequence[int], points: int = 32, files_per_split: int = 1,
                      seed: int = 0, list_prefix: str | None = "data/modelnet40_ply_hdf5_2048/",
                      shape_names: bool = True) -> Path:
    """A ``modelnet40_ply_hdf5_2048``-style folder.

    ``ply_data_{split}{k}.h5`` with ``data``, ``label`` (N, 1) uint8, ``normal``, ``faceId`` and
    ``name`` (``b"<class>_<i>"``); ``{split}_files.txt`` lines carry ``list_prefix`` (None: no
    list files); ``shape_names.txt`` unless ``shape_names`` is False.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, counts in (("train", train_counts), ("test", test_counts)):
        labels = shuffled_labels(rng, counts)
        data = random_clouds(rng, len(labels), points)
        names = np.array([f"{class_names[c]}_{i:04d}".encode() for i, c in enumerate(labels)])
        listed = []
        for k, index in enumerate(np.array_split(np.arange(len(labels)), files_per_split)):
            path = write_h5(
                root / f"ply_data_{split}{k}.h5",
                data=data[index],
                label=labels[index, None].astype(np.uint8),
                normal=random_clouds(rng, len(index), points),
                faceId=np.zeros((len(index), points), dtype=np.int32),
                name=names[index],
            )
            listed.append(f"{list_prefix}{path.name}")
        if list_prefix is not None:
            (root / f"{split}_files.txt").write_text("\n".join(listed) + "\n")
    if shape_names:
        (root / "shape_names.txt").write_text("\n".join(class_names) + "\n")
    return root


def write_scanobjectnn(root: Path, train_counts: Sequence[int], test_counts: Sequence[int],
                       points: int = 32, seed: int = 0,
                       variants: Sequence[str] = ("obj_bg", "obj_only"),
                       label_column: bool = False) -> Path:
    """A ScanObjectNN download: ``root/h5_files/main_split/{training,test}_objectdataset*.h5``.

    Keys ``data``, ``label`` ((N,) int64, or (N, 1) with ``label_column``) and ``mask`` (-1 on
    background points). Returns ``root``.
    """
    rng = np.random.default_rng(seed)
    folder = root / "h5_files" / "main_split"
    for variant in variants:
        for split, counts in (("training", train_counts), ("test", test_counts)):
            labels = shuffled_labels(rng, counts).astype(np.int64)
            mask = np.where(rng.random((len(labels), points)) < 0.3, -1, labels[:, None])
            write_h5(
                folder / SCANOBJECTNN_FILES[variant].format(split=split),
                data=random_clouds(rng, len(labels), points),
                label=labels[:, None] if label_column else labels,
                mask=mask.astype(np.int32),
            )
    return root


def _part_ids(rng: np.random.Generator, category: int, count: int) -> np.ndarray:
    info = CATEGORIES[category]
    return rng.integers(info.first_part, info.last_part + 1, size=count)


def write_shapenet_part_h5(root: Path, split_counts: dict[str, dict[int, int]], points: int = 32,
                           files_per_split: int = 1, seed: int = 0) -> Path:
    """``root/hdf5_data/ply_data_{split}{k}.h5`` with ``data``, ``label`` (N, 1) uint8, ``pid``.

    ``split_counts[split][category]`` shapes per category; part ids are random within each
    category's global range. Returns ``root``.
    """
    rng = np.random.default_rng(seed)
    for split, per_category in split_counts.items():
        labels = rng.permutation(np.repeat(list(per_category), list(per_category.values())))
        pid = np.stack([_part_ids(rng, int(c), points) for c in labels]).astype(np.uint8)
        data = random_clouds(rng, len(labels), points)
        for k, index in enumerate(np.array_split(np.arange(len(labels)), files_per_split)):
            write_h5(
                root / "hdf5_data" / f"ply_data_{split}{k}.h5",
                data=data[index],
                label=labels[index, None].astype(np.uint8),
                pid=pid[index],
            )
    return root


def write_shapenet_part_txt(root: Path, split_shapes: dict[str, dict[int, Sequence[int]]],
                            seed: int = 0, part_in_x: bool = False) -> Path:
    """``root/shapenetcore_partanno_segmentation_benchmark_v0_normal`` in the txt layout.

    ``split_shapes[split][category]`` lists the point count of each shape. Rows are
    ``x y z nx ny nz part`` (part written as a float, like the release); with ``part_in_x`` the x
    coordinate equals the part id so alignment after resampling can be checked. Returns the
    dataset folder (its parent is accepted by the loader too).
    """
    rng = np.random.default_rng(seed)
    folder = root / TXT_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "synsetoffset2category.txt").write_text(
        "".join(f"{c.name}\t{c.synset}\n" for c in CATEGORIES)
    )
    (folder / "train_test_split").mkdir(exist_ok=True)
    for split, per_category in split_shapes.items():
        entries = []
        for category, sizes in per_category.items():
            synset = CATEGORIES[category].synset
            (folder / synset).mkdir(exist_ok=True)
            for k, size in enumerate(sizes):
                token = f"{split}{k:04d}"
                part = _part_ids(rng, category, size)
                xyz = rng.uniform(-1, 1, size=(size, 3))
                if part_in_x:
                    xyz[:, 0] = part
                rows = np.column_stack([xyz, rng.uniform(-1, 1, size=(size, 3)), part])
                np.savetxt(folder / synset / f"{token}.txt", rows, fmt="%.6f")
                entries.append(f"shape_data/{synset}/{token}")
        listing = folder / "train_test_split" / f"shuffled_{split}_file_list.json"
        listing.write_text(json.dumps([entries[i] for i in rng.permutation(len(entries))]))
    return folder


def write_cloud(path: Path, xyz: np.ndarray, extra_columns: int = 0, delimiter: str = " ") -> Path:
    """One cloud file chosen by suffix: .ply/.pcd (Open3D), .npy or .txt (``extra_columns``
    random columns after x y z for .npy/.txt)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".ply", ".pcd"):
        import open3d as o3d

        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz.astype(np.float64)))
        o3d.io.write_point_cloud(str(path), cloud)
        return path
    table = np.column_stack([xyz, np.full((len(xyz), extra_columns), 0.5)])
    if path.suffix == ".npy":
        np.save(path, table.astype(np.float32))
    else:
        np.savetxt(path, table, fmt="%.6f", delimiter=delimiter)
    return path


def write_folder_dataset(root: Path, class_names: Sequence[str], train_counts: Sequence[int],
                         test_counts: Sequence[int], split_first: bool = False,
                         suffixes: Sequence[str] = (".npy",), points: int | tuple[int, int] = 32,
                         extra_columns: int = 0, delimiter: str = " ", seed: int = 0) -> Path:
    """A folder-per-class dataset: ``root/<class>/<split>/`` or (``split_first``)
    ``root/<split>/<class>/``; file ``i`` of a class uses ``suffixes[i % len(suffixes)]``.

    ``points`` is a fixed count or an inclusive (low, high) range drawn per cloud. Returns ``root``.
    """
    rng = np.random.default_rng(seed)
    for split, counts in (("train", train_counts), ("test", test_counts)):
        for name, count in zip(class_names, counts):
            folder = root / split / name if split_first else root / name / split
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                size = (points if isinstance(points, int)
                        else int(rng.integers(points[0], points[1] + 1)))
                suffix = suffixes[i % len(suffixes)]
                write_cloud(folder / f"{name}_{i:04d}{suffix}", random_clouds(rng, 1, size)[0],
                            extra_columns, delimiter)
    return root


# --- meshes and PointNet++ text ---------------------------------------------------------------

BOX_FACES = (  # two triangles per side of the unit cube, corners indexed by their (x, y, z) bits
    (0, 1, 3), (0, 3, 2), (4, 6, 7), (4, 7, 5),  # x = 0, x = 1
    (0, 4, 5), (0, 5, 1), (2, 3, 7), (2, 7, 6),  # y = 0, y = 1
    (0, 2, 6), (0, 6, 4), (1, 5, 7), (1, 7, 3),  # z = 0, z = 1
)


def box_mesh(size: Sequence[float]) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """An axis-aligned box centred at the origin with side lengths ``size``: 8 corners, 12 triangles."""
    bits = np.array([[(i >> 2) & 1, (i >> 1) & 1, i & 1] for i in range(8)], dtype=float)
    return (bits - 0.5) * np.asarray(size, dtype=float), list(BOX_FACES)


def write_mesh(path: Path, vertices: np.ndarray, faces: Sequence[Sequence[int]], off_defect: bool = False,
               line_end: str = "\n") -> Path:
    """A mesh file in the format of ``path``'s suffix, written as text the way exporters do.

    ``.off`` (``OFF`` line, counts, vertices, ``k i1 .. ik`` faces; ``off_defect`` runs the counts
    into the first line, ``OFF8 12 0``, as ModelNet's broken files), ``.obj`` (``v``/``f`` lines,
    1-based), ``.stl`` (ASCII ``facet`` blocks; triangles only), ``.ply`` (ASCII, ``vertex`` and
    ``face`` elements). Polygons are allowed in .off, .obj and .ply.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    corners = [" ".join(f"{value:.6f}" for value in vertex) for vertex in vertices]
    suffix = path.suffix.lower()
    if suffix == ".off":
        counts = f"{len(vertices)} {len(faces)} 0"
        lines = ([f"OFF{counts}"] if off_defect else ["OFF", counts]) + corners
        lines += [f"{len(face)} " + " ".join(map(str, face)) for face in faces]
    elif suffix == ".obj":
        lines = ["# written by tests/formats.py"] + [f"v {corner}" for corner in corners]
        lines += ["f " + " ".join(str(i + 1) for i in face) for face in faces]
    elif suffix == ".stl":
        lines = ["solid box"]
        for face in faces:
            lines += [" facet normal 0 0 0", "  outer loop"] + [f"   vertex {corners[i]}" for i in face]
            lines += ["  endloop", " endfacet"]
        lines.append("endsolid box")
    else:
        lines = ["ply", "format ascii 1.0", f"element vertex {len(vertices)}", "property float x",
                 "property float y", "property float z", f"element face {len(faces)}",
                 "property list uchar int vertex_indices", "end_header"] + corners
        lines += [f"{len(face)} " + " ".join(map(str, face)) for face in faces]
    with path.open("w", newline="") as handle:
        handle.write(line_end.join(lines) + line_end)
    return path


def write_mesh_dataset(root: Path, class_names: Sequence[str], train_counts: Sequence[int],
                       test_counts: Sequence[int], suffixes: Sequence[str] = (".off",), split_first: bool = False,
                       off_defect: bool = False, seed: int = 0) -> Path:
    """Meshes in a folder per class, ``root/<class>/<split>/<class>_0001.<suffix>`` as the original
    ModelNet release (``split_first``: ``root/<split>/<class>/``); each a box of random side lengths,
    file ``i`` of a class in ``suffixes[i % len(suffixes)]``. Returns ``root``."""
    rng = np.random.default_rng(seed)
    for split, counts in (("train", train_counts), ("test", test_counts)):
        for name, count in zip(class_names, counts):
            folder = root / split / name if split_first else root / name / split
            for i in range(count):
                vertices, faces = box_mesh(rng.uniform(0.5, 2.0, size=3))
                write_mesh(folder / f"{name}_{i + 1:04d}{suffixes[i % len(suffixes)]}", vertices, faces, off_defect)
    return root


def write_modelnet_resampled(root: Path, class_names: Sequence[str], train_counts: Sequence[int],
                             test_counts: Sequence[int], points: int = 20, prefix: str = "modelnet40",
                             delimiter: str = ",", line_end: str = "\n", seed: int = 0) -> Path:
    """A ``modelnet40_normal_resampled``-style folder: ``<class>/<class>_0001.txt`` with rows
    ``x,y,z,nx,ny,nz`` (``%.6f``; the release has 10,000 rows), shapes numbered per class with the
    training shapes first, lists ``<prefix>_{train,test}.txt`` (one ``<class>_0001`` a line) and
    ``<prefix>_shape_names.txt``. Returns ``root``."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    lists: dict[str, list[str]] = {"train": [], "test": []}
    for name, train, test in zip(class_names, train_counts, test_counts):
        (root / name).mkdir(exist_ok=True)
        for i in range(train + test):
            shape = f"{name}_{i + 1:04d}"
            rows = np.column_stack([random_clouds(rng, 1, points)[0], random_clouds(rng, 1, points)[0]])
            text = line_end.join(delimiter.join(f"{value:.6f}" for value in row) for row in rows) + line_end
            (root / name / f"{shape}.txt").write_bytes(text.encode())
            lists["train" if i < train else "test"].append(shape)
    for split, shapes in lists.items():
        (root / f"{prefix}_{split}.txt").write_bytes((line_end.join(shapes) + line_end).encode())
    (root / f"{prefix}_shape_names.txt").write_bytes((line_end.join(class_names) + line_end).encode())
    return root
