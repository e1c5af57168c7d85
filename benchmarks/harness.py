"""Command-line pieces shared by every benchmark: the --quick/--paper profile flags, and measuring in a
fresh child process (so peak memory and allocator state of one measurement never leak into the next).

Benchmarks are modules of the ``benchmarks`` package, run from the repository root as
``python -m benchmarks.NAME``; child processes and re-runs use the same form."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
#: the GPU scripts' --toy size: 3 classes of the built-in shapes, few clouds, small networks (numbers mean nothing)
TOY_SIZES = ["data.max_classes=3", "data.builtin.train_per_class=6", "data.builtin.test_per_class=2",
             "model.size=small", "distill.generator.width=32"]


def profile_parser(doc: str | None, child: bool = False) -> argparse.ArgumentParser:
    """A parser with the mutually exclusive ``--quick`` / ``--paper`` flags (and the hidden ``--child``
    of benchmarks that measure in child processes); call :func:`profile_of` after parsing."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if child:
        parser.add_argument("--child", help=argparse.SUPPRESS)
    profile = parser.add_mutually_exclusive_group()
    profile.add_argument("--quick", action="store_true", help="CPU profile (reduced settings, printed)")
    profile.add_argument("--paper", action="store_true", help="the paper's settings (GPU)")
    return parser


def profile_of(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """``"quick"`` or ``"paper"``; exits with a usage error when neither was given."""
    if not (args.quick or args.paper):
        parser.error("choose --quick or --paper")
    return "quick" if args.quick else "paper"


def served_child(args: argparse.Namespace, child: Callable[[dict], dict]) -> bool:
    """Whether this run is a measurement child (``--child SPEC``); if so, ``child(SPEC)`` has run and
    its result is printed as the JSON line :func:`run_child` reads."""
    if not getattr(args, "child", None):
        return False
    print(json.dumps(child(json.loads(args.child))))
    return True


def rerun_command() -> list[str]:
    """The command line that runs the current benchmark again: ``python -m benchmarks.NAME ARGS...``."""
    return [sys.executable, "-m", sys.modules["__main__"].__spec__.name, *sys.argv[1:]]


def run_child(module: str, spec: dict) -> dict:
    """Run ``python -m module --child SPEC`` in a fresh interpreter from the repository root; its last
    stdout line (JSON) or ``{"error": ...}``."""
    result = subprocess.run([sys.executable, "-m", module, "--child", json.dumps(spec)], capture_output=True,
                            text=True, cwd=REPO)
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])
