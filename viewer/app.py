"""Entry point of ``dd3d-lab``, the Open3D desktop lab.

The GUI is built by a later milestone; until then ``dd3d-lab`` validates its flags and config and
says so, and ``dd3d-lab --help`` documents the interface.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from dd3d.config import load_config
from dd3d.errors import DD3DError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dd3d-lab",
        description="Watch point cloud dataset distillation live: Real | GM | DD3D panels, the rotator "
                    "canonicalising clouds, and a resolution slider.")
    parser.add_argument("--config", type=Path, default=Path("configs/shapes.yaml"), metavar="FILE",
                        help="YAML config (default: configs/shapes.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value (repeatable)")
    parser.add_argument("--screenshot", type=Path, metavar="FILE",
                        help="save a screenshot of the window after --after iterations and exit")
    parser.add_argument("--after", type=int, default=10, metavar="N", help="iterations before --screenshot")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        load_config(args.config, args.overrides)
    except DD3DError as exc:
        print(f"dd3d-lab: error: {exc}", file=sys.stderr)
        return 2
    print("dd3d-lab: the Open3D viewer is not built yet (see the lab issue); meanwhile use "
          "`dd3d train --config ...` or `dd3d data --config ...`.", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
