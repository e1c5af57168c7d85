"""Run folders in the lab's engine, without a display: finished runs side by side (``--run``) and a
run followed while another process writes it (``--watch``)."""
from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from runfolders import distill_process, make_run, start_watched_run, tiny_runs
from test_engine import started_engines

from dd3d.engine import Mode, RunEngine, RunFolder, Snapshot, State
from dd3d.errors import DD3DError
from dd3d.nn.generator import PointGenerator
from dd3d.synthetic import LoadedGenerator, read_synthetic_h5

TIMEOUT = 60.0


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    return tiny_runs(tmp_path_factory.mktemp("runs"))


@pytest.fixture
def engines():
    yield from started_engines(RunEngine)


def wait(engine: RunEngine, predicate, what: str, timeout: float = TIMEOUT) -> Snapshot:
    deadline = time.monotonic() + timeout
    seen = -1
    while time.monotonic() < deadline:
        snap = engine.snapshots.wait(deadline - time.monotonic(), newer_than=seen)
        if snap is not None and predicate(snap):
            return snap
        seen = snap.seq if snap is not None else seen
    latest = engine.snapshots.latest()
    raise AssertionError(f"timed out waiting for {what}; last: {latest and (latest.state, latest.message)}")


def test_two_runs_one_panel_each_and_the_slider_regenerates_only_the_generator_run(engines, runs,
                                                                                     tmp_path: Path) -> None:
    engine = engines([RunFolder.open(runs["dd3d"]), RunFolder.open(runs["gm"])], resolution=100)
    assert engine.panel_names == ("Real", "DD3D", "GM")
    first = wait(engine, lambda s: s.real is not None, "the runs")
    assert first.mode == Mode.RUNS and first.state == State.FINISHED
    assert first.class_names == ("airplane", "bed", "bottle") and len(first.real) == 64
    dd3d, gm = first.methods
    assert (dd3d.label, dd3d.cpc, dd3d.iteration, dd3d.regenerated, len(dd3d.cloud)) == ("DD3D", 2, 2, True, 100)
    assert (gm.label, gm.cpc, gm.iteration, gm.regenerated, len(gm.cloud)) == ("GM", 1, 2, False, 64)
    assert len(dd3d.losses) == 2 and np.isfinite(dd3d.losses).all()
    engine.set_resolution(300)
    moved = wait(engine, lambda s: s.resolution == 300, "the slider")
    assert len(moved.methods[0].cloud) == 300
    assert moved.methods[1].cloud is gm.cloud and moved.real is first.real  # unchanged: the same objects
    engine.select(2, 1)
    other = wait(engine, lambda s: s.selected_class == 2, "another class")
    assert not np.array_equal(other.real.points, first.real.points)
    assert not np.array_equal(other.methods[1].cloud.points, gm.cloud.points)
    assert len(other.methods[0].cloud) == 300
    exported = engine.export(tmp_path / "out.h5").result(TIMEOUT)
    synthetic, names = read_synthetic_h5(exported)
    assert synthetic.points.shape == (6, 300, 3) and names == ["airplane", "bed", "bottle"]  # the generator run
    assert "exported 6 DD3D clouds x 300 points" in wait(engine, lambda s: "exported" in s.message, "the export").message


def test_a_generator_run_shows_its_trained_rotator(engines, tmp_path: Path) -> None:
    run = RunFolder.open(make_run(tmp_path / "rot", "dd3d", 1, "data.setting=rotated"))
    assert run.rotator is not None and run.rotator.kind == "learned"
    snap = wait(engines([run], resolution=64), lambda s: s.real is not None, "the run")
    assert snap.canonical_labels[2] == "rotator (learned) of DD3D"
    with torch.no_grad():  # the third stage is the run's rotator applied to the first
        expected = run.rotator(torch.from_numpy(np.array(snap.canonical[0].points))[None])[0].numpy()
    assert np.allclose(snap.canonical[2].points, expected, atol=1e-5)


def test_segmentation_runs_carry_part_labels(engines, tmp_path: Path) -> None:
    extra = ("distill.batchnorm_clouds=2",)
    dd3d = RunFolder.open(make_run(tmp_path / "d", "dd3d", 1, *extra, config="shapes-seg.yaml"))
    gm = RunFolder.open(make_run(tmp_path / "g", "gm", 1, *extra, config="shapes-seg.yaml"))
    snap = wait(engines([dd3d, gm], resolution=200), lambda s: s.real is not None, "the runs")
    assert snap.part_names and snap.class_parts and snap.real.parts is not None
    for m in snap.methods:
        assert m.cloud.parts is not None and set(np.unique(m.cloud.parts)) <= set(snap.class_parts), m.label


@pytest.mark.parametrize("case, fragment", [
    ("missing", "run folder not found"),
    ("foreign", "not a dd3d distill run folder (no config.yaml)"),
    ("unfinished", "the run has not finished (no distill.json); follow it with dd3d-lab --watch"),
    ("corrupt generator", "generator.pt: not a readable dd3d generator file"),
    ("corrupt summary", "distill.json: not a readable distill summary"),
])
def test_foreign_and_corrupt_folders_are_one_line_errors(runs, tmp_path: Path, case: str, fragment: str) -> None:
    folder = tmp_path / "run"
    if case != "missing":
        shutil.copytree(runs["dd3d"], folder)
    if case == "foreign":
        (folder / "config.yaml").unlink()
    elif case == "unfinished":
        (folder / "distill.json").unlink()
    elif case == "corrupt generator":
        (folder / "generator.pt").write_bytes(b"\x00" * 100)
    elif case == "corrupt summary":
        (folder / "distill.json").write_text("{truncated")
    with pytest.raises(DD3DError) as error:
        RunFolder.open(folder)
    assert fragment in str(error.value) and "\n" not in str(error.value) and str(folder) in str(error.value)


def test_runs_of_other_classes_are_refused_naming_the_folder(runs) -> None:
    with pytest.raises(DD3DError) as error:
        RunEngine([RunFolder.open(runs["dd3d"]), RunFolder.open(runs["two"])])
    message = str(error.value)
    assert message.startswith(f"--run {runs['two']}: class list differs from that of {runs['dd3d']}")


def test_watch_follows_a_run_in_another_process_through_kill_and_resume(engines, tmp_path: Path) -> None:
    out = tmp_path / "live"
    engine = engines(watch=out, resolution=80)
    waiting = wait(engine, lambda s: True, "the first snapshot")
    assert waiting.state == State.WAITING and "waiting for" in waiting.message and waiting.mode == Mode.WATCH
    process = start_watched_run(out, iterations=400)
    try:
        first = wait(engine, lambda s: s.state == State.RUNNING and s.iteration >= 1, "the first checkpoint", 120)
        later = wait(engine, lambda s: s.iteration > first.iteration, "a later checkpoint")
        assert time.time() - later.updated_at < 2.0  # shown within 2 s of the checkpoint's writing
        assert later.target_iterations == 400 and later.eta_seconds is not None and later.eta_seconds > 0
        (m,) = later.methods
        assert (m.name, m.regenerated, len(m.cloud), len(m.losses)) == ("dd3d", True, 80, m.iteration)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        time.sleep(1.0)
        killed = engine.snapshots.latest().iteration
        engine.set_resolution(123)  # the lab stays responsive, showing the last checkpoint
        still = wait(engine, lambda s: s.resolution == 123, "the slider after the kill")
        assert still.iteration == killed and len(still.methods[0].cloud) == 123
        process = distill_process(out, "--resume", str(out), "--set", f"distill.iterations={killed + 3}")
        done = wait(engine, lambda s: s.state == State.FINISHED, "the resumed run to finish", 120)
        assert done.iteration == killed + 3 and done.message.startswith("finished")
        assert len(done.methods[0].cloud) == 123 and len(done.methods[0].losses) == killed + 3
    finally:
        process.kill()
        process.wait(30)


