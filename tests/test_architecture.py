"""The shape of the code: irisbench's modules import each other without cycles.

A cycle hidden in a function-level import still couples two modules both ways: neither can be
read, tested or moved without the other, and which one imports first decides what works. The
graph is read from the source with ``ast`` (nothing is imported), over every module under
``benchmark/`` (``irisbench``) and ``plugins/`` (``irisbench.plugins``), with imports at module
level and inside functions alike. Imports under ``if TYPE_CHECKING:`` never run and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

ROOTS = {"irisbench": REPO / "benchmark", "irisbench.plugins": REPO / "plugins"}

#: Edges allowed to close a cycle, each with its reason. Everything else must flow one way.
ALLOWED = {
    # The package's front door re-exports the Python API (irisbench.run), which runs the CLI's
    # own code path, which loads the plugins, which import their API from the front door. The
    # API imports the command only when called, by which time the package is initialised: the
    # same boundary as the CLI's lazy dispatch to its commands.
    ("irisbench.runner", "irisbench.commands.run"):
        "irisbench.run() is the CLI boundary for Python callers",
}


def module_files() -> dict[str, Path]:
    """Every module of the package by its dotted name (a package by its ``__init__.py``)."""
    modules = {}
    for package, root in ROOTS.items():
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join([package, *parts])
            # plugins/ lives outside benchmark/, so benchmark/plugins never exists; keep the first seen
            modules.setdefault(name, path)
    return modules


def _type_checking_only(node: ast.AST, parents: dict) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The irisbench modules that ``name`` imports anywhere in its source."""
    tree = ast.parse(path.read_text(), filename=str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:  # relative: from . import x, from ..api import y
            anchor = package.split(".")
            anchor = anchor[:len(anchor) - node.level + 1]
            base = ".".join(anchor + ([base] if base else []))
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            found.add(submodule if submodule in modules else base)
    return {target for target in found if target in modules and target != name}


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def path_within(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """The shortest cycle through the component's first module, for a readable failure: ``a -> b -> a``."""
    members, start = set(component), component[0]
    came_from, frontier = {}, [start]
    while frontier:  # breadth first; in a strongly connected component the start is always reached again
        following = []
        for node in frontier:
            for target in sorted(graph[node] & members):
                if target == start:
                    trail = [node]
                    while trail[-1] != start:
                        trail.append(came_from[trail[-1]])
                    return [*reversed(trail), start]
                if target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    return component


def test_the_graph_sees_module_and_function_level_imports():
    """The reader itself: both kinds of import are edges, TYPE_CHECKING ones are not."""
    graph = import_graph()
    assert "irisbench.api" in graph["irisbench.registry"]  # module level
    assert "irisbench.commands.run" in graph["irisbench.cli"]  # inside main()
    assert "irisbench.plugins.attacks" in graph and "irisbench" in graph["irisbench.plugins.attacks"]
    assert "irisbench.compare" not in graph["irisbench.render"]  # under if TYPE_CHECKING


def test_no_import_cycles():
    graph = {source: {target for target in targets if (source, target) not in ALLOWED}
             for source, targets in import_graph().items()}
    found = [" -> ".join(path_within(graph, component)) for component in cycles(graph)]
    assert not found, "import cycles (break them, or document the edge in ALLOWED):\n" + "\n".join(found)


def reaches(graph: dict[str, set[str]], source: str, target: str) -> bool:
    seen, todo = {source}, [source]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt == target:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def test_every_allowed_edge_still_closes_a_cycle():
    """An exception that no longer matches the code is stale: remove it from ALLOWED."""
    graph = import_graph()
    stale = [edge for edge in ALLOWED if edge[1] not in graph.get(edge[0], set()) or not reaches(graph, *edge[::-1])]
    assert not stale, stale
