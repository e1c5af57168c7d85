"""Where and how a result was produced: machine description and the exact command line.

Recorded in run metadata and printed by every benchmark next to its numbers."""
from __future__ import annotations

import os
import platform
import shlex
import sys

import torch


def machine() -> str:
    """One line describing where the benchmark ran."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return (f"{os.cpu_count()} CPU cores ({cpu}){gpu}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch threads, Python {platform.python_version()}")


def command() -> str:
    """The command line that ran this benchmark, ready to paste."""
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def peak_memory_bytes(device: torch.device) -> int:
    """Peak memory of this process so far: CUDA allocations on a GPU, else the peak resident set."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB
