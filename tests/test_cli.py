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
    assert_one_line_error(result, str(missing), "README.md", "Datasets")


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
        (["train", "--resume", "/nonexistent/run"], ["/nonexistent/run/config.yaml"]),
        (["train", "--config", "configs/shapes.yaml"], ["--out"]),
    ],
)
def test_bad_flags_are_one_line(args: list[str], fragments: list[str]) -> None:
    assert_one_line_error(run_cli(*args), *fragments)


def test_lab_help_works() -> None:
    result = run_cli("--help", module="viewer.app")
    assert result.returncode == 0 and "--screenshot" in result.stdout and "--config" in result.stdout
