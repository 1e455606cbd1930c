"""The layering the design promises (docs/design.md §1): agent -> tools -> tools.vectorize, nothing upward.

Read from the source with ``ast`` (imports inside functions count too), so a convenience import
that turns the layers around fails here rather than in a review.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"agent": 2, "tools": 1, "tools.vectorize": 0}  # a package may import only lower numbers
LONG_MODULES: dict[str, str] = {}  # module -> why it may pass MAX_LINES (none today)
MAX_LINES = 400


def _package(module: str) -> str | None:
    for name in sorted(LAYERS, key=len, reverse=True):
        if module == name or module.startswith(name + "."):
            return name
    return None


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    graph: dict[str, set[str]] = {}
    for path in [*ROOT.glob("agent/*.py"), *ROOT.glob("tools/*.py"), *ROOT.glob("tools/vectorize/*.py")]:
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base
                                                                                                      else []))
                targets.add(base)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[module] = {t for t in targets if _package(t)}
    return graph


def test_imports_only_point_down_the_layers():
    upward = [f"{m} imports {t}" for m, targets in import_graph().items() for t in targets
              if LAYERS[_package(t)] > LAYERS[_package(m)]]
    assert upward == []


def test_no_module_is_longer_than_it_needs_to_be():
    long = {str(p.relative_to(ROOT)): n for p in [*ROOT.glob("agent/*.py"), *ROOT.glob("tools/**/*.py")]
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert set(long) <= set(LONG_MODULES), long


if __name__ == "__main__":  # python tests/test_structure.py: the graph, package to package
    edges = {(_package(m), _package(t)) for m, ts in import_graph().items() for t in ts if _package(t) != _package(m)}
    for a, b in sorted(edges):
        print(f"{a} -> {b}")
