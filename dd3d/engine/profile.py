"""The lab profile: config overrides that make a distillation iteration fast enough to watch."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from dd3d.config import Config, load_config

#: the lab's generator (beyond the paper, whose scalar noise draws every cloud as one curve): 2-D noise per
#: point at ω0 30, a folded sheet, so fitted clouds are recognisable surfaces (docs/fidelity.md §4)
SHEET_GENERATOR: tuple[str, ...] = ("distill.generator.noise_dim=2", "distill.generator.omega0=30")
#: config overrides applied by ``dd3d-lab`` before the user's ``--set``: on the built-in config with
#: 2 CPU cores each method completes about two iterations per second (docs/lab.md)
LAB_PROFILE: tuple[str, ...] = (
    "distill.resolution=128",
    "distill.real_batch=4",
    "distill.outer_loop=1",
    "distill.inner_loop=1",
    "distill.generator.width=128",
    # DD3D starts from the herding clouds (beyond the paper; --set distill.generator.init=noise for the
    # paper's start): after the fit's half minute its clouds are about as close to real shapes as GM's
    "distill.generator.init=real",
    # ... with the sheet generator (docs/results.md, "The lab")
    *SHEET_GENERATOR,
)
#: torch threads on the CPU when the config leaves ``threads`` at 0 (a core stays free for the window)
LAB_CPU_THREADS = 1
#: the methods shown side by side, in panel order
LAB_METHODS: tuple[str, ...] = ("gm", "dd3d")
#: points of the displayed (and exported) DD3D clouds unless chosen otherwise
DEFAULT_RESOLUTION = 2048


def load_lab_config(path: str | Path, overrides: Sequence[str] = (), profile: bool = True) -> Config:
    """``path`` with :data:`LAB_PROFILE` (unless ``profile`` is False) and then ``overrides`` applied."""
    return load_config(path, [*(LAB_PROFILE if profile else ()), *overrides])
