"""The house keeps its layering: no import goes up a layer, no two modules import each
other, and the README says the same as this check.

The imports are read from the source with `ast`: every import counts, the ones inside a
function too (they run as surely, only later), except those under `if TYPE_CHECKING:`
(annotations only, never executed).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "oort_lib"
README = (ROOT / "README.md").read_text(encoding="utf-8")

# Top to bottom. A module may import its own layer or any layer below it.
LAYERS: list[tuple[str, ...]] = [
    ("cli", "__main__", "account", "doctor", "folders", "oort1", "samples", "servercheck",
     "telescopes", "watchlist"),
    ("views",),
    ("run",),
    ("arcsecond",),
    ("state",),
    ("local",),
    ("errors", "host", "escape"),
]
# The test server stands beside the layers: it shares the pure rules of the local side,
# and only the top (`oort-sync sandbox`, the demo's samples) starts it.
SANDBOX_MAY_USE = ("sandbox", "local", "errors", "host", "escape")
Graph = dict[str, set[str]]


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _type_checking_only(tree: ast.AST) -> set[int]:
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return skipped


def _targets(name: str, node: ast.Import | ast.ImportFrom, package: bool, known) -> list[str]:
    if isinstance(node, ast.Import):
        named = [alias.name for alias in node.names]
    else:
        if node.level:
            base = name.split(".")[: len(name.split(".")) - node.level + (1 if package else 0)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        # `from oort_lib.run import sync` imports the module run.sync, not only run.
        named = [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in known else prefix
                 for alias in node.names]
    out = []
    for target in named:
        while target not in known and "." in target:
            target = target.rsplit(".", 1)[0]
        if target in known and target != name:
            out.append(target)
    return out


def import_graph() -> Graph:
    """Which package modules each package module imports (TYPE_CHECKING aside)."""
    known = modules()
    graph: Graph = {name: set() for name in known}
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _type_checking_only(tree)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skipped:
                graph[name].update(_targets(name, node, path.name == "__init__.py", known))
    return graph


def layer_of(module: str) -> str:
    """The first part of a module's name below the package: its layer's member name."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "cli"


def rank(module: str) -> int | None:
    """The module's layer, 0 at the top; None for the sandbox."""
    if module == "oort_lib":  # the package itself: its version, nothing imported
        return len(LAYERS)
    member = layer_of(module)
    for index, layer in enumerate(LAYERS):
        if member in layer:
            return index
    if member == "sandbox":
        return None
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and to the README")


def upward(graph: Graph) -> list[str]:
    """Each import of a higher layer (or of the sandbox from below the top)."""
    found = []
    for source, targets in sorted(graph.items()):
        for target in sorted(targets):
            here, there = rank(source), rank(target)
            if here is None:
                if layer_of(target) not in SANDBOX_MAY_USE:
                    found.append(f"{source} -> {target} (the sandbox uses only "
                                 f"{', '.join(SANDBOX_MAY_USE)})")
            elif there is None:
                if here != 0:
                    found.append(f"{source} -> {target} (only the top starts the sandbox)")
            elif there < here:
                found.append(f"{source} -> {target} (up from {layer_of(source)} "
                             f"to {layer_of(target)})")
    return found


def cycles(graph: Graph) -> list[list[str]]:
    """The groups of modules that import each other, directly or around a loop (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
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
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_module_imports_a_higher_layer():
    assert upward(import_graph()) == []


def test_the_package_itself_imports_nothing():
    assert import_graph()["oort_lib"] == set()


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_check_catches_an_upward_import_and_a_cycle():
    graph = import_graph()
    before = set(upward(graph))
    graph["oort_lib.state.manifest"].add("oort_lib.run.sync")
    graph["oort_lib.sandbox.store"].add("oort_lib.state.manifest")
    graph["oort_lib.local.scan"].add("oort_lib.sandbox")
    assert [found for found in upward(graph) if found not in before] == [
        "oort_lib.local.scan -> oort_lib.sandbox (only the top starts the sandbox)",
        "oort_lib.sandbox.store -> oort_lib.state.manifest "
        "(the sandbox uses only sandbox, local, errors, host, escape)",
        "oort_lib.state.manifest -> oort_lib.run.sync (up from state to run)",
    ]
    graph = import_graph()
    graph["oort_lib.local.rules"].add("oort_lib.local.scan")
    graph["oort_lib.local.scan"].add("oort_lib.local.rules")
    assert ["oort_lib.local.rules", "oort_lib.local.scan"] in cycles(graph)


def test_lazy_imports_count_and_type_checking_ones_do_not(tmp_path):
    source = ("from typing import TYPE_CHECKING\n"
              "if TYPE_CHECKING:\n    from oort_lib.run.plan import Plan\n"
              "def f():\n    from oort_lib.run import sync\n")
    tree = ast.parse(source)
    skipped = _type_checking_only(tree)
    known = modules()
    seen = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skipped:
            seen.update(_targets("oort_lib.state.x", node, False, known))
    assert seen == {"oort_lib.run.sync"}


def test_the_readme_states_the_same_layers():
    sentence = re.search(r"imports go downwards[^:]*:(.*?)\.\s", README, re.S | re.I)
    assert sentence, "the README's Development section states the layers"
    stated = [tuple(re.findall(r"`([\w/]+)`", part)) for part in sentence.group(1).split("→")]
    assert [tuple(name.rstrip("/") for name in layer) for layer in stated] == LAYERS
    beside = re.search(r"\(`sandbox/`\)[^:]*: it uses\s+only (.*?), and only", README, re.S)
    assert beside, "the README says what the sandbox may use"
    assert ("sandbox", *re.findall(r"`(\w+)`", beside.group(1))) == SANDBOX_MAY_USE


def test_the_readme_module_table_matches_the_tree():
    table = README.split("| folder | what it is | modules |", 1)[1].split("\n\n", 1)[0]
    for row in table.strip().splitlines()[1:]:
        folder, _, listed = row.strip("|").split("|", 2)
        folder = folder.strip().strip("`").rstrip("/")
        present = {path.stem for path in (PACKAGE / folder).glob("*.py")} - {"__init__"}
        named = set(re.findall(r"`(\w+)`", listed))
        if folder == "sandbox":
            assert not named or named == present, folder
            continue
        assert named == present, (folder, sorted(present - named), sorted(named - present))