def test_watch_reports_an_unreadable_checkpoint_and_recovers(engines, runs, tmp_path: Path) -> None:
    out = tmp_path / "broken"
    out.mkdir()
    shutil.copy(runs["dd3d"] / "config.yaml", out / "config.yaml")
    (out / "checkpoint.pt").write_bytes(b"PK\x03\x04 half a zip")
    engine = engines(watch=out, resolution=64)
    broken = wait(engine, lambda s: s.state == State.ERROR, "the error")
    assert "checkpoint.pt: not a readable checkpoint" in broken.message and "\n" not in broken.message
    assert broken.real is not None  # the real data of the run's config is shown meanwhile
    engine.select(1, 0)
    assert wait(engine, lambda s: s.selected_class == 1, "a selection").state == State.ERROR
    for name in ("generator.pt", "synthetic.h5", "distill.json"):
        shutil.copy(runs["dd3d"] / name, out / name)
    (out / "checkpoint.pt").unlink()  # as dd3d distill does once it has written distill.json
    done = wait(engine, lambda s: s.state == State.FINISHED, "the finished run")
    assert len(done.methods[0].cloud) == 64 and done.methods[0].cpc == 2


SHIPPED = Path(__file__).resolve().parents[1] / "assets" / "runs"


@pytest.mark.parametrize("cpc", [1, 10])
def test_the_shipped_starting_points_open_side_by_side(engines, cpc: int) -> None:
    shipped = sorted(SHIPPED.glob(f"shapes-*-cpc{cpc}"))
    assert [p.name for p in shipped] == [f"shapes-dd3d-cpc{cpc}", f"shapes-gm-cpc{cpc}"]
    engine = engines([RunFolder.open(p) for p in shipped], resolution=256)
    snap = wait(engine, lambda s: s.real is not None and all(m.cloud is not None for m in s.methods), "the runs")
    dd3d, gm = snap.methods
    assert (dd3d.label, dd3d.cpc, dd3d.iteration, dd3d.regenerated, len(dd3d.cloud)) == ("DD3D", cpc, 20, True, 256)
    assert (gm.label, gm.cpc, gm.iteration, gm.regenerated) == ("GM", cpc, 20, False)
    assert len(snap.class_names) == 13 and np.isfinite(dd3d.cloud.points).all()


def median_planarity(cloud: torch.Tensor, k: int = 16) -> float:
    """Median over points of λ2/λ1 of the covariance of each point's k nearest neighbours: near 0 where the
    cloud is locally a curve, about 0.5 and above where it is a surface."""
    neighbours = cloud[torch.cdist(cloud, cloud).topk(k, largest=False).indices]
    centred = neighbours - neighbours.mean(dim=1, keepdim=True)
    eigenvalues = torch.linalg.eigvalsh(centred.transpose(1, 2) @ centred)  # ascending
    return float((eigenvalues[:, 1] / eigenvalues[:, 2]).median())


@pytest.mark.parametrize("cpc", [1, 10])
def test_the_shipped_dd3d_clouds_are_surfaces_not_curves(cpc: int) -> None:
    """The shipped runs use the lab's generator (2-D noise per point): every regenerated cloud is locally a
    surface, like the real shapes; the paper's scalar noise draws each cloud as one curve (control)."""
    loaded = LoadedGenerator(SHIPPED / f"shapes-dd3d-cpc{cpc}" / "generator.pt")
    clouds = torch.from_numpy(loaded.generate(2048, torch.Generator().manual_seed(0)).points)
    assert loaded.generator.noise_dim == 2
    assert min(median_planarity(c) for c in clouds[::max(1, cpc // 2)]) > 0.35
    torch.manual_seed(0)
    curve = PointGenerator(1, width=128, omega0=30.0).generate(torch.tensor([0]), 2048, torch.Generator().manual_seed(0))
    assert median_planarity(curve[0].detach()) < 0.35
