"""Distillation across processes (torch.distributed, Gloo on 127.0.0.1): same weights as one process,
rank-0-only outputs, a clear error instead of a hang when a rank stops, and the pieces (sharding,
BatchNorm moments, keyed random streams)."""
from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import REPO, run_cli

from dd3d.config import Config, load_config
from dd3d.distill import build_method, distributed
from dd3d.distill.distributed import Group, timeout_seconds
from dd3d.distill.run import build_context, distill
from dd3d.errors import ConfigError, DD3DError
from dd3d.io import load_checkpoint

TINY_DIST = [
    "data.resolution=48", "data.builtin.train_per_class=6", "data.builtin.test_per_class=2", "data.max_classes=4",
    "distill.resolution=32", "eval.resolution=32", "distill.real_batch=4", "distill.iterations=3",
    "distill.outer_loop=2", "distill.inner_loop=1", "distill.generator.width=32", "distill.checkpoint_every=1",
    "model.rotator.kind=learned", "threads=1", "device=cpu",
]
# threads=1 everywhere: torchrun gives each process OMP_NUM_THREADS=1, and CPU kernels sum in a
# thread-count-dependent order, so only equal thread counts can give bit-identical results
# segmentation: PointNetSeg has BatchNorm, and odd outer steps match per part (Eq. 14)
TINY_SEG = TINY_DIST[:-3] + ["data.resolution=48", "data.max_classes=3", "distill.batchnorm_clouds=2", "threads=1",
                             "device=cpu"]
# real clouds at 48 points drawn fresh at 32 for every batch (distill.real_sampling), dd3d warm-started
RUNS = {"dd3d": ("shapes.yaml", TINY_DIST + ["distill.generator.init=real", "distill.generator.init_steps=3"]),
        "gm": ("shapes-seg.yaml", TINY_SEG)}
# rank 1 stops answering after its second iteration (a hung or unreachable node); rank 0 must give up
HANGING_RANK = """
import os, sys, json, time
from pathlib import Path
from dd3d.config import load_config
from dd3d.distill.distributed import PeerLost
from dd3d.distill.run import distill

def hang(iteration, loss):
    if iteration == 2 and os.environ["RANK"] == "1":
        time.sleep(600)

try:
    distill(load_config(sys.argv[1], json.loads(sys.argv[2])), Path(sys.argv[3]), progress=False, on_iteration=hang)
except PeerLost as exc:
    print(f"dd3d: error: {exc}", file=sys.stderr)
    sys.exit(2)
"""


def tiny(method: str) -> list[str]:
    return RUNS[method][1] + [f"distill.method={method}"]


