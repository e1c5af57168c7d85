"""The layering rules: the engine never imports the viewer, and the config's lists of methods and
backbones are those of the registries (a new method or backbone is its file plus one registry line)."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args, get_type_hints

from conftest import REPO

from dd3d.config import DistillConfig, ModelConfig
from dd3d.distill import METHODS
from dd3d.models import CLASSIFIERS, SEGMENTERS


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` or ``from ... import`` in ``path`` names, at any depth (lazy imports too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.update([node.module, *(f"{node.module}.{alias.name}" for alias in node.names)])
    return names


def test_no_engine_module_imports_the_viewer_or_open3d_visualization() -> None:
    files = sorted((REPO / "dd3d").rglob("*.py"))
    assert len(files) > 50
    offending = {str(f.relative_to(REPO)): sorted(m for m in imported_modules(f)
                                                   if m.split(".")[0] == "viewer" or m.startswith("open3d.visualization"))
                 for f in files}
    assert {f: m for f, m in offending.items() if m} == {}


def test_the_checker_sees_lazy_and_from_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from viewer.render import main\n    import open3d.visualization.gui\n"
                      "from open3d import visualization\n")
    assert {"viewer.render", "open3d.visualization.gui", "open3d.visualization"} <= imported_modules(module)


def test_config_lists_are_the_registries() -> None:
    assert list(get_args(get_type_hints(DistillConfig)["method"])) == list(METHODS)
    assert list(get_args(get_type_hints(ModelConfig)["name"])) == list(CLASSIFIERS)
    assert set(SEGMENTERS) <= set(CLASSIFIERS)
