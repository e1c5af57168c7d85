"""Distilled sets: the :class:`SyntheticSet` every method hands out (resampled to another resolution,
or generated from a DD3D generator), and on disk ``synthetic.h5`` (ModelNet h5 layout), ``generator.pt``,
PLY and NPZ exports. Below the distillation methods, evaluation, the engine and the CLI, which all use it.

``synthetic.h5`` follows the ModelNet40 h5 release (``data`` (M, P, 3) float32, ``label`` (M, 1)),
so any PointNet training script reads it; segmentation sets add ``pid`` (M, P) as in ShapeNet-part.
``generator.pt`` holds only tensors and plain values (loaded with ``weights_only=True``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from dd3d.data.h5util import Key, read_h5
from dd3d.data.prepare import resample
from dd3d.data.transforms import normalize_unit_sphere
from dd3d.errors import DD3DError
from dd3d.io import atomic_path, load_checkpoint
from dd3d.nn.generator import NOISE_SAMPLINGS, PointGenerator
from dd3d.nn.partition import NoisePartition, generate_labelled
from dd3d.nn.rotator import Rotator
from dd3d.palette import part_colors

SYNTHETIC_FILE = "synthetic.h5"
GENERATOR_FILE = "generator.pt"
GENERATOR_FORMAT = "dd3d-generator/1"


@dataclass
class SyntheticSet:
    """A distilled set as numpy arrays: points (M, P, 3) float32, labels (M,), optional parts (M, P)."""

    points: np.ndarray
    labels: np.ndarray
    parts: np.ndarray | None = None


def resample_set(synthetic: SyntheticSet, n: int, generator: torch.Generator) -> SyntheticSet:
    """A fixed-size synthetic set at another resolution (random subset; repeats points to upsample);
    part labels follow their points."""
    parts = None if synthetic.parts is None else torch.from_numpy(synthetic.parts)
    points, parts = resample(torch.from_numpy(synthetic.points), parts, n, "random", generator)
    return SyntheticSet(points.numpy(), synthetic.labels, None if parts is None else parts.numpy())


@torch.no_grad()
def generated_set(generator: PointGenerator, partition: NoisePartition | None, num_classes: int, cpc: int,
                  points: int, rng: torch.Generator) -> SyntheticSet:
    """All ``num_classes``·``cpc`` clouds of a DD3D generator at ``points`` points from fresh noise,
    unit-sphere normalised, labelled by class (sample s is class s // cpc), with part labels when a
    noise ``partition`` is given (segmentation)."""
    samples = torch.arange(num_classes * cpc, device=next(generator.parameters()).device)
    clouds, parts = generate_labelled(generator, partition, samples, cpc, points, rng)
    return SyntheticSet(normalize_unit_sphere(clouds).cpu().numpy().astype(np.float32), (samples // cpc).cpu().numpy(),
                        None if parts is None else parts.cpu().numpy())


def write_synthetic_h5(path: Path, synthetic: SyntheticSet, class_names: list[str]) -> None:
    """Write a synthetic set in the ModelNet h5 layout (atomically), class names as an attribute."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("data", data=synthetic.points.astype(np.float32))
        dtype = np.uint8 if len(class_names) <= 256 else np.int32
        f.create_dataset("label", data=synthetic.labels.reshape(-1, 1).astype(dtype))
        if synthetic.parts is not None:
            f.create_dataset("pid", data=synthetic.parts.astype(np.uint8))
        f.attrs["class_names"] = np.array(class_names, dtype=h5py.string_dtype())


def read_synthetic_h5(path: Path) -> tuple[SyntheticSet, list[str] | None]:
    """Read a file written by :func:`write_synthetic_h5` (or any ModelNet-layout h5)."""
    arrays = read_h5(path, [Key("data", "f", (("M", "P", 3),)), Key("label", "iu", (("M", 1), ("M",))),
                            Key("pid", "iu", (("M", "P"),), optional=True)])
    with h5py.File(path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in f.attrs.get("class_names", [])] or None
    labels = arrays["label"].reshape(-1).astype(np.int64)
    return SyntheticSet(arrays["data"].astype(np.float32), labels, arrays.get("pid")), names


class LoadedGenerator:
    """A trained generator and rotator read back from ``generator.pt``."""

    def __init__(self, path: Path) -> None:
        state = load_checkpoint(path, what="dd3d generator file")
        if state.get("format") != GENERATOR_FORMAT:
            raise DD3DError(f"{path}: not a dd3d generator file (format {state.get('format')!r}, "
                            f"expected {GENERATOR_FORMAT!r})")
        self.meta = {k: v for k, v in state.items() if k not in ("generator", "rotator")}
        noise = state.get("noise", "uniform")  # files before generator.noise: uniform
        if noise not in NOISE_SAMPLINGS:
            raise DD3DError(f"{path}: noise sampling {noise!r} recorded in the file is not one of "
                            f"{', '.join(NOISE_SAMPLINGS)}")
        try:
            self.num_classes, self.cpc = int(state["num_classes"]), int(state["cpc"])
            self.class_names: list[str] = list(state["class_names"])
            noise_dim = int(state.get("noise_dim", 1))  # files before noise_dim: 1
            self.generator = PointGenerator(self.num_classes * self.cpc, state["width"], state["layers"],
                                            state["omega0"], noise_dim, noise)
            self.rotator = Rotator(state["rotator_kind"], state["rotator_fourier"], state["rotator_omega"])
        except KeyError as exc:
            raise DD3DError(f"{path}: dd3d generator file without its {exc.args[0]!r} field") from None
        except (TypeError, ValueError):
            raise DD3DError(f"{path}: dd3d generator file with malformed sizes or rotator settings") from None
        try:
            self.generator.load_state_dict(state["generator"])
            self.rotator.load_state_dict(state["rotator"])
        except (RuntimeError, KeyError):
            raise DD3DError(f"{path}: generator weights do not match the sizes recorded in the file") from None
        self.generator.eval()
        partition = state.get("partition")
        try:
            #: segmentation runs: the noise partition giving every generated point its part label
            self.partition = None if partition is None else NoisePartition.from_payload(partition)
        except (KeyError, TypeError, ValueError):
            raise DD3DError(f"{path}: the part partition recorded in the file is malformed") from None
        self.part_names: list[str] | None = state.get("part_names")

    @property
    def category_parts(self) -> dict[int, list[int]] | None:
        """Category index -> its global part ids (segmentation runs), else None."""
        return None if self.partition is None else dict(enumerate(self.partition.part_ids))

    def generate(self, points: int, generator: torch.Generator) -> SyntheticSet:
        """All K·cpc clouds at ``points`` points from fresh noise, unit-sphere normalised, with part
        labels for segmentation runs."""
        return generated_set(self.generator, self.partition, self.num_classes, self.cpc, points, generator)


def write_ply(path: Path, synthetic: SyntheticSet, category_parts: dict[int, list[int]] | None = None) -> None:
    """All clouds in one binary PLY with per-vertex ``cloud`` and ``label`` (and ``part``) properties.

    Segmentation sets also get ``red``/``green``/``blue`` (uchar) part colours: the k-th part of a
    cloud's category (``category_parts``) is ``dd3d.palette.PART_COLORS[k]``, as in the lab. Hand-written
    because Open3D's writer cannot store extra per-vertex properties; the layout is plain binary
    little-endian PLY that Open3D, MeshLab and CloudCompare read.
    """
    m, p, _ = synthetic.points.shape
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("cloud", "<i4"), ("label", "<i4")]
    if synthetic.parts is not None:
        fields += [("part", "<i4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]
    rows = np.empty(m * p, dtype=fields)
    xyz = synthetic.points.reshape(-1, 3)
    rows["x"], rows["y"], rows["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    rows["cloud"] = np.repeat(np.arange(m), p)
    rows["label"] = np.repeat(synthetic.labels, p)
    if synthetic.parts is not None:
        rows["part"] = synthetic.parts.reshape(-1)
        table = category_parts or {}
        colors = np.concatenate([part_colors(parts, table.get(int(label), [])) for parts, label
                                 in zip(synthetic.parts, synthetic.labels)]) if m else np.zeros((0, 3))
        rgb = np.round(colors * 255).astype(np.uint8)
        rows["red"], rows["green"], rows["blue"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    ply_types = {"<f4": "float", "<i4": "int", "u1": "uchar"}
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {m * p}"]
    header += [f"property {ply_types[t]} {name}" for name, t in fields] + ["end_header"]
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(("\n".join(header) + "\n").encode())
        f.write(rows.tobytes())


def write_npz(path: Path, synthetic: SyntheticSet, class_names: list[str]) -> None:
    arrays = {"data": synthetic.points, "label": synthetic.labels, "class_names": np.array(class_names)}
    if synthetic.parts is not None:
        arrays["pid"] = synthetic.parts
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def check_output_suffix(path: Path) -> None:
    """Refuse an output file type :func:`write_any` cannot write (checked before any work is done)."""
    if path.suffix.lower() not in (".h5", ".hdf5", ".ply", ".npz"):
        raise DD3DError(f"--out {path}: unknown file type {path.suffix.lower()!r} (expected .h5, .ply or .npz)")


def write_any(path: Path, synthetic: SyntheticSet, class_names: list[str],
              category_parts: dict[int, list[int]] | None = None) -> None:
    """Write by extension: ``.h5`` (ModelNet / ShapeNet-part layout), ``.ply`` (part colours) or ``.npz``."""
    check_output_suffix(path)
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        write_synthetic_h5(path, synthetic, class_names)
    elif suffix == ".ply":
        write_ply(path, synthetic, category_parts)
    else:
        write_npz(path, synthetic, class_names)
