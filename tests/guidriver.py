"""What every GUI driver script of the tests does around its steps (test_viewer.py, test_lab_runs.py).

A driver script builds a :class:`viewer.app.LabApp`, then :func:`drive` runs its ``steps`` on a
thread while the window's event loop runs on the main thread, writes what the steps found to
``result.json`` in ``out`` (an exception as its ``repr`` under ``"error"``), quits the app and exits
with the app's status. The scripts run from the repository root and find this module with
``sys.path.insert(0, "tests")``.
"""
from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any, Callable, NoReturn


def drive(app: Any, out: Path, steps: Callable[[dict[str, Any]], None]) -> NoReturn:
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            steps(result)
        except Exception as exc:  # noqa: BLE001 - reported to the test through result.json
            result["error"] = repr(exc)
        finally:
            (out / "result.json").write_text(json.dumps(result))
            app.call(app.quit)

    threading.Thread(target=work, daemon=True).start()
    sys.exit(app.run())
