"""The package's layering: no module imports its importer (no import circles), and no module
imports from a layer above its own. Imports are read with ``ast`` from the sources, every one of
them: at module level, inside functions and under ``TYPE_CHECKING``."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "autost"

#: The layers, bottom to top: a module may import from its own layer and the ones below it.
#: A module belongs to the layer of the longest prefix that names it; ``autost`` itself (the
#: facade, ``autost/__init__.py``) is the top layer with the command line.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("infrastructure", ("autost.errors", "autost.io", "autost.registry", "autost.version")),
    ("runtime", ("autost.runtime",)),
    ("neurons and data", ("autost.neurons", "autost.data")),
    ("model", ("autost.model",)),
    ("proxies", ("autost.proxies",)),
    ("training", ("autost.training",)),
    ("search", ("autost.search",)),
    ("tune", ("autost.tune",)),
    ("bundle", ("autost.bundle",)),
    ("pipeline", ("autost.pipeline",)),
    ("command line and facade", ("autost.cli", "autost.__main__", "autost")),
]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path) -> dict[str, Path]:
    """Every module of the package under ``root``: dotted name -> file."""
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def imports(name: str, path: Path, known: Iterable[str]) -> set[str]:
    """The package's own modules that module ``name`` imports (a ``from P import X`` names
    module ``P.X`` when that is a module, else ``P``)."""
    known = set(known)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            targets = [t for t in targets if t in known][:1] or [base]
        else:
            continue
        for target in targets:
            while target and target not in known:  # ``import autost.x.y`` of a name in x
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph(root: Path) -> dict[str, set[str]]:
    found = modules(root)
    return {name: imports(name, path, found) for name, path in found.items()}


def layer(name: str, layers: list[tuple[str, tuple[str, ...]]] = LAYERS) -> int:
    best, depth = -1, -1
    for index, (_, prefixes) in enumerate(layers):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > depth:
                best, depth = index, len(prefix)
    return best


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def upward(
    edges: dict[str, set[str]], layers: list[tuple[str, tuple[str, ...]]] = LAYERS
) -> list[str]:
    """Each import of a module from a layer above its own, as ``a (layer) -> b (layer)``."""
    out = []
    for src, targets in sorted(edges.items()):
        for dst in sorted(targets):
            if layer(dst, layers) > layer(src, layers):
                out.append(
                    f"{src} ({layers[layer(src, layers)][0]}) -> {dst} "
                    f"({layers[layer(dst, layers)][0]})"
                )
    return out


def test_every_module_has_a_layer() -> None:
    unplaced = [name for name in modules(PACKAGE) if layer(name) < 0]
    assert not unplaced


def test_no_import_circles() -> None:
    assert circles(graph(PACKAGE)) == []


def test_no_import_from_a_higher_layer() -> None:
    assert upward(graph(PACKAGE)) == []


def test_the_top_level_holds_packages_and_a_few_modules() -> None:
    """The tree shows the layers: the top of ``autost/`` is the layers' packages, the shared
    infrastructure, the pipeline and the facade."""
    top = sorted(p.name for p in PACKAGE.iterdir() if p.suffix == ".py")
    assert top == [
        "__init__.py", "__main__.py", "errors.py", "io.py", "pipeline.py", "registry.py",
        "version.py",
    ]  # fmt: skip
    infrastructure = ("autost.errors", "autost.io", "autost.registry", "autost.version")
    for name in infrastructure:
        assert graph(PACKAGE)[name] <= set(infrastructure), name


def test_training_imports_nothing_of_the_search_layer() -> None:
    edges = graph(PACKAGE)
    reached = {d for s, ds in edges.items() if s.startswith("autost.training") for d in ds}
    assert not [d for d in reached if layer(d) >= layer("autost.search")]


@pytest.mark.parametrize(
    ("files", "expect_circle", "expect_upward"),
    [
        ({"low.py": "from pkg import high\n", "high.py": "import pkg.low\n"}, True, True),
        ({"low.py": "", "high.py": "from pkg.low import x\n"}, False, False),
        ({"low.py": "def f():\n    from . import high\n", "high.py": ""}, False, True),
        (
            {
                "low.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                "    from pkg.high import H\n",
                "high.py": "from pkg import low\n",
            },
            True,
            True,
        ),
    ],
)
def test_the_checks_see_circles_and_upward_imports(
    tmp_path: Path, files: dict[str, str], expect_circle: bool, expect_upward: bool
) -> None:
    """The checker itself: a circle (also through a function-level or type-only import) and an
    upward import are found in a small package."""
    root = tmp_path / "pkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    for name, text in files.items():
        (root / name).write_text(text)
    layers = [("low", ("pkg.low", "pkg")), ("high", ("pkg.high",))]
    edges = graph(root)
    assert bool(circles(edges)) == expect_circle
    assert bool(upward(edges, layers)) == expect_upward
