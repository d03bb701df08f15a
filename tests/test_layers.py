"""The package's import graph: the stages import one way, syntax → resolve → plan →
emit → merge, with the inputs (domain XML, facts) below them and the front ends
(api, server, cli) on top; nothing imports upward and nothing imports in a circle.
Imports inside functions count as much as those at the top of a module."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "virtuned"

# Lowest first. A module may import its own layer's modules and those of the layers
# below it; a package name stands for all of its modules.
LAYERS = (
    ("virtuned.version", "virtuned.frozen", "virtuned.diagnostics", "virtuned.inputs",
     "virtuned.values",
     "virtuned.data", "virtuned.caching", "virtuned.parallel"),
    ("virtuned.syntax", "virtuned.domain"),
    ("virtuned.facts",),
    ("virtuned.resolve",),
    ("virtuned.plan",),
    ("virtuned.emit",),
    ("virtuned.vocab",),
    ("virtuned.merge", "virtuned.provenance"),
    ("virtuned.api", "virtuned.reference"),
    ("virtuned.server", "virtuned.engines", "virtuned.apply"),
    ("virtuned.cli", "virtuned.__main__", "virtuned.outputs", "virtuned.startup"),
    ("virtuned",),  # the package itself: the lazy public API
)
# Only the front ends import inside functions: the CLI imports what each command
# needs when it runs (start-up time), the package resolves its public names lazily.
LAZY_IMPORTERS = ("virtuned", "virtuned.cli")
# Modules that only some requests need, and why: any module may import these inside
# the function that needs them, so that the other requests (a CLI compile) start
# without them. The layer and cycle checks see those imports like any other.
LAZILY_LOADED = {
    "virtuned.facts.host": "a host's capabilities: --host, fit",
    "virtuned.plan.placement": "the search for a placement on a host: --host, fit",
    "virtuned.facts.domcaps": "the hypervisor's capabilities: --domcaps",
    "virtuned.facts.snapshot": "a host snapshot: --host HOST.json, --connect",
    "virtuned.facts.live": "a live host, read through libvirt: --connect",
    "virtuned.plan.hostmap": "the picture of a host: --map",
    "virtuned.parallel": "hosts shared among forked processes: fit over a fleet",
    "virtuned.facts.osinfo": "osinfo-db: an 'os' trait, an input that names its OS",
}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known) -> list[tuple[str, bool]]:
    """(imported virtuned module, inside a function) for every import in a module."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    local = {id(node) for function in ast.walk(tree)
             if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
             for node in ast.walk(function)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            # 'from virtuned import api' imports the module virtuned.api
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        else:
            continue
        found += [(target, id(node) in local) for target in targets
                  if target in known and target != name]
    return found


def layer_of(name: str) -> int:
    best = None
    for index, members in enumerate(LAYERS):
        for member in members:
            if name == member or name.startswith(member + "."):
                if best is None or len(member) > best[1]:
                    best = (index, len(member))
    assert best is not None, f"{name} is in no layer of tests/test_layers.py"
    return best[0]


def graph() -> dict[str, list[tuple[str, bool]]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_every_module_is_in_a_layer():
    for name in modules():
        layer_of(name)


def test_no_module_imports_upward():
    upward = sorted(f"{name} imports {target}" for name, edges in graph().items()
                    for target, _ in edges if layer_of(target) > layer_of(name))
    assert upward == []


def test_the_import_graph_has_no_cycle():
    edges = {name: {target for target, _ in targets} for name, targets in graph().items()}
    state: dict[str, str] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(edges[node]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(path[path.index(target):] + [node, target])
                              if target in path else f"{node} -> {target}")
            elif target not in state:
                visit(target, path + [node])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    assert cycles == []


def test_only_the_front_ends_and_lazily_loaded_modules_are_imported_in_functions():
    hidden = sorted(f"{name} imports {target} inside a function"
                    for name, edges in graph().items() if name not in LAZY_IMPORTERS
                    for target, local in edges if local and target not in LAZILY_LOADED)
    assert hidden == []


def test_trait_modules_import_only_the_emit_kit():
    """The emit kit is the whole surface a trait module uses (and the traits of its
    family in other vocabulary modules): nothing of virtuned's outside it."""
    reached = sorted(f"{name} imports {target}" for name, edges in graph().items()
                     if name.startswith("virtuned.vocab.")
                     for target, _ in edges
                     if target != "virtuned.emit.kit"
                     and not target.startswith("virtuned.vocab"))
    assert reached == []
