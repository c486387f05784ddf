"""The package's structure: no import cycles, low layers never import high ones, no oversized module.

Every ``import`` statement counts, including the lazy ones inside functions and
``importlib.import_module("...")`` with a literal name: a lazy import hides a cycle from the
interpreter at start-up, not from a reader.
"""

import ast
import subprocess
import sys
from pathlib import Path

import superflow

PACKAGE = Path(superflow.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_import_module_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def _import_graph() -> dict[str, set[str]]:
    """Module -> the superflow modules it imports (``from pkg import sub`` points at ``pkg.sub``)."""
    sources = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in sources}
    for name, path in sources.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolve against this module's package
                    base = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in sources else module for a in node.names]
            elif _is_import_module_call(node):  # importlib.import_module("superflow....")
                targets = [node.args[0].value]
            else:
                continue
            graph[name].update(t for t in targets if t in sources and t != name)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _edges_from(graph, source_prefix: str, target_prefix: str) -> list[tuple[str, str]]:
    def inside(module: str, prefix: str) -> bool:
        return module == prefix or module.startswith(prefix + ".")

    return sorted(
        (a, b) for a, bs in graph.items() for b in bs if inside(a, source_prefix) and inside(b, target_prefix)
    )


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_the_graph_sees_lazy_imports():
    # The train command imports the trainer inside a function only.
    assert "superflow.train" in _import_graph()["superflow.cli.training"]


def test_no_import_cycle():
    assert _cycles(_import_graph()) == []


def test_the_mini_world_imports_no_reward():
    assert _edges_from(_import_graph(), "superflow.world", "superflow.rewards") == []


def test_config_imports_no_model_adapter():
    assert _edges_from(_import_graph(), "superflow.config", "superflow.models") == []


def test_only_the_mini_world_s_adapters_and_entry_points_import_it():
    allowed = ("superflow.world", "superflow.rewards", "superflow.cli", "superflow.doctor")
    importers = {a for a, _ in _edges_from(_import_graph(), "superflow", "superflow.world")}
    assert sorted(m for m in importers if not m.startswith(allowed)) == []


def test_reading_a_config_does_not_import_torch():
    code = "import sys, superflow.config; print(sorted(m for m in ('torch', 'diffusers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_no_module_over_450_lines():
    # A module past this size has started to hold a second concern; split it by concern.
    sizes = {_module_name(p): len(p.read_text(encoding="utf-8").splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 450} == {}
