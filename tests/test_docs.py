"""The documentation stays true to the code: the generated configuration reference is up to date,
every config key has a description, and every relative link of README.md and docs/ resolves."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from dd3d import configdoc

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


def test_configuration_reference_is_generated_from_the_config():
    page = configdoc.PAGE.read_text(encoding="utf-8")
    assert page == configdoc.render(page), "docs/configuration.md is out of date: run python -m dd3d.configdoc"
    for key, *_ in configdoc.fields():
        assert f"| `{key}` |" in page


def test_every_config_field_has_a_description():
    missing = [key for key, _, _, doc in configdoc.fields() if not doc]
    assert not missing, f"fields without a docstring in dd3d/config.py: {missing}"


def test_field_docs_reads_attribute_docstrings_and_inherits_them():
    from dd3d.config import EvalConfig

    docs = configdoc.field_docs(EvalConfig)
    assert docs["runs"] == "Networks trained per synthetic set."
    assert docs["epochs"] == "Training epochs."  # re-declared in EvalConfig, described in TrainConfig


def test_the_check_flag_fails_on_a_stale_page(tmp_path, monkeypatch):
    stale = tmp_path / "configuration.md"
    stale.write_text(f"# x\n\n{configdoc.START}\n| stale |\n{configdoc.END}\n", encoding="utf-8")
    monkeypatch.setattr(configdoc, "PAGE", stale)
    assert configdoc.main(["--check"]) == 1
    assert configdoc.main([]) == 0 and configdoc.main(["--check"]) == 0
    assert "| `distill.cpc` | `1` | integer ≥ 1 |" in stale.read_text(encoding="utf-8")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    broken = [target for target, _ in LINK.findall(page.read_text(encoding="utf-8"))
              if "://" not in target and not (page.parent / target).exists()]
    assert not broken, f"{page.name}: links to missing files {broken}"


def test_no_source_points_outside_the_repository():
    """Docstrings and pages cite docs/ pages, not the notes the project started from (this file names them)."""
    notes = re.compile(r"shared/notes|(?<![\w/-])(REFERENCE|OPEN3D|ARCHITECTURE)\.md")
    offenders = [str(path.relative_to(REPO)) for folder in ("dd3d", "viewer", "benchmarks", "tests", "docs", "configs")
                 for path in (REPO / folder).rglob("*.*") if path.suffix in {".py", ".md", ".yaml"}
                 and path != Path(__file__).resolve() and notes.search(path.read_text(encoding="utf-8"))]
    assert not offenders, offenders
