"""Device selection: ``auto`` picks CUDA when present, else the CPU."""
from __future__ import annotations

import torch

from dd3d.errors import ConfigError


def resolve_device(name: str, threads: int = 0) -> torch.device:
    """The torch device for config value ``name``; ``threads`` > 0 caps CPU threads."""
    if threads > 0:
        torch.set_num_threads(threads)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but this torch build sees no CUDA device "
                          "(use device: auto or cpu; README 'GPU' explains installing a CUDA build)")
    return torch.device(name)


def describe(device: torch.device) -> str:
    """A short human description, e.g. 'cpu (2 threads)' or 'cuda:0 (NVIDIA H100)'."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return f"cpu ({torch.get_num_threads()} threads)"
