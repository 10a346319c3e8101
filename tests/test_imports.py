"""The import graph of edgecnn/ has no cycle: every import counts, those inside functions too."""

from __future__ import annotations

import ast
from importlib.util import find_spec
from pathlib import Path

PACKAGE = Path(find_spec("edgecnn").origin).parent  # the checkout's, or the installed wheel's on a board


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py") if "_vendor" not in p.parts}


def _resolve(node: ast.ImportFrom, here: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = here.split(".")[: len(here.split(".")) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The edgecnn modules ``name`` imports (``from pkg import mod`` counts as ``pkg.mod`` when that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, name, path.name == "__init__.py")
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _cycle_from(start: str, graph: dict[str, set[str]]) -> list[str]:
    """One cycle through ``start`` (as a path start -> ... -> start), or []."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in sorted(graph[node]):
            if nxt == start:
                return path + [start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return []


def _is_own_package(importer: str, imported: str) -> bool:
    """A package's ``__init__`` importing its own submodules, or a submodule its package: not a cycle between
    modules but the package re-exporting what it holds, which Python resolves (the submodule runs first)."""
    return imported.startswith(importer + ".") or importer.startswith(imported + ".")


def test_no_import_cycles():
    graph = import_graph()
    cycles = []
    for name in sorted(graph):
        cycle = _cycle_from(name, graph)
        if cycle and not all(_is_own_package(a, b) for a, b in zip(cycle, cycle[1:])):
            cycles.append(" -> ".join(cycle))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_module_imports_the_root_package():
    """``edgecnn/__init__`` is the public face (Classifier, ModelCard, the version): nothing inside imports it."""
    upward = sorted(name for name, imported in import_graph().items() if "edgecnn" in imported)
    assert upward == []


def test_the_graph_sees_function_level_imports_and_package_members():
    graph = import_graph()
    assert "edgecnn.tflite_metadata" in graph["edgecnn.tflite_metadata.read"]  # a name from a package __init__
    assert "edgecnn.machine" in graph["edgecnn.runtime.cpu"]  # `from edgecnn import machine`: the module
    assert "edgecnn.runtime.classifier" in graph["edgecnn"]  # inside __getattr__


def test_a_cycle_is_found_and_a_package_reexport_is_not_one():
    assert _cycle_from("a", {"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle_from("a", {"a": {"b"}, "b": set()}) == []
    assert _is_own_package("pkg", "pkg.mod") and not _is_own_package("pkg.a", "pkg.b")


def _layer(module: str) -> str:
    """The part of edgecnn a module belongs to: its sub-package, or the top-level module itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Which parts of edgecnn import which others (runtime, export, train, deploy, collect, commands, ...)."""
    layers: dict[str, set[str]] = {}
    for importer, imported in graph.items():
        layers.setdefault(_layer(importer), set()).update(_layer(m) for m in imported if _layer(m) != _layer(importer))
    return layers


def test_the_parts_of_edgecnn_are_layered():
    """No two parts import each other, through any path: the device runtime never reaches up into export or
    training, collection never into deploy, a library module never into the commands."""
    layers = layer_graph(import_graph())
    cycles = sorted(" -> ".join(cycle) for name in layers if (cycle := _cycle_from(name, layers)))
    assert not cycles, "parts of edgecnn that import each other:\n" + "\n".join(cycles)
    assert not _reach("runtime", layers) & {"export", "train", "deploy", "collect", "commands", "bench", "video"}


def _reach(start: str, graph: dict[str, set[str]]) -> set[str]:
    seen, stack = set(), [start]
    while stack:
        for nxt in graph.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def test_a_layer_cycle_is_found():
    graph = {"edgecnn.runtime.a": {"edgecnn.export.b"}, "edgecnn.export.b": {"edgecnn.runtime.c"},
             "edgecnn.runtime.c": set()}
    layers = layer_graph(graph)
    assert layers == {"runtime": {"export"}, "export": {"runtime"}}
    assert _cycle_from("runtime", layers) == ["runtime", "export", "runtime"]
