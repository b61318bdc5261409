"""The shape of the package, kept: one job per module, small files, imports that run one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "qwenaudio_train"
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))
ENTRY_POINTS = {"pretrain", "sft", "evaluate", "export", "interop", "cli"}  # thin: import only the library


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_is_small_and_says_what_it_owns(path: Path) -> None:
    lines = path.read_text().count("\n")
    assert lines <= 520, f"{path.name}: {lines} lines; split it by concern"
    if path.name != "__init__.py" or lines > 20:
        assert ast.get_docstring(ast.parse(path.read_text())), f"{path.name} has no module docstring"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way(path: Path) -> None:
    imported = _imports(path)
    assert not any(m == "data_recipes" or m.startswith("data_recipes.") for m in imported), (
        f"{path.name}: the library must not import the recipes (recipes use the library)"
    )
    for entry in ("pretrain", "sft", "evaluate", "export"):
        if path.stem != entry:
            assert f"qwenaudio_train.{entry}" not in imported, f"{path.name} imports the entry point {entry}"
