"""Atomic file writing and safe loading of run artefacts.

Every output is written to a temporary file in the destination folder and renamed into place, so a
crash or SIGKILL never leaves a half-written file. Checkpoints are loaded with
``torch.load(weights_only=True)``: a run folder from someone else cannot execute code.
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

import torch

from dd3d.errors import DD3DError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; outputs are meant to be shared
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_temporaries(folder: str | Path, of: str | None = None) -> list[Path]:
    """Delete the temporary files that writes killed mid-way (e.g. by SIGKILL) left in ``folder``; with
    ``of``, only those of writes to the file named ``of`` (:func:`atomic_path` names them ``.NAME.*.tmp``)."""
    pattern = ".*.tmp" if of is None else f".{glob.escape(of)}.*.tmp"
    stale = [p for p in Path(folder).glob(pattern) if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2) + "\n")


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Save tensors and plain Python values (loadable with ``weights_only=True``)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, what: str = "checkpoint") -> dict[str, Any]:
    """Load a file written by :func:`save_checkpoint`, refusing anything that would run code."""
    path = Path(path)
    if not path.is_file():
        raise DD3DError(f"{path}: {what} not found")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; anything else is damaged or foreign
        raise DD3DError(f"{path}: not a readable {what} (truncated or corrupt?)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise DD3DError(f"{path}: refused to load {what}: it contains objects other than tensors and "
                        "plain values (weights_only loading)") from None
    except (RuntimeError, EOFError, OSError, ValueError):
        raise DD3DError(f"{path}: not a readable {what} (truncated or corrupt?)") from None
    if not isinstance(state, dict):
        raise DD3DError(f"{path}: not a dd3d {what} (expected a mapping, got {type(state).__name__})")
    return state
