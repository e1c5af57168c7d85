"""Every bad input of tests/bad_inputs.py is answered in one line, with status 2 and nothing written."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bad_inputs import CASES, Case
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dd3d.cli import main


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = case.build(tmp_path)
    capsys.readouterr()
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse's own errors
        status = exit_.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and "%|" not in line]  # progress bars aside
    assert status == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in case.expect:
        assert fragment in lines[0], f"{fragment!r} not in: {lines[0]}"
    assert files_under(tmp_path / "out") == [], "a failed command left output behind"


# --- property-based: whatever the values, loading either works or fails with one of our errors -------

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=8), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3),
                                                                                             st.integers(), max_size=2))
KEYS = ["distill.cpc", "distill.iterations", "data.resolution", "data.setting", "eval.epochs", "distill.lr",
        "model.rotator.kind", "augment.scale_low", "distill.generator.omega0", "seed", "data.max_classes", "distill.schedule.gm"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(KEYS), value=SCALARS)
def test_any_config_value_loads_or_is_refused_in_one_line(key: str, value: object, tmp_path: Path) -> None:
    import yaml

    from dd3d.config import load_config
    from dd3d.errors import ConfigError

    node: dict = {}
    raw = node
    *sections, leaf = key.split(".")
    for section in sections:
        node = node.setdefault(section, {})
    node[leaf] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    try:
        load_config(path)
    except ConfigError as exc:
        assert "\n" not in str(exc) and "config.yaml" in str(exc) and leaf in str(exc)


ARRAYS = st.builds(lambda shape, kind: np.zeros(shape, dtype=kind),
                   st.lists(st.integers(0, 4), min_size=0, max_size=4).map(tuple),
                   st.sampled_from(["f4", "f8", "i4", "u1", "S2", "?"]))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=ARRAYS, label=ARRAYS)
def test_any_h5_content_loads_or_is_refused_in_one_line(data: np.ndarray, label: np.ndarray, tmp_path: Path) -> None:
    from formats import write_h5, write_modelnet_h5

    from dd3d.data.modelnet import load_modelnet
    from dd3d.errors import DataError

    root = write_modelnet_h5(tmp_path / "m", ["a", "b"], [1, 1], [1, 1], points=4)
    write_h5(root / "ply_data_train0.h5", data=data, label=label)
    try:
        loaded = load_modelnet(root, "train")
    except DataError as exc:
        assert "\n" not in str(exc) and ("ply_data_train0.h5" in str(exc) or "shape_names.txt" in str(exc))
    else:
        assert loaded.points.ndim == 3 and len(loaded.labels) == len(loaded.points)
