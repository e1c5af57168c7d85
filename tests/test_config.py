"""Config loading: defaults, overrides, and one-line validation errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from dd3d.config import Config, dump_config, load_config
from dd3d.errors import ConfigError

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load(path: Path) -> None:
    cfg = load_config(path)
    assert isinstance(cfg, Config)


def test_expected_configs_exist() -> None:
    names = {p.name for p in CONFIGS}
    assert {"shapes.yaml", "shapes-seg.yaml", "modelnet10.yaml", "modelnet40.yaml", "scanobjectnn.yaml",
            "mvpnet100.yaml", "shapenet.yaml"} <= names


def test_overrides_apply_with_yaml_types(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "data:\n  resolution: 512\n"),
                      ["data.resolution=256", "train.epochs=3", "augment.enabled=false", "train.lr=0.01",
                       "train.weight_decay=1e-5"])
    assert cfg.data.resolution == 256 and cfg.train.epochs == 3
    assert cfg.augment.enabled is False and cfg.train.lr == 0.01
    assert cfg.train.weight_decay == 1e-5  # YAML 1.1 reads "1e-5" as a string


def test_relative_root_is_anchored_to_config_folder(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "data:\n  name: modelnet40\n  root: sub/dir\n"))
    assert Path(cfg.data.root) == (tmp_path / "sub/dir").resolve()


def test_dumped_config_round_trips(tmp_path: Path) -> None:
    cfg = load_config(None, ["data.resolution=64", "data.setting=rotated"])
    again = load_config(write(tmp_path, dump_config(cfg)))
    assert again == cfg


@pytest.mark.parametrize(
    "text, overrides, fragments",
    [
        ("data:\n  resolutoin: 5\n", [], ["data.resolutoin", "did you mean 'data.resolution'"]),
        ("trian: {}\n", [], ["unknown key 'trian'", "did you mean 'train'"]),
        ("data:\n  resolution: abc\n", [], ["data.resolution", "'abc'", "an integer"]),
        ("data:\n  resolution: 0\n", [], ["data.resolution", "got 0", ">= 1"]),
        ("train:\n  epochs: -3\n", [], ["train.epochs", "got -3", ">= 1"]),
        ("data:\n  setting: rotate\n", [], ["data.setting", "'rotate'", "'aligned', 'rotated'", "did you mean 'rotated'"]),
        ("augment:\n  enabled: 1\n", [], ["augment.enabled", "true or false"]),
        ("- a\n- b\n", [], ["expected a mapping"]),
        ("data: [1, 2]\n", [], ["data must be a mapping"]),
        ("data:\n  resolution: [\n", [], ["invalid YAML at line"]),
        ("", ["data.resolution"], ["--set data.resolution", "dotted.key=value"]),
        ("", ["data.resolution=-1"], ["(with --set)", "data.resolution", "got -1"]),
        ("data:\n  name: modelnet40\n", [], ["data.root is required"]),
        ("task: segmentation\ndata:\n  name: modelnet40\n  root: x\n", [], ["segmentation", "shapenet_part"]),
        ("device: gpu\n", [], ["device", "'gpu'", "cuda"]),
        ("augment:\n  scale_low: 2.0\n", [], ["scale_low", "scale_high"]),
        ("distill:\n  schedule:\n    gm: [1, 1]\n", [], ["distill.schedule.gm", "got [1, 1]", "mapping of cpc"]),
        ("distill:\n  schedule:\n    gm: {0: [1, 1]}\n", [], ["distill.schedule.gm", "key 0", "integer >= 1"]),
        ("distill:\n  schedule:\n    gm: {x: [1, 1]}\n", [], ["distill.schedule.gm", "key 'x'"]),
        ("distill:\n  schedule:\n    gm: {10: [0, 5]}\n", [], ["distill.schedule.gm.10", "got [0, 5]", "outer >= 1"]),
        ("distill:\n  schedule:\n    gm: {10: [5]}\n", [], ["distill.schedule.gm.10", "[outer, inner]"]),
        ("", ["distill.schedule.dd3d_aligned.10=[2,-1]"], ["distill.schedule.dd3d_aligned.10", "inner >= 0"]),
        ("distill:\n  schedule:\n    segmentaton: {}\n", [], ["did you mean 'distill.schedule.segmentation'"]),
        ("distill:\n  sgd_lr:\n    dm: -1\n", [], ["distill.sgd_lr.dm", "got -1"]),
    ],
)
def test_bad_configs_give_one_line_errors(tmp_path: Path, text: str, overrides: list[str], fragments: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message or message.startswith("--set ")  # a bad flag names the flag
    for fragment in fragments:
        assert fragment in message


def test_schedule_entries_merge_into_the_defaults_and_round_trip(tmp_path: Path) -> None:
    """A config's schedule entries replace the default entries of the same cpc only; the dump writes each
    (outer, inner) inline and reads back equal."""
    cfg = load_config(write(tmp_path, "distill:\n  schedule:\n    gm: {10: [3, 4], 5: [2, 0]}\n"),
                      ["distill.schedule.segmentation.1=[7,7]"])
    assert cfg.distill.schedule.gm == {1: (1, 1), 5: (2, 0), 10: (3, 4), 50: (50, 10)}
    assert cfg.distill.schedule.segmentation == {1: (7, 7), 10: (10, 2)}
    assert cfg.distill.schedule.dd3d_aligned == load_config(None).distill.schedule.dd3d_aligned
    text = dump_config(cfg)
    assert "      5: [2, 0]\n" in text
    assert load_config(write(tmp_path, text)) == cfg


def test_defaults_are_per_config() -> None:
    """Editing one config's schedule table leaves the defaults of the next config alone."""
    first = load_config(None)
    first.distill.schedule.gm[1] = (9, 9)
    assert load_config(None).distill.schedule.gm[1] == (1, 1)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_dataset_label_names_the_folder_not_the_loader(tmp_path: Path) -> None:
    from dd3d.config import dataset_label

    assert dataset_label(load_config(write(tmp_path, "data:\n  name: modelnet40\n  root: modelnet10_hdf5_1024\n"))) == "modelnet10_hdf5_1024"
    assert dataset_label(load_config(None)) == "shapes"
