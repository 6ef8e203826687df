"""The architecture as a test (README "Layout"): apps stand in one order, low to high, and
each imports only those below it; no circle between files; no module over 400 lines;
imports inside functions only for heavy libraries, with a comment saying so.

Reads the source with `ast`; imports nothing of the project, so it needs no database.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Low to high. An app may import itself and any app before it, never one after it.
# apps.config is the composition root (settings, urls, wsgi): it may import any app, and no
# app imports it.
LAYERS = (
    "apps.core",
    "apps.audit",
    "apps.accounts",
    "apps.retrieval",
    "apps.knowledge",
    "apps.search",
    "apps.routing",
    "apps.assistant",
    "apps.api",
    "apps.scim",
    "apps.compliance",
    "apps.ops",
    "workers",
    "apps.config",
)

MAX_LINES = 400


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the project module imported
    line: int


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for base in ("apps", "workers"):
        for path in sorted((ROOT / base).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            if name != "apps.__init__":  # the namespace package itself, empty
                found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _package(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def _imported_names(node: ast.Import | ast.ImportFrom, module: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        parts = _package(module).split(".")
        parts = parts[: len(parts) - node.level + 1] + ([node.module] if node.module else [])
        base = ".".join(parts)
    else:
        base = node.module or ""
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def _imports() -> Iterator[Import]:
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for name in _imported_names(node, module):
                target = _resolve(name) if name.split(".")[0] in ("apps", "workers") else None
                if target and target != module:
                    yield Import(module, target, node.lineno)


IMPORTS = list(_imports())


def _app(module: str) -> str:
    for layer in LAYERS:
        if module == layer or module.startswith(layer + "."):
            return layer
    raise AssertionError(f"{module} belongs to no layer of LAYERS: add its app there")


def test_every_module_belongs_to_a_layer():
    for module in MODULES:
        _app(module)


def test_apps_import_only_apps_below_them():
    wrong = [
        f"{i.module}:{i.line} imports {i.target}"
        for i in IMPORTS
        if LAYERS.index(_app(i.target)) > LAYERS.index(_app(i.module))
    ]
    assert not wrong, "imports that go up the layers:\n" + "\n".join(sorted(set(wrong)))


def test_no_circle_between_modules():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for i in IMPORTS:
        graph[i.module].add(i.target)
    # A module importing its own package's __init__ is a circle only if __init__ imports it
    # back; Tarjan's strongly connected components find every such loop.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not circles, f"modules that import each other: {circles}"


def test_no_module_over_the_line_limit():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split by responsibility): {long}"


def _function_imports() -> Iterator[tuple[str, ast.Import | ast.ImportFrom, list[str], bool]]:
    """Imports inside functions, with the source lines and whether they sit in an
    AppConfig.ready (where Django wants them: models are not loaded before)."""
    for module, path in MODULES.items():
        source = path.read_text()
        lines = source.splitlines()
        for func in ast.walk(ast.parse(source)):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            in_ready = func.name == "ready" and module.endswith(".apps")
            for node in ast.walk(func):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    yield module, node, lines, in_ready


def test_imports_inside_functions_are_for_heavy_libraries_with_a_reason():
    wrong = []
    for module, node, lines, in_ready in _function_imports():
        if in_ready:
            continue
        top = (
            node.names[0].name if isinstance(node, ast.Import) else (node.module or "")
        ).split(".")[0]
        where = f"{module}:{node.lineno}"
        relative = isinstance(node, ast.ImportFrom) and node.level
        if relative or top in ("apps", "workers"):
            wrong.append(f"{where}: a project import inside a function (fix the circle)")
        elif top in sys.stdlib_module_names or top == "django":
            wrong.append(f"{where}: {top} is not heavy; import it at the top")
        else:
            said = lines[node.lineno - 1] + lines[node.lineno - 2]
            if "#" not in said:
                wrong.append(f"{where}: lazy import of {top} without a comment saying why")
    assert not wrong, "\n".join(wrong)
