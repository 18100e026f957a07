"""The package's shape: no import circle, short modules, a layout table that matches the files.

Imports are read with ``ast`` (nothing is imported): every ``import hawkeye...`` and ``from
hawkeye... import ...``, at module level or inside a function, counts; only imports under ``if
TYPE_CHECKING:`` (they never run) and under ``if __name__ == "__main__":`` (they run only when the
file is the script, after the package has been imported) do not.
"""

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "hawkeye"
MAX_LINES = 600
LONG_MODULE_NOTE = "one module on purpose"  # a longer module's docstring says why, with this


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _script_only(node: ast.If) -> bool:
    """``if __name__ == "__main__":``: runs only when the module is the script."""
    test = node.test
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__" and len(test.comparators) == 1
            and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")


def imported_modules(tree: ast.AST, package: str) -> set[str]:
    """The hawkeye modules a module imports (``from hawkeye.x import y`` -> x, or x.y when y is
    a module); imports under ``if TYPE_CHECKING:`` or ``if __name__ == "__main__":`` are left
    out."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and (_type_checking_only(node) or _script_only(node)):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("hawkeye"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.startswith("hawkeye"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names
                         if f"{node.module}.{a.name}" in MODULES)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    # importing a.b.c also runs a.b's __init__: count the packages on the way
    with_parents = {".".join(m.split(".")[:i]) for m in found
                    for i in range(1, m.count(".") + 2)}
    return {m for m in with_parents if m in MODULES and m != package}


def import_graph() -> dict[str, set[str]]:
    return {name: imported_modules(ast.parse(path.read_text()), name)
            for name, path in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := walk(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := walk(start)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_circle_and_ignores_type_checking_imports() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    source = ("from typing import TYPE_CHECKING\nfrom hawkeye.io import atomic_path\n"
              "if TYPE_CHECKING:\n    from hawkeye.collect import Summary\n"
              "def f():\n    from hawkeye import launch\n"
              "if __name__ == '__main__':\n    from hawkeye.store_cli import main\n")
    assert imported_modules(ast.parse(source), "x") == {"hawkeye", "hawkeye.io",
                                                         "hawkeye.launch"}


def test_no_import_circle_in_the_package() -> None:
    graph = import_graph()
    assert graph["hawkeye.train"] >= {"hawkeye.families", "hawkeye.export"}  # it sees imports
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_are_short_or_say_why(name) -> None:
    path = MODULES[name]
    lines = len(path.read_text().splitlines())
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert lines <= MAX_LINES or LONG_MODULE_NOTE in docstring.lower(), (
        f"{path.relative_to(REPO)} has {lines} lines (> {MAX_LINES}): split it, or say in its "
        f"docstring why it is {LONG_MODULE_NOTE!r}")


def _listed(rel: str, table: str) -> bool:
    folder, name = rel.rsplit("/", 1)
    if f"`{rel}`" in table or f"`{folder}/<name>.py`" in table:
        return True
    if name in ("__init__.py", "__main__.py") and f"`{folder}/" in table:
        return True
    files = re.search(rf"`{re.escape(folder)}/` \(([^)]*)\)", table)
    return bool(files and f"`{name}`" in files.group(1))


def test_architecture_layout_table_matches_the_files() -> None:
    """Every module of the package is in docs/architecture.md's table, and every file the table
    names exists (``hawkeye/x.py``, or ``hawkeye/pkg/`` followed by its files in brackets)."""
    table = (REPO / "docs" / "architecture.md").read_text().split("## Contracts")[0]
    named = [n for n in re.findall(r"`(hawkeye/[\w/.]+)`", table)]
    for folder, files in re.findall(r"`(hawkeye/[\w/]+/)` \(([^)]*)\)", table):
        named += [folder + f for f in re.findall(r"`([\w.]+\.py)`", files)]
    absent = [n for n in named if not (REPO / n).exists()]
    assert not absent, f"docs/architecture.md names {absent}, which do not exist"
    missing = [str(p.relative_to(REPO)) for p in MODULES.values()
               if not _listed(str(p.relative_to(REPO)), table)]
    assert not missing, f"docs/architecture.md's layout table does not name {missing}"
