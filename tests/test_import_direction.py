"""Enforce DESIGN.md's dependency direction by parsing every module's imports (no import side effects)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "lossviz"


def imported_top_modules(path: Path) -> set[str]:
    """Dotted names imported by a file (both `import a.b` and `from a.b import c`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _uses(modules: set[str], package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in modules)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py"))


CORE = [p for p in _files(LIBRARY) if not {"figures", "ui"} & set(p.relative_to(LIBRARY).parts)]
FIGURES = _files(LIBRARY / "figures")


def _rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


@pytest.mark.parametrize("path", CORE, ids=_rel)
def test_core_never_imports_ui_libraries(path):
    mods = imported_top_modules(path)
    for banned in ("streamlit", "plotly", "lossviz.ui", "lossviz.figures"):
        assert not _uses(mods, banned), f"{_rel(path)} imports {banned}"
    if path.name != "data.py":
        assert not _uses(mods, "sklearn"), f"{_rel(path)} imports sklearn (only lossviz/data.py may)"


@pytest.mark.parametrize("path", FIGURES, ids=_rel)
def test_figures_import_only_plotly_numpy_results(path):
    mods = imported_top_modules(path)
    for banned in ("torch", "streamlit", "lossviz.ui", "sklearn"):
        assert not _uses(mods, banned), f"{_rel(path)} imports {banned}"
    lossviz_mods = {m for m in mods if m.startswith("lossviz")}
    allowed = ("lossviz.results", "lossviz.figures")
    assert all(m.startswith(allowed) for m in lossviz_mods), f"{_rel(path)} imports {lossviz_mods}"


def test_only_ui_app_and_pages_import_streamlit():
    offenders = [
        _rel(p)
        for p in _files(LIBRARY)
        if "ui" not in p.relative_to(LIBRARY).parts and _uses(imported_top_modules(p), "streamlit")
    ]
    assert offenders == []


def test_the_checker_sees_imports(tmp_path):
    # guard against a parser that silently finds nothing
    f = tmp_path / "m.py"
    f.write_text(
        "import streamlit as st\nfrom plotly import graph_objects\nfrom lossviz.results import Curve\n"
    )
    assert {"streamlit", "plotly", "plotly.graph_objects", "lossviz.results"} <= imported_top_modules(f)