def run_config(method: str) -> Config:
    return load_config(REPO / "configs" / RUNS[method][0], tiny(method))


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One-process runs, the reference of every multi-process run: dd3d classifying, gm segmenting."""
    root = tmp_path_factory.mktemp("single")
    threads = torch.get_num_threads()  # the runs set 1 thread for the whole process: restore it after
    try:
        for method in RUNS:
            distill(run_config(method), root / method, progress=False)
    finally:
        torch.set_num_threads(threads)
    return {method: root / method for method in RUNS}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_same_result(a: Path, b: Path, method: str) -> None:
    """The same loss curve and weights (bit-identical on this CPU; the tolerance only absorbs
    rounding, as any real difference grows to ~1e-3 within an iteration)."""
    curve_a, curve_b = (json.loads((run / "distill.json").read_text())["loss_curve"] for run in (a, b))
    assert curve_b == pytest.approx(curve_a, rel=1e-6)
    if method == "dd3d":
        ga, gb = (load_checkpoint(run / "generator.pt")["generator"] for run in (a, b))
        for key in ga:
            torch.testing.assert_close(gb[key], ga[key], atol=1e-6, rtol=0)
    else:
        with h5py.File(a / "synthetic.h5") as fa, h5py.File(b / "synthetic.h5") as fb:
            np.testing.assert_allclose(fb["data"][:], fa["data"][:], atol=1e-6, rtol=0)
            assert np.array_equal(fb["pid"][:], fa["pid"][:])


@pytest.mark.parametrize("method", list(RUNS))
def test_torchrun_two_processes_match_one(method: str, single: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    sets = sum((["--set", s] for s in tiny(method)), [])
    result = run_cli("--standalone", "--nproc-per-node", "2", "-m", "dd3d", "distill", "--config",
                     f"configs/{RUNS[method][0]}", "--out", str(out), *sets, module="torch.distributed.run", timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(f"{method} cpc=1:") == 1 and "2 processes" in result.stdout  # rank 0 only
    assert result.stderr.count("0/3 [00:00<?, ?it/s]") == 1  # one progress bar
    assert_same_result(single[method], out, method)
    summary = json.loads((out / "distill.json").read_text())
    m = build_method(method, build_context(run_config(method), torch.device("cpu")))
    params = [p for group in m.optimizer.param_groups for p in group["params"]]
    # per outer step one float64 all-reduce of every gradient, a presence flag per tensor and the loss,
    # and for each BatchNorm layer its channels' two moments and the count
    norms = [n.num_features for n in m.ctx.new_network().modules() if isinstance(n, torch.nn.BatchNorm1d)]
    assert len(norms) == (3 if method == "gm" else 0)
    per_step = sum(p.numel() for p in params) + len(params) + 1 + sum(2 * c + 1 for c in norms)
    assert summary["processes"] == 2 and summary["all_reduce_bytes_per_iteration"] == m.outer * 8 * per_step
    assert not (out / "checkpoint.pt").exists()


def test_a_hung_rank_ends_the_other_after_the_timeout_with_a_resumable_checkpoint(single: dict[str, Path],
                                                                                   tmp_path: Path) -> None:
    out = tmp_path / "run"
    port = str(free_port())
    procs = []
    for rank in (0, 1):  # what torchrun does, without its supervisor (which would stop rank 1 itself)
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "WORLD_SIZE": "2", "RANK": str(rank),
               "LOCAL_RANK": str(rank), "DD3D_DIST_TIMEOUT": "15", "PYTHONWARNINGS": "ignore"}
        procs.append(subprocess.Popen([sys.executable, "-c", HANGING_RANK, str(REPO / "configs" / RUNS["dd3d"][0]),
                                       json.dumps(tiny("dd3d")), str(out)], cwd=REPO, env=env, text=True,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    try:
        _, err = procs[0].communicate(timeout=120)
    finally:
        procs[1].kill()
        procs[1].communicate()
    assert procs[0].returncode == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "rank 0 of 2: another process died or did not answer within 15 s" in lines[0]
    assert f"dd3d distill --resume {out}" in lines[0]
    assert load_checkpoint(out / "checkpoint.pt")["iteration"] == 2 and not (out / "generator.pt").exists()
    distill(run_config("dd3d"), out, resume=True, progress=False)  # one process continues the 2-process run
    assert_same_result(single["dd3d"], out, "dd3d")


def test_classes_are_sharded_in_contiguous_blocks() -> None:
    blocks = [Group(rank, 3).shard(7) for rank in range(3)]
    assert blocks == [[0, 1, 2], [3, 4], [5, 6]]
    assert Group().shard(4) == [0, 1, 2, 3]
    with pytest.raises(ConfigError, match="5 processes for 4 classes"):
        Group(0, 5).shard(4)


def test_timeout_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DD3D_DIST_TIMEOUT", raising=False)
    assert timeout_seconds() == 300
    monkeypatch.setenv("DD3D_DIST_TIMEOUT", "2.5")
    assert timeout_seconds() == 2.5
    for bad in ("soon", "0"):
        monkeypatch.setenv("DD3D_DIST_TIMEOUT", bad)
        with pytest.raises(DD3DError, match="DD3D_DIST_TIMEOUT"):
            timeout_seconds()


def test_only_gradient_matching_methods_run_in_several_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = build_context(run_config("dd3d"), torch.device("cpu"))
    monkeypatch.setattr(distributed, "_active", Group(1, 2))
    assert build_method("dd3d", ctx).classes == [2, 3]
    with pytest.raises(ConfigError, match="'dm' runs in one process only"):
        build_method("dm", ctx)


def test_keyed_streams_do_not_depend_on_order() -> None:
    ctx = build_context(run_config("dd3d"), torch.device("cpu"))
    before = ctx.rng.get_state()
    with ctx.drawing(2, 0, 1, 3):
        first = ctx.real_batch(3)[0]
    assert torch.equal(ctx.rng.get_state(), before)  # the sequential stream is restored, not consumed
    ctx.real_batch(0)  # other draws in between change nothing
    with ctx.drawing(2, 0, 1, 3):
        again = ctx.real_batch(3)[0]
    with ctx.drawing(2, 0, 1, 2):
        other = ctx.real_batch(3)[0]
    assert torch.equal(first, again) and not torch.equal(first, other)


class ThreadSum:
    """An in-place sum over threads: what an all-reduce does over processes."""

    def __init__(self, n: int) -> None:
        self.barrier, self.parts = threading.Barrier(n), [torch.empty(0)] * n

    def reduce(self, rank: int, tensor: torch.Tensor) -> None:
        self.parts[rank] = tensor.clone()
        self.barrier.wait()
        tensor.copy_(sum(self.parts))
        self.barrier.wait()


def test_batchnorm_statistics_split_over_processes_equal_one_batch() -> None:
    cfg = run_config("gm")
    ctx = build_context(cfg, torch.device("cpu"))
    whole = ctx.new_network()
    nets = [copy.deepcopy(whole), copy.deepcopy(whole)]  # statistics not set yet
    with ctx.drawing(1, 0, 0):
        ctx.freeze_batchnorm(whole)
    shards, total = [[0], [1, 2]], ThreadSum(2)

    def rank(r: int) -> None:  # its own context, as in another process
        other = build_context(cfg, torch.device("cpu"))
        with other.drawing(1, 0, 0):
            other.freeze_batchnorm(nets[r], shards[r], lambda t: total.reduce(r, t))

    threads = [threading.Thread(target=rank, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    norms = [m for m in whole.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(norms) == 3 and float(norms[0].running_var.min()) != 1.0
    for net in nets:
        for mine, ref in zip([m for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d)], norms):
            assert not mine.training
            torch.testing.assert_close(mine.running_mean, ref.running_mean, atol=1e-6, rtol=0)
            torch.testing.assert_close(mine.running_var, ref.running_var, atol=1e-6, rtol=0)
