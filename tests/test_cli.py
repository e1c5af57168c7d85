"""The command line as a user meets it: summaries, outputs, and one-line errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TINY, assert_one_line_error, run_cli
from formats import shared_modelnet10, truncate, write_modelnet_h5


def test_data_json_on_builtin() -> None:
    result = run_cli("data", "--config", "configs/shapes-seg.yaml", "--json", *sum((["--set", s] for s in TINY), []))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["num_classes"] == len(summary["class_names"]) >= 10
    assert summary["train"] == 16 * summary["num_classes"] and summary["test"] == 8 * summary["num_classes"]
    assert summary["points"] == 128
    assert summary["parts"] == sorted(set(summary["parts"])) and len(summary["parts"]) >= 2 * summary["num_classes"]


@pytest.mark.skipif(shared_modelnet10() is None, reason="real ModelNet10 (../shared/data) not present")
def test_data_on_real_modelnet10() -> None:
    result = run_cli("data", "--config", "configs/modelnet10.yaml", "--set", f"data.root={shared_modelnet10()}", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["num_classes"], summary["train"], summary["test"], summary["points"]) == (10, 3991, 908, 1024)
    assert summary["class_names"][0] == "bathtub" and "parts" not in summary


def test_train_writes_run_folder_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    sets = sum((["--set", s] for s in TINY + ["train.epochs=2", "data.builtin.train_per_class=4"]), [])
    result = run_cli("train", "--config", "configs/shapes.yaml", "--out", str(out), *sets)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"oa", "macc", "epochs", "train_seconds", "device"} <= set(metrics) and metrics["epochs"] == 2
    assert (out / "checkpoint.pt").is_file() and "epoch=2" in (out / "train.log").read_text()
    assert "resolution: 128" in (out / "config.yaml").read_text()
    result = run_cli("train", "--resume", str(out), "--set", "train.epochs=3")
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stderr and "at epoch 2/3" in result.stderr
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 3


def test_missing_dataset_root_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = run_cli("data", "--config", "configs/modelnet40.yaml", "--set", f"data.root={missing}")
    assert_one_line_error(result, str(missing), "docs/datasets.md")


def test_corrupt_h5_leaves_no_output(tmp_path: Path) -> None:
    root = write_modelnet_h5(tmp_path / "mn", ["a", "b"], [3, 3], [2, 2], points=32)
    truncate(next(root.glob("ply_data_train*.h5")))
    out = tmp_path / "run"
    result = run_cli("train", "--config", "configs/modelnet40.yaml", "--set", f"data.root={root}", "--out", str(out))
    assert_one_line_error(result, "ply_data_train")
    assert not out.exists()


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["train", "--bogus"], ["unrecognized arguments: --bogus"]),
        (["frobnicate"], ["invalid choice: 'frobnicate'"]),
        (["data", "--config", "configs/shapes.yaml", "--set", "data.resolutoin=3"], ["did you mean 'data.resolution'"]),
        (["data", "--config", "configs/none.yaml"], ["configs/none.yaml", "not found"]),
        (["train", "--resume", "/nonexistent/run"], ["--resume /nonexistent/run", "no config.yaml"]),
        (["train", "--config", "configs/shapes.yaml"], ["--out"]),
        # figures moved to the viewer package (the engine never imports it): the old command says where
        (["--debug", "render", "--run", "runs/x", "--classes", "a", "--out", "f.png"],
         ["dd3d render moved to the viewer package", "dd3d-render"]),
    ],
)
def test_bad_flags_are_one_line(args: list[str], fragments: list[str]) -> None:
    assert_one_line_error(run_cli(*args), *fragments)


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--classes", "a", "--out", "f.png"], ["dd3d-render: error:", "--run --panels is required"]),
        (["--run", "/nonexistent/run", "--classes", "a", "--out", "f.png"], ["--run /nonexistent/run", "not found"]),
    ],
)
def test_render_lives_in_the_viewer_and_bad_flags_are_one_line(args: list[str], fragments: list[str]) -> None:
    assert_one_line_error(run_cli(*args, module="viewer.render"), *fragments)


def test_lab_help_works() -> None:
    result = run_cli("--help", module="viewer.app")
    assert result.returncode == 0 and "--screenshot" in result.stdout and "--config" in result.stdout


DISTILL_TINY = ["data.resolution=32", "data.builtin.train_per_class=3", "data.builtin.test_per_class=2",
                "data.max_classes=2", "distill.resolution=32", "eval.resolution=32", "distill.iterations=1",
                "distill.outer_loop=1", "distill.inner_loop=0", "distill.real_batch=2", "distill.generator.width=16",
                "eval.epochs=1", "eval.runs=1", "device=cpu"]


def test_distill_generate_eval_table_from_the_command_line(tmp_path: Path) -> None:
    sets = sum((["--set", s] for s in DISTILL_TINY), [])
    run = tmp_path / "dd3d"
    result = run_cli("distill", "--config", "configs/shapes.yaml", "--method", "dd3d", "--cpc", "2", "--out", str(run), *sets)
    assert result.returncode == 0, result.stderr
    assert "dd3d cpc=2: 4 clouds" in result.stdout
    for name in ("out.h5", "out.ply", "out.npz"):
        result = run_cli("generate", "--run", str(run), "--points", "300", "--out", str(tmp_path / name))
        assert result.returncode == 0, result.stderr
    import h5py

    with h5py.File(tmp_path / "out.h5") as f:
        assert f["data"].shape == (4, 300, 3) and f["label"].shape == (4, 1)
    assert (tmp_path / "out.ply").read_bytes().startswith(b"ply\nformat binary_little_endian 1.0\nelement vertex 1200\n")
    result = run_cli("eval", "--config", "configs/shapes.yaml", "--synthetic", str(run), *sets)
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "eval" / "metrics.json").read_text())["method"] == "dd3d"
    result = run_cli("table", str(run), "--out", str(tmp_path / "t.md"))
    assert result.returncode == 0 and "| shapes | aligned | 2 |" in (tmp_path / "t.md").read_text()


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["distill", "--config", "configs/shapes.yaml", "--method", "magic", "--out", "x"], ["--method", "'magic'"]),
        (["distill", "--config", "configs/shapes.yaml", "--cpc", "0", "--out", "x"], ["--cpc", "got 0", ">= 1"]),
        (["eval", "--config", "configs/shapes.yaml", "--synthetic", "/nonexistent/run"], ["/nonexistent/run", "not found"]),
        (["generate", "--run", "/nonexistent/run", "--points", "10", "--out", "x.h5"], ["/nonexistent/run", "not found"]),
        (["table", "/nonexistent/run"], ["/nonexistent/run", "metrics.json"]),
    ],
)
def test_bad_distill_inputs_are_one_line(args: list[str], fragments: list[str]) -> None:
    assert_one_line_error(run_cli(*args), *fragments)


def test_corrupt_generator_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "generator.pt").write_bytes(b"PK\x03\x04 definitely not a checkpoint")
    result = run_cli("generate", "--run", str(tmp_path), "--points", "10", "--out", str(tmp_path / "o.h5"))
    assert_one_line_error(result, "generator.pt", "corrupt")
    assert not (tmp_path / "o.h5").exists() and not list(tmp_path.glob(".*tmp"))


def test_generator_file_that_would_run_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):  # noqa: ANN204
            return (open, (str(marker), "w"))

    import torch

    torch.save({"format": "dd3d-generator/1", "payload": Exploit()}, tmp_path / "generator.pt", pickle_protocol=2)
    marker.unlink(missing_ok=True)
    result = run_cli("generate", "--run", str(tmp_path), "--points", "10", "--out", str(tmp_path / "o.h5"))
    assert_one_line_error(result, "generator.pt", "refused")
    assert not marker.exists()
