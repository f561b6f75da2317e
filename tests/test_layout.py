"""The package layout says where code runs, and imports keep to it (docs/architecture.md).

``donghaeng/<context>/`` for each place code runs: ``common`` (everywhere), ``toolkit`` (a learner's
kernel), ``server`` (a learner's Jupyter server), ``hub`` (the JupyterHub process), ``grading`` (as a
course's grader), ``services`` (each lab service's process), ``deploy`` (root, at install time) and
``cli`` (the ``donghaeng`` command).  Read statically (``ast``), so a lazy import inside a function
counts as much as one at the top.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "donghaeng"
CONTEXTS = {"common", "toolkit", "server", "hub", "grading", "services", "deploy", "cli"}
# what each context may import besides itself (a kernel must not drag in the hub, a service or the CLI)
ALLOWED = {
    "common": set(),
    "toolkit": {"common"},
    "server": {"common", "toolkit", "services"},  # learners' servers call the home and exchange services
    "grading": {"common", "toolkit", "deploy", "services"},
    "services": {"common", "toolkit", "grading", "hub", "deploy"},
    "hub": {"common", "services", "grading", "deploy"},
    "deploy": {"common", "toolkit", "hub", "grading", "services"},
    "cli": CONTEXTS,
}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imported(path: Path, name: str, known: dict[str, Path]) -> Iterator[str]:
    """The lab's modules *name* (at *path*) imports, outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            while target not in known and "." in target:
                target = target.rpartition(".")[0]
            if target in known and target != name:
                yield target


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: set(imported(path, name, known)) for name, path in known.items()}


def context(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in CONTEXTS else None


def test_every_module_sits_in_the_context_where_it_runs():
    loose = sorted(m for m in modules() if context(m) is None and m not in ("donghaeng", "donghaeng.__main__"))
    assert not loose, f"modules outside donghaeng/<{'|'.join(sorted(CONTEXTS))}>/: {loose}"


def test_no_import_cycles():
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert not cycles, cycles


@pytest.mark.parametrize("ctx", sorted(CONTEXTS))
def test_each_context_imports_only_what_it_may(ctx):
    wrong = sorted(f"{m} -> {t}" for m, targets in graph().items() if context(m) == ctx
                   for t in targets if context(t) not in (ctx, None) and context(t) not in ALLOWED[ctx])
    assert not wrong, wrong


def test_nothing_imports_the_cli():
    users = sorted(m for m, targets in graph().items()
                   if context(m) != "cli" and m != "donghaeng.__main__" and any(context(t) == "cli" for t in targets))
    assert not users, users
