"""The single-path check (DESIGN.md, Egress): outside apps/routing no module imports a
provider SDK, and outside apps/routing/providers.py (external_provider) none reads the
external provider's settings, so nothing can reach the provider without the gate.

It reads the source with `ast`. A read counts in every spelling found so far:
`settings.EXTERNAL_LLM_KEY`, `getattr(settings, "EXTERNAL_LLM_KEY")` (or with an
f-string or a name built at run time), `settings.__dict__["EXTERNAL_…"]`,
`os.environ["EXTERNAL_…"]` / `os.getenv("EXTERNAL_…")`: any string that names an
`EXTERNAL_…` variable, and any getattr on `settings` whose name is not a literal.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_SDKS = {"openai", "anthropic"}
# Where the SDKs may be imported (the model client and the gate), and the one place the
# variables are read (besides settings, which defines them).
SDK_ALLOWED = ("apps/routing/",)
SETTINGS_ALLOWED = ("apps/routing/providers.py", "apps/config/settings.py")
# A string naming a variable, or the start of one built at run time (f"EXTERNAL_{x}").
_EXTERNAL_NAME = re.compile(r"^EXTERNAL(_[A-Z0-9_]*)?$")


def _is_settings(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "settings") or (
        isinstance(node, ast.Attribute) and node.attr == "settings"
    )


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def offences(source: str, where: str = "<snippet>") -> Iterator[str]:
    """Each way `source` imports a provider SDK or reads a provider setting."""
    tree = ast.parse(source, filename=where)
    skip = _docstrings(tree)  # prose may name a variable; and each read is said once
    for node in ast.walk(tree):
        line = f"{where}:{getattr(node, 'lineno', '?')}"
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            if name.split(".")[0] in PROVIDER_SDKS:
                yield f"{line}: imports {name}"
        if isinstance(node, ast.Attribute) and node.attr.startswith("EXTERNAL_"):
            yield f"{line}: reads {node.attr}"
        elif isinstance(node, ast.Call) and _is_getattr_on_settings(node):
            name = node.args[1]
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                yield f"{line}: getattr(settings, …) with a name built at run time"
            elif _EXTERNAL_NAME.match(name.value):
                skip.add(id(name))
                yield f"{line}: reads {name.value} through getattr"
        elif isinstance(node, ast.Call) and (module := _imported_by_call(node)):
            if module.split(".")[0] in PROVIDER_SDKS:
                yield f"{line}: imports {module} at run time"
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in skip
            and _EXTERNAL_NAME.match(node.value)
        ):
            yield f"{line}: names {node.value!r}"


def _imported_by_call(node: ast.Call) -> str:
    """The module of `__import__("x")` or `importlib.import_module("x")`, else ""."""
    func = node.func
    called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    if called not in ("__import__", "import_module") or not node.args:
        return ""
    first = node.args[0]
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else ""


def _is_getattr_on_settings(node: ast.Call) -> bool:
    func = node.func
    return (
        isinstance(func, ast.Name)
        and func.id in ("getattr", "hasattr")
        and len(node.args) >= 2
        and _is_settings(node.args[0])
    )


def project_offences() -> list[str]:
    found: list[str] = []
    for path in [*(ROOT / "apps").rglob("*.py"), *(ROOT / "workers").rglob("*.py")]:
        rel = path.relative_to(ROOT).as_posix()
        if "/migrations/" in rel:
            continue
        for offence in offences(path.read_text(), rel):
            sdk = " imports " in offence
            if not rel.startswith(SDK_ALLOWED if sdk else SETTINGS_ALLOWED):
                found.append(offence)
    return found
