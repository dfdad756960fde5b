"""The package's import structure: cycles between its modules and its largest modules.

    python -m tools.import_graph            # summary: cycles and the largest modules
    python -m tools.import_graph --edges    # every import between the package's modules
    python -m tools.import_graph --layers   # the layers, and every import between two of them
    python -m tools.import_graph --check    # exit 1 on a cycle, an upward import, IPython outside the
                                            # magics, or a module over --max-lines

Every import of one of the package's own modules counts: at module level and inside functions alike
(a lazy import is still a dependency), except those under ``if TYPE_CHECKING:``. A package's
``__init__`` importing its own children is not counted as a cycle: that is how a package hands on names.

The layers (:data:`LAYERS`, top first) are the design: a module may import its own layer and the layers
below it, never one above. Only the magics may import IPython.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "kqlmagic_plus"

#: The package's layers, top first: (name, module prefixes). Data flows down: entry points parse the
#: line, the API builds the request, the cache and engines answer it; language, results and the core
#: types are used by everything above them.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("entry points", ("kqlmagic_plus", "kqlmagic_plus.magics", "kqlmagic_plus.cli")),
    ("demo", ("kqlmagic_plus.demo",)),
    ("api", ("kqlmagic_plus.api", "kqlmagic_plus.sparkhunt", "kqlmagic_plus.options", "kqlmagic_plus.kqlmagic_names")),
    ("hunts", ("kqlmagic_plus.hunts",)),
    ("engines", ("kqlmagic_plus.engines",)),
    ("cache", ("kqlmagic_plus.cache",)),
    ("connections", ("kqlmagic_plus.connections",)),
    ("lake", ("kqlmagic_plus.lake",)),
    ("results", ("kqlmagic_plus.results",)),
    ("display", ("kqlmagic_plus.display",)),
    ("language", ("kqlmagic_plus.language",)),
    ("core", ("kqlmagic_plus.request", "kqlmagic_plus.kqltypes", "kqlmagic_plus.config", "kqlmagic_plus.errors",
              "kqlmagic_plus.redaction", "kqlmagic_plus._version")),
)
#: Third-party packages only these layers' modules may import.
ONLY_IN = {"IPython": ("kqlmagic_plus.magics",)}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([name] if name else [])])


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(sub) for sub in ast.walk(node))
    return skip


def imports(path: Path, module: str, known: set[str]) -> set[str]:
    """The package modules *path* imports (the nearest known module of each imported name)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node.level, node.module)
            names = [f"{base}.{a.name}" for a in node.names]
            if not all(n in known for n in names):  # a name defined in base itself, not a submodule
                names.append(base)
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def third_party(path: Path) -> set[str]:
    """Top-level names of the packages outside this one that *path* imports (TYPE_CHECKING aside)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    found.discard(PACKAGE.name)
    return found


def layer_of(module: str) -> int:
    """Index of *module*'s layer in :data:`LAYERS` (0 = top): its longest matching prefix decides."""
    best, index = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, index = len(prefix), i
    if index is None:
        raise SystemExit(f"{module} is in no layer: add it to LAYERS in tools/import_graph.py")
    return index


def upward(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Imports from a lower layer to a higher one."""
    return sorted((a, b) for a, targets in edges.items() for b in targets if layer_of(b) < layer_of(a))


def misplaced_imports(files: dict[str, Path]) -> list[tuple[str, str]]:
    """(module, package) where a module imports a third-party package its layer may not."""
    bad = []
    for mod, path in files.items():
        for name in sorted(third_party(path)):
            allowed = ONLY_IN.get(name)
            if allowed and not any(mod == a or mod.startswith(a + ".") for a in allowed):
                bad.append((mod, name))
    return bad


def graph(root: Path = PACKAGE) -> tuple[dict[str, set[str]], dict[str, Path]]:
    files = {module_name(root, p): p for p in sorted(root.rglob("*.py"))}
    known = set(files)
    edges: dict[str, set[str]] = {}
    for mod, path in files.items():
        targets = imports(path, mod, known)
        if path.name == "__init__.py":
            targets = {t for t in targets if not t.startswith(mod + ".")}
        edges[mod] = targets
    return edges, files


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
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
    return found


def line_counts(files: dict[str, Path], root: Path = PACKAGE) -> list[tuple[int, str]]:
    sizes = [(len(p.read_text(encoding="utf-8").splitlines()), str(p.relative_to(root.parent)))
             for p in files.values()]
    return sorted(sizes, reverse=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.import_graph", description=__doc__.splitlines()[0])
    ap.add_argument("--max-lines", type=int, default=1000, help="largest module allowed (default 1000)")
    ap.add_argument("--top", type=int, default=8, help="how many of the largest modules to list")
    ap.add_argument("--edges", action="store_true", help="print every import between the package's modules")
    ap.add_argument("--layers", action="store_true", help="print the layers and the imports between them")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 on a cycle, an upward or misplaced import, or a module over --max-lines")
    args = ap.parse_args(argv)
    edges, files = graph()
    if args.edges:
        for mod in sorted(edges):
            for target in sorted(edges[mod]):
                print(f"{mod} -> {target}")
    if args.layers:
        for i, (name, prefixes) in enumerate(LAYERS):
            below = sorted({LAYERS[layer_of(t)][0] for m in edges if layer_of(m) == i for t in edges[m]
                            if layer_of(t) != i})
            print(f"{i + 1:2d} {name:<13} {', '.join(prefixes)}" + (f"  -> {', '.join(below)}" if below else ""))
    found = cycles(edges)
    for component in found:
        print("cycle:", " ".join(component))
    up = upward(edges)
    for a, b in up:
        print(f"upward: {a} ({LAYERS[layer_of(a)][0]}) -> {b} ({LAYERS[layer_of(b)][0]})")
    wrong = misplaced_imports(files)
    for mod, name in wrong:
        print(f"misplaced: {mod} imports {name} (only {', '.join(ONLY_IN[name])} may)")
    sizes = line_counts(files)
    for n, path in sizes[: args.top]:
        print(f"{n:6d} {path}")
    over = [(n, p) for n, p in sizes if n > args.max_lines]
    print(f"modules {len(files)}; cycles {len(found)} (modules in cycles {sum(map(len, found))}); "
          f"upward imports {len(up)}; misplaced imports {len(wrong)}; "
          f"largest {sizes[0][0]} lines ({sizes[0][1]}); modules over {args.max_lines} lines {len(over)}")
    return 1 if args.check and (found or up or wrong or over) else 0


if __name__ == "__main__":
    sys.exit(main())
