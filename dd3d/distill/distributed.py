"""Distillation across processes with ``torch.distributed``, launched by ``torchrun``.

The matching loss of Eq. 13/14 is a sum over classes, so its gradient is the sum of per-class
gradients. Each process (rank) takes a contiguous block of classes (:meth:`Group.shard`), draws and
augments real batches for those classes only and computes their distances; one all-reduce (SUM) of
the float64 gradients of the synthetic representation (generator or point tensors, plus rotator)
then gives every rank the single-process gradient, so every rank takes the same optimiser step and
holds the same weights. What every rank needs whole (the fresh network, the BatchNorm clouds, the
inner loop on the full synthetic set) is drawn from random streams keyed by (seed, iteration, outer
step), the same on every rank (:meth:`dd3d.distill.base.DistillContext.drawing`). Only rank 0 writes
the run folder and shows progress.

``torchrun`` sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT. The backend is NCCL on
GPUs (rank r of a node on ``cuda:LOCAL_RANK``) and Gloo on the CPU. Collectives give up after
``DD3D_DIST_TIMEOUT`` seconds (default 300), so a rank that died or hangs ends the others with a
one-line :class:`PeerLost` error instead of a hang (with NCCL, whose errors are asynchronous,
PyTorch's watchdog may instead abort the process after that timeout).

We use torch.distributed's collectives directly rather than DistributedDataParallel: DDP wraps a
module whose ``backward`` it hooks, while here the reduced tensors are a generator *or* a bare point
tensor reached through a double backward (``create_graph``); one flat all-reduce per outer step is
the same communication as DDP's single bucket (in float64, see :meth:`Group.set_summed_gradients`).
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.distributed as dist

from dd3d.errors import ConfigError, DD3DError

TIMEOUT_ENV = "DD3D_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 300.0


class PeerLost(DD3DError):
    """Another process of the job died, or did not answer a collective within the timeout."""


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise DD3DError(f"environment variable {name}: got {value!r}, expected an integer (set by torchrun)") from None


def timeout_seconds() -> float:
    """``DD3D_DIST_TIMEOUT`` (seconds, > 0), default 300."""
    value = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT_S))
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise DD3DError(f"environment variable {TIMEOUT_ENV}: got {value!r}, expected a number of seconds > 0")
    return seconds


def launched_rank() -> int:
    """This process's rank in the torchrun job (0 when not launched by torchrun)."""
    return _env_int("RANK", 0)


