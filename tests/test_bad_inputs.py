"""Every bad input of tests/bad_inputs.py is answered in one line, with status 2 and nothing written."""
from __future__ import annotations

from pathlib import Path

import pytest
from bad_inputs import CASES, Case

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
