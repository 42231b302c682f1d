"""The package's layers: imports go down only, no import circles, no project import hidden in a
function (cli.py excepted: its commands load lazily for start-up time).

LAYERS is the one table of which module sits where (README "Architecture" shows the same); a
module may import modules of its own layer or lower ones, never higher. The checker reads the
source with `ast` (nothing is imported), so a test can feed it a made-up module.
"""

import ast
import re
from pathlib import Path

import pytest

from kindred_map.paths import PROJECT_ROOT

PACKAGE = "kindred_map"

LAYERS = (
    (
        "base",
        "shared helpers with no project logic above them",
        (
            "kindred_map",
            "paths",
            "text",
            "schema",
            "files",
            "postcodes",
            "report",
            "location",
            "auth",
            "private",
            "roles",
            "people",
            "upload_gate",
            "hours",
            "columns",
        ),
    ),
    (
        "records",
        "reference layers and the import's pure steps (read, place, join, mask, match)",
        ("boundaries", "privacy", "geocode", "ingest", "join", "oruk"),
    ),
    (
        "storage",
        "the store's backends and history, beneath store.py",
        ("storage",),
    ),
    ("store", "the one entry point to the store, and edits through it", ("store", "stewardship")),
    (
        "analysis and outputs",
        "figures, views, maps and every export; the upload pipeline above the store",
        (
            "coverage",
            "clusters",
            "filters",
            "downloads",
            "figures",
            "classing",
            "view",
            "colours",
            "maps",
            "assets",
            "popups",
            "freshness",
            "tables",
            "areapanel",
            "abouttext",
            "search",
            "mapview",
            "change",
            "changecharts",
            "export",
            "profile",
            "cartography",
            "printmap",
            "need",
            "build",
            "samples",
            "duplicates",
            "importing",
            "upload",
        ),
    ),
    (
        "front doors",
        "the Streamlit pages, the HTTP feeds and the command line",
        ("pages", "feed", "api", "ogc", "orukapi", "cli"),
    ),
)
"""(layer, what it holds, modules) from the bottom up. A name stands for the module and every
module beneath it (``export`` covers ``kindred_map.export.formats``; ``storage`` the
``kindred_map/storage/`` package of store backends)."""

LAZY_IMPORTS_ALLOWED = {"kindred_map.cli"}
"""Modules that may import project modules inside functions (the CLI, for start-up time)."""


def layer_of(module: str) -> int | None:
    """The layer number (0 = base) of a ``kindred_map...`` module, or None if the table lacks it."""
    if module == PACKAGE:
        return 0
    relative = module.removeprefix(PACKAGE + ".")
    for number, (_, _, names) in enumerate(LAYERS):
        if any(relative == name or relative.startswith(name + ".") for name in names):
            return number
    return None


def package_sources(root: Path = PROJECT_ROOT) -> dict[str, str]:
    """``{module name: source}`` of every module of the package."""
    sources = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        name = ".".join(path.relative_to(root).with_suffix("").parts)
        sources[name.removesuffix(".__init__")] = path.read_text(encoding="utf-8")
    return sources


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports(module: str, source: str, modules: set[str], is_package: bool = False) -> list:
    """``(target module, line, inside a function)`` for each project import of ``module``
    (``from kindred_map import x`` counts as importing the module ``kindred_map.x``)."""
    tree = ast.parse(source)
    inside = set()
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            inside |= {id(node) for node in ast.walk(function) if node is not function}
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node, is_package)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.append(full if full in modules else base)
        for target in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                found.append((target, node.lineno, id(node) in inside))
    return found


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
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

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def violations(sources: dict[str, str]) -> list[str]:
    """Every breach of the layer rules in ``sources`` (``{module: source}``), as sentences."""
    modules = set(sources)
    packages = {name for name in modules if any(m.startswith(name + ".") for m in modules)}
    problems = []
    edges = {name: set() for name in modules}
    for module, source in sorted(sources.items()):
        own = layer_of(module)
        if own is None:
            problems.append(f"{module} has no layer: add it to LAYERS in tests/test_layers.py")
            continue
        for target, line, lazy in imports(module, source, modules, module in packages):
            if target not in modules or target == module:
                continue
            edges[module].add(target)
            if lazy and module not in LAZY_IMPORTS_ALLOWED:
                problems.append(f"{module}:{line} imports {target} inside a function")
            theirs = layer_of(target)
            if theirs is not None and theirs > own:
                problems.append(
                    f"{module}:{line} imports {target} upward "
                    f"({LAYERS[own][0]} -> {LAYERS[theirs][0]})"
                )
    for group in _cycles(edges):
        problems.append(f"import circle: {' -> '.join(group)}")
    return problems


def test_the_package_imports_downward_only_without_circles_or_hidden_imports():
    assert violations(package_sources()) == []


def test_every_layer_is_in_the_readme_with_its_modules():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Architecture\n", 1)[1].split("\n## ", 1)[0]
    rows = {
        cells[0].strip("* "): cells[1]
        for line in section.splitlines()
        if line.startswith("| ") and (cells := [c.strip() for c in line.strip("|").split("|")])
    }
    for layer, _, names in LAYERS:
        assert layer in rows, f"README's layer table lacks {layer!r}"
        listed = set(re.findall(r"`([\w./]+)`", rows[layer]))
        assert set(names) <= {n.removesuffix("/").removesuffix(".py") for n in listed}, layer


# --- the checker catches each kind of breach (fed made-up module sources) -------------------


@pytest.fixture(scope="module")
def sources():
    return package_sources()


def test_an_upward_import_is_caught(sources):
    changed = dict(sources)
    changed["kindred_map.coverage"] += "\nfrom kindred_map.pages import map as page\n"
    line = changed["kindred_map.coverage"].count("\n")
    assert (
        f"kindred_map.coverage:{line} imports kindred_map.pages.map upward "
        "(analysis and outputs -> front doors)"
    ) in violations(changed)
    assert violations(sources) == []  # the real package, unchanged, passes


def test_a_store_importing_an_output_is_caught(sources):
    changed = dict(sources)
    changed["kindred_map.storage.fake"] = "from kindred_map import export\n"
    (problem,) = violations(changed)
    assert problem.startswith("kindred_map.storage.fake:1 imports kindred_map.export upward")


def test_a_circle_is_caught(sources):
    changed = dict(sources)
    changed["kindred_map.filters"] += "\nimport kindred_map.figures\n"  # figures imports filters
    problems = violations(changed)
    assert any(p.startswith("import circle:") and "kindred_map.filters" in p for p in problems)


def test_an_import_inside_a_function_is_caught_outside_the_cli(sources):
    hidden = "\n\ndef late():\n    from kindred_map import schema\n\n    return schema\n"
    changed = dict(sources)
    changed["kindred_map.coverage"] += hidden
    changed["kindred_map.cli"] += hidden
    problems = violations(changed)
    assert [p for p in problems if "inside a function" in p] == [
        f"kindred_map.coverage:{sources['kindred_map.coverage'].count(chr(10)) + 4} imports "
        "kindred_map.schema inside a function"
    ]


def test_a_module_without_a_layer_is_caught(sources):
    changed = dict(sources)
    changed["kindred_map.newthing"] = '"""New."""\n'
    assert violations(changed) == [
        "kindred_map.newthing has no layer: add it to LAYERS in tests/test_layers.py"
    ]


def test_relative_imports_are_read_as_the_modules_they_name():
    modules = {"kindred_map.export", "kindred_map.export.tables", "kindred_map.pages"}
    found = imports("kindred_map.export.tables", "from ..pages import x\n", modules)
    assert found == [("kindred_map.pages", 1, False)]
