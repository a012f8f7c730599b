"""The shape of the code, checked: public seams between modules and no import cycles.

- No module of the package imports another module's private name (``from modelzoo.x import
  _y``), or reads one through a module it imported (``registry._REGISTRY``): what crosses a
  module boundary is public, documented and kept stable.
- The modules' load-time imports form no cycle. Imports inside functions (deferred on purpose:
  heavy optional libraries, or the CLI's commands) and under ``if TYPE_CHECKING:`` are not
  load-time imports.
- Files are replaced atomically and locked in one place (``modelzoo.utils.io``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "modelzoo"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names (resolving ``from . import x``)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not _is_package(module):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _load_time_nodes(tree: ast.Module) -> list[ast.stmt]:
    """Statements that run when the module is imported: module level, including the bodies of
    ``try``/``if`` at module level, except ``if TYPE_CHECKING:``."""
    nodes: list[ast.stmt] = []
    pending = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, ast.If):
            test = ast.unparse(node.test)
            if "TYPE_CHECKING" in test:
                pending.extend(node.orelse)
                continue
            pending.extend([*node.body, *node.orelse])
        elif isinstance(node, ast.Try):
            pending.extend([*node.body, *node.orelse, *node.finalbody])
            for handler in node.handlers:
                pending.extend(handler.body)
        else:
            nodes.append(node)
    return nodes


def private_imports() -> list[str]:
    """``module: what`` for every private name one module takes from another."""
    found = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        aliases: dict[str, str] = {}  # local name -> modelzoo module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = _absolute(module, node)
                if not source.startswith("modelzoo"):
                    continue
                for alias in node.names:
                    full = f"{source}.{alias.name}"
                    if full in MODULES:
                        aliases[alias.asname or alias.name] = full
                    elif _private(alias.name) and source != module:
                        found.append(f"{module}: from {source} import {alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("modelzoo") and alias.asname:
                        aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and aliases[node.value.id] != module
                and _private(node.attr)
            ):
                found.append(f"{module}: {aliases[node.value.id]}.{node.attr}")
    return sorted(set(found))


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports at load time."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in _load_time_nodes(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(module, node)
                targets = [source]
                targets += [f"{source}.{a.name}" for a in node.names]
            for target in targets:
                if target in MODULES and target != module:
                    graph[module].add(target)
    return graph


def _parents(module: str) -> list[str]:
    """Importing ``a.b.c`` imports ``a`` and ``a.b`` first."""
    parts = module.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts))]


def import_cycles() -> list[list[str]]:
    """Cycles of load-time imports, each as the modules in order (first repeated at the end).

    Importing a submodule runs its parent packages' ``__init__`` first, so a package that
    imports its children is fine, but a child that imports its own package (or an ancestor)
    while that package is importing it is a cycle.
    """
    graph = import_graph()
    edges = {m: {t for t in targets if m not in _parents(t)} for m, targets in graph.items()}
    cycles, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "active"
        stack.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == "active":
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module)
    return cycles


def test_no_module_uses_another_modules_private_names() -> None:
    assert private_imports() == [], "make the name public (and document it) or move the code"


def test_load_time_imports_form_no_cycle() -> None:
    assert import_cycles() == [], "import inside the function that needs it, or move the code"


def test_the_checks_find_what_they_look_for(tmp_path: Path, monkeypatch) -> None:
    """The two checkers above catch a private import and a cycle (so an empty list means
    something)."""
    a = tmp_path / "modelzoo" / "a.py"
    b = tmp_path / "modelzoo" / "b.py"
    a.parent.mkdir()
    (a.parent / "__init__.py").write_text("")
    a.write_text("from modelzoo.b import _hidden\n")
    b.write_text("import modelzoo.a as other\nx = other._secret\n")
    fake = {_module_name_in(tmp_path, p): p for p in sorted(a.parent.rglob("*.py"))}
    monkeypatch.setattr(__import__(__name__, fromlist=["MODULES"]), "MODULES", fake)
    assert private_imports() == [
        "modelzoo.a: from modelzoo.b import _hidden",
        "modelzoo.b: modelzoo.a._secret",
    ]
    assert import_cycles() == [["modelzoo.a", "modelzoo.b", "modelzoo.a"]]


def _module_name_in(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@pytest.mark.parametrize("call", ["os.replace(", "os.rename(", "fcntl.flock(", "msvcrt.locking("])
def test_files_are_replaced_and_locked_in_one_place(call: str) -> None:
    users = [
        _module_name(path)
        for path in MODULES.values()
        if call in path.read_text() and path != PACKAGE / "utils" / "io.py"
    ]
    assert users == [], f"{call} belongs in modelzoo.utils.io (atomic_write, FileLock)"
