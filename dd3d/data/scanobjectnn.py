"""ScanObjectNN main split (OBJ_BG and OBJ_ONLY variants) from its HDF5 release.

Files: ``h5_files/main_split/{training,test}_objectdataset.h5`` (OBJ_BG; ``_nobg`` suffix for
OBJ_ONLY), keys ``data`` (N, 2048, 3) float and ``label`` (N,) or (N, 1) integer; ``mask`` is
ignored. ``root`` may be the download folder, its ``h5_files`` folder or ``main_split`` itself.
"""
from __future__ import annotations

from pathlib import Path

from dd3d.data.base import PointCloudSet
from dd3d.data.h5util import Key, check_choice, missing_root, read_h5

SCANOBJECTNN_CLASSES = (
    "bag", "bin", "box", "cabinet", "chair", "desk", "display", "door", "shelf", "table", "bed",
    "pillow", "sink", "sofa", "toilet",
)
SPLITS = ("train", "test")
VARIANTS = ("obj_bg", "obj_only")
LAYOUT = "ScanObjectNN HDF5 (h5_files/main_split)"
KEY_FILES = (
    "main_split/training_objectdataset.h5, main_split/test_objectdataset.h5, and *_nobg.h5 "
    "for obj_only"
)
KEYS = (
    Key("data", "f", (("N", "P", 3),)),
    Key("label", "iu", (("N",), ("N", 1))),
)


def load_scanobjectnn(root: Path, split: str, variant: str) -> PointCloudSet:
    """Load one split ("train" or "test") of ScanObjectNN's main split, variant obj_bg|obj_only."""
    root = Path(root)
    check_choice("split", split, SPLITS)
    check_choice("variant", variant, VARIANTS)
    if not root.is_dir():
        raise missing_root(root, LAYOUT, KEY_FILES)
    name = f"{'training' if split == 'train' else 'test'}_objectdataset"
    name += "_nobg.h5" if variant == "obj_only" else ".h5"
    path = _find(root, name)
    arrays = read_h5(path, KEYS)
    return PointCloudSet(
        points=arrays["data"],
        labels=arrays["label"].reshape(-1),
        class_names=list(SCANOBJECTNN_CLASSES),
        source=str(path),
        layout=f"{LAYOUT}, {variant}",
    )


def _find(root: Path, name: str) -> Path:
    """``name`` in ``root/main_split``, ``root/h5_files/main_split`` or ``root`` itself."""
    for folder in (root / "main_split", root / "h5_files" / "main_split", root):
        if (folder / name).is_file():
            return folder / name
    raise missing_root(
        root, LAYOUT, KEY_FILES, f"{name} not found in main_split/, h5_files/main_split/ or here"
    )
