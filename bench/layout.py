"""The layout figures of the layout issue: top-level modules, modules over 500 lines, import circles, lines.

`python bench/layout.py` prints one table for `dolma_kit/`, `train/` and `bench/`. Import edges are every
`import` and `from … import` of a project module, at any depth (lazy imports inside functions count: they
close a circle just the same), except those under `if TYPE_CHECKING:`. tests/test_layout.py holds the same
graph to the targets (no circle, no module over 500 lines).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dolma_kit", "train")
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules that `name` imports (a `from pkg import sub` that names a submodule counts as it)."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    edges = {name: imports(name, path, known) for name, path in mods.items()}
    # a package's __init__ is run by importing any of its submodules: that is not an edge of the submodule
    return {name: {t for t in targets if not name.startswith(t + ".")} for name, targets in edges.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            node, it = work[-1]
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(edges.get(nxt, ())))))
                    break
                if nxt in on:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        top = stack.pop()
                        on.discard(top)
                        comp.append(top)
                        if top == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def _sources(folder: str) -> list[Path]:
    """The project's Python files under `folder`: not what benches leave in bench/out (peers' venvs)."""
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "out" not in p.relative_to(ROOT).parts[1:2])


def long_modules(folders: tuple[str, ...] = (*PACKAGES, "bench")) -> list[tuple[str, int]]:
    found = []
    for folder in folders:
        for path in _sources(folder):
            n = len(path.read_text().splitlines())
            if n > MAX_LINES:
                found.append((str(path.relative_to(ROOT)), n))
    return found


def main() -> None:
    edges = graph()
    loops = circles(edges)
    top = sorted(p.name for p in (ROOT / "dolma_kit").glob("*.py"))
    lines = {
        folder: sum(len(p.read_text().splitlines()) for p in _sources(folder))
        for folder in (*PACKAGES, "bench", "tests")
    }
    print(f"{'figure':<40} value")
    print(f"{'top-level modules in dolma_kit/':<40} {len(top)}")
    print(f"{'import circles (dolma_kit, train)':<40} {len(loops)}")
    for loop in loops:
        print(f"  {' ↔ '.join(loop)}")
    over = long_modules()
    print(f"{'modules over 500 lines':<40} {len(over)}")
    for path, n in over:
        print(f"  {path}: {n}")
    for folder, n in lines.items():
        print(f"{'lines in ' + folder + '/':<40} {n:,}")
    sys.exit(0)


if __name__ == "__main__":
    main()