def _first_line(exc: BaseException) -> str:
    """The backend's message without its ``[file:line]`` prefix, first sentence only."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text.split("] ", 1)[-1].split(". ")[0].rstrip(".")


@dataclass
class Group:
    """This process's place in the job, and the collectives distillation needs (no-ops in one process)."""

    rank: int = 0
    world: int = 1
    timeout_s: float = DEFAULT_TIMEOUT_S
    #: bytes this process has all-reduced so far (communication volume; 0 in one process)
    reduced_bytes: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes outputs, checkpoints and progress."""
        return self.rank == 0

    def shard(self, num_classes: int) -> list[int]:
        """This rank's contiguous block of the classes 0 … num_classes−1 (block sizes differ by at most 1)."""
        if self.world > num_classes:
            raise ConfigError(f"torchrun: {self.world} processes for {num_classes} classes; each process needs "
                              f"at least one class (use --nproc-per-node {num_classes} or fewer)")
        return np.array_split(np.arange(num_classes), self.world)[self.rank].tolist()

    def all_reduce(self, tensor: torch.Tensor, op: dist.ReduceOp.RedOpType = dist.ReduceOp.SUM) -> None:
        """Reduce ``tensor`` over every process in place (default: sum)."""
        if self.world == 1:
            return
        try:
            dist.all_reduce(tensor, op=op)
        except RuntimeError as exc:  # Gloo/NCCL errors and timeouts (DistBackendError is one)
            raise PeerLost(f"rank {self.rank} of {self.world}: another process died or did not answer within "
                           f"{self.timeout_s:g} s ({TIMEOUT_ENV}): {_first_line(exc)}") from None
        self.reduced_bytes += tensor.numel() * tensor.element_size()

    def set_summed_gradients(self, params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor | None],
                             loss: torch.Tensor) -> float:
        """Set every parameter's ``.grad`` to the sum over processes of ``grads`` (this process's float64
        partial sums; None where it has none) and return the summed ``loss``, in one float64 all-reduce.
        Summing in float64 and rounding once makes the result independent of how classes are grouped."""
        if self.world > 1:
            present = [float(g is not None) for g in grads]
            flat = torch.cat([(g if g is not None else p.new_zeros(p.shape, dtype=torch.float64)).reshape(-1)
                              for p, g in zip(params, grads)] + [loss.new_tensor(present), loss.reshape(1)])
            self.all_reduce(flat)
            *summed, flags, loss = flat.split([p.numel() for p in params] + [len(params), 1])
            grads = [g if there else None for g, there in zip(summed, flags.tolist())]
        for p, g in zip(params, grads):
            p.grad = None if g is None else g.view_as(p).to(p.dtype)
        return float(loss)

    def require_same(self, what: str, text: str) -> None:
        """Fail on every rank unless every rank passes the same ``text`` (e.g. its resolved config)."""
        if self.world == 1:
            return
        digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:7], "little")
        both = torch.tensor([digest, -digest], dtype=torch.int64)
        both = both.cuda() if dist.get_backend() == "nccl" else both
        self.all_reduce(both, dist.ReduceOp.MAX)
        if both.tolist() != [digest, -digest]:
            raise DD3DError(f"rank {self.rank} of {self.world}: the processes see different {what}; "
                            "every node needs the same config file, dataset and dd3d version")


_active: Group | None = None


def current() -> Group:
    """The group of the running :func:`process_group` (one process when none is running)."""
    return _active if _active is not None else Group()


@contextlib.contextmanager
def process_group(device: torch.device) -> Iterator[tuple[Group, torch.device]]:
    """Join the torchrun job described by the environment for the duration of the block.

    Yields the :class:`Group` and this rank's device: ``cuda:LOCAL_RANK`` when ``device`` is CUDA
    (backend NCCL), else ``device`` (backend Gloo). Without torchrun (WORLD_SIZE unset or 1) it yields
    a one-process group and starts nothing.
    """
    global _active
    world = _env_int("WORLD_SIZE", 1)
    group = Group(launched_rank(), world, timeout_seconds()) if world > 1 else Group()
    started = False
    try:
        if world > 1:
            device = _rank_device(device)
            _start(group, device)
            started = True
        _active = group
        yield group, device
    finally:
        _active = None
        if started:
            dist.destroy_process_group()


def _rank_device(device: torch.device) -> torch.device:
    if device.type != "cuda":
        return device
    if device.index is not None:
        raise ConfigError(f"device: {str(device)!r} names one GPU, but under torchrun every process takes "
                          "cuda:LOCAL_RANK; use device: auto or cuda")
    device = torch.device("cuda", _env_int("LOCAL_RANK", 0))
    torch.cuda.set_device(device)
    return device


def _start(group: Group, device: torch.device) -> None:
    cuda = device.type == "cuda"
    try:
        dist.init_process_group("nccl" if cuda else "gloo", rank=group.rank, world_size=group.world,
                                timeout=datetime.timedelta(seconds=group.timeout_s),
                                device_id=device if cuda else None)
    except (RuntimeError, ValueError) as exc:  # rendezvous timeout (DistStoreError), missing MASTER_ADDR
        where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
        raise PeerLost(f"rank {group.rank} of {group.world}: could not join the job at {where} within "
                       f"{group.timeout_s:g} s ({TIMEOUT_ENV}): {_first_line(exc)}") from None
