"""The import graph of the brainmis package: no cycle, and a synthetic generator without
function-level imports.

Every module is parsed with ``ast`` (nothing is imported). An edge ``a -> b`` is an import of
brainmis module ``b`` anywhere in ``a``'s file: at the top, in a function or under
``TYPE_CHECKING``, since a function-level import only hides a cycle until the function runs.
``from package import name`` points at ``package.name`` when that is a module, else at
``package``. Importing a submodule also runs its parent packages' ``__init__``; those implicit
edges are left out (a package re-exporting its submodules is not a cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import brainmis

PACKAGE_ROOT = Path(brainmis.__file__).resolve().parent
SYNTHETIC = "brainmis.data.synthetic"


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the brainmis package."""
    modules = {}
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The brainmis modules that module ``name`` (file ``path``) imports anywhere."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                if f"{source}.{alias.name}" in modules:
                    targets.add(f"{source}.{alias.name}")
                elif source in modules:
                    targets.add(source)
    targets.discard(name)
    return targets


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return cycles


def function_level_imports(path: Path) -> list[str]:
    """``file:line`` of every import inside a function or class body of ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for scope in ast.walk(tree):
        if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for node in ast.walk(scope):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    found.append(f"{path.relative_to(PACKAGE_ROOT.parent)}:{node.lineno}")
    return sorted(set(found))


def test_the_graph_sees_function_level_and_relative_imports(tmp_path):
    package = tmp_path / "brainmis_probe"
    package.mkdir()
    (package / "__init__.py").write_text("from . import a\n")
    (package / "a.py").write_text("def f():\n    from brainmis_probe.b import g\n")
    (package / "b.py").write_text("from .a import f\n\ndef g():\n    pass\n")
    modules = {
        "brainmis_probe": package / "__init__.py",
        "brainmis_probe.a": package / "a.py",
        "brainmis_probe.b": package / "b.py",
    }
    graph = {name: imported_modules(name, path, modules) for name, path in modules.items()}
    assert graph == {
        "brainmis_probe": {"brainmis_probe.a"},
        "brainmis_probe.a": {"brainmis_probe.b"},
        "brainmis_probe.b": {"brainmis_probe.a"},
    }
    assert import_cycles(graph) == [["brainmis_probe.a", "brainmis_probe.b"]]


def test_no_import_cycle_within_brainmis_data():
    graph = import_graph()
    data = {
        name: {t for t in targets if t.startswith("brainmis.data")}
        for name, targets in graph.items()
        if name.startswith("brainmis.data")
    }
    assert import_cycles(data) == []


def test_no_import_cycle_in_brainmis():
    """Every cycle anywhere in the package, listed (the whole graph, not only the data layer)."""
    assert import_cycles(import_graph()) == []


def test_synthetic_generator_imports_only_at_module_level():
    synthetic = [path for name, path in module_files().items() if name.startswith(SYNTHETIC)]
    assert len(synthetic) >= 8  # the package, spec, simulation, stimulus, writers, cache, ...
    found = [line for path in synthetic for line in function_level_imports(path)]
    assert found == [], f"imports inside functions of {SYNTHETIC}: {found}"


def test_synthetic_modules_depend_one_way():
    """Each module of the generator imports only generator modules listed before it."""
    order = [
        "word_categories",
        "worlds",
        "stimulus",
        "hrf",
        "spec",
        "simulation",
        "textgrid_writer",
        "story_layout_writers",
        "writers",
        "cache",
    ]
    graph = import_graph()
    modules = [name for name in graph if name.startswith(f"{SYNTHETIC}.")]
    assert sorted(modules) == sorted(f"{SYNTHETIC}.{short}" for short in order)
    for position, short in enumerate(order):
        allowed = {f"{SYNTHETIC}.{earlier}" for earlier in order[:position]}
        inside = {t for t in graph[f"{SYNTHETIC}.{short}"] if t.startswith(SYNTHETIC)}
        assert inside <= allowed, f"{short} imports {sorted(inside - allowed)}"
