"""The layout's rules (docs/architecture.md), read from the package's source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import REPO

PACKAGE = REPO / "impact_assets"
#: What may import Dagster: the adapters, the CLI that runs jobs, and lineage built from the event log.
DAGSTER_FACING = ("orchestration", "cli", "lineage", "component.py", "__init__.py")
#: The pipeline's stages in the order they may import each other (a stage imports only earlier ones).
PIPELINE_ORDER = (
    "_engine",
    "_sql_models",
    "_scoring",
    "_results",
    "_quality",
    "_fairness",
    "_outcomes",
    "_analytics",
    "_register",
    "_release",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path, *, module_level: bool) -> set[str]:
    """Modules ``path`` imports: at module level (what runs on import), or anywhere in the file."""
    tree = ast.parse(path.read_text())
    if module_level:
        nodes = []
        for node in tree.body:
            if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
                continue
            nodes += node.body if isinstance(node, ast.If | ast.Try) else [node]
    else:
        nodes = list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycle():
    graph = {
        name: {m for m in _imports(path, module_level=True) if m in MODULES and m != name}
        for name, path in MODULES.items()
    }
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in sorted(PACKAGE.rglob("*.py"))
        if p.relative_to(PACKAGE).parts[0] not in DAGSTER_FACING
    ],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_domain_code_imports_no_dagster(path: Path):
    imported = _imports(path, module_level=False)
    assert not {m for m in imported if m == "dagster" or m.startswith(("dagster.", "dagster_"))}


def test_pipeline_stages_import_only_earlier_stages():
    stages = {p.stem for p in (PACKAGE / "pipeline").glob("_*.py")} - {"__init__"}
    assert stages == set(PIPELINE_ORDER)
    for position, stage in enumerate(PIPELINE_ORDER):
        imported = _imports(PACKAGE / "pipeline" / f"{stage}.py", module_level=True)
        siblings = {
            m.rsplit(".", 1)[1] for m in imported if m.startswith("impact_assets.pipeline.")
        }
        assert siblings <= set(PIPELINE_ORDER[:position]), stage
