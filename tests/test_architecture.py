"""The package's shape, checked: no import cycle, no private name imported across modules, imports at the top
of modules (inside functions only for optional dependencies), errors defined in one module."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dckd"
OPTIONAL = ("torch.utils.tensorboard", "onnx", "onnxruntime", "spandrel")
"""Dependencies that are not installed by default: imported where they are used, inside functions."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported_modules(node: ast.AST, current: str) -> list[tuple[str, list[str]]]:
    """(module, names) for an import statement, resolved against the dckd modules."""
    if isinstance(node, ast.Import):
        return [(alias.name, []) for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            package = current.rsplit(".", node.level)[0] if MODULES[current].name != "__init__.py" else current
            base = f"{package}.{base}" if base else package
        return [(base, [alias.name for alias in node.names])]
    return []


def dckd_edges(current: str, tree: ast.AST) -> set[str]:
    """The dckd modules ``current`` imports (a package's ``__init__`` runs before its submodules)."""
    edges = set()
    for node in ast.walk(tree):
        for module, names in imported_modules(node, current):
            if not module.startswith("dckd"):
                continue
            targets = [f"{module}.{name}" if f"{module}.{name}" in MODULES else module for name in names] or [module]
            for target in targets:
                parts = target.split(".")
                for depth in range(1, len(parts) + 1):  # importing a.b.c runs a, a.b, a.b.c
                    prefix = ".".join(parts[:depth])
                    if prefix in MODULES and prefix != current and not current.startswith(prefix + "."):
                        edges.add(prefix)
    return edges


def test_there_is_no_import_cycle() -> None:
    graph = {name: dckd_edges(name, ast.parse(path.read_text(encoding="utf-8"))) for name, path in MODULES.items()}
    # Tarjan's strongly connected components
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in graph:
        if name not in index:
            visit(name)
    assert not cycles, f"import cycles: {cycles}"


def test_imports_are_at_module_level_except_optional_dependencies() -> None:
    nested = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                for module, _ in imported_modules(node, name):
                    if not module.startswith(OPTIONAL):
                        nested.append(f"{name}.{function.name}: {module}")
    assert not nested, "imports inside functions (move them to the top of the module):\n" + "\n".join(nested)


def test_no_private_name_is_imported_across_modules() -> None:
    private = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for module, names in imported_modules(node, name):
                if module.startswith("dckd"):
                    private += [f"{name} imports {module}.{item}" for item in names if item.startswith("_")]
    assert not private, "\n".join(private)


def test_errors_are_defined_in_one_module() -> None:
    defined = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error") and name != "dckd.errors":
                defined.append(f"{name}.{node.name}")
    assert not defined, f"error classes outside dckd/errors.py: {defined}"
