#!/usr/bin/env python3
"""Fails when the modules of a crate import each other in a circle.

For every crate (`<crate>/src`), each top-level module (`src/x.rs` or `src/x/`) is a node, and
so is every file inside a module folder, among its siblings. An edge a -> b means code of a
names b through `crate::b` (or `super::b` from a sibling file). Test code (`#[cfg(test)]` to the
end of a file, `tests.rs`, `*_tests.rs`) and comments are not dependencies. Prints every cycle found and exits
1, or prints nothing and exits 0.

Usage: scripts/check-module-cycles.py [crate_dir ...]   (default: env agent train eval)
"""

import re
import sys
from pathlib import Path

CRATE_PATH = re.compile(r"\bcrate::((?:\{[^;]*?\}|[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_{][^;\s,}]*)?))")
SUPER_PATH = re.compile(r"\bsuper::([A-Za-z_][A-Za-z0-9_]*)")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def code_of(path: Path) -> str:
    text = path.read_text()
    cut = text.find("#[cfg(test)]")
    if cut >= 0:
        text = text[:cut]
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def module_path(src: Path, file: Path) -> list[str]:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def crate_targets(code: str) -> list[list[str]]:
    """Module paths named after `crate::`, with `{a, b::c}` groups expanded one level."""
    out = []
    for match in CRATE_PATH.finditer(code):
        body = match.group(1)
        if body.startswith("{"):
            for item in body.strip("{}").split(","):
                names = IDENT.findall(item)
                if names:
                    out.append(names)
        else:
            out.append(IDENT.findall(body))
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def check_crate(crate: Path) -> list[str]:
    src = crate / "src"
    files = [f for f in src.rglob("*.rs") if f.name != "tests.rs" and not f.name.endswith("_tests.rs")]
    graph: dict[str, set[str]] = {}
    for file in files:
        here = module_path(src, file)
        code = code_of(file)
        targets = crate_targets(code)
        # `super::x` from a file inside a folder names a sibling of that file.
        if len(here) >= 2:
            for name in SUPER_PATH.findall(code):
                targets.append(here[:-1] + [name])
        for target in targets:
            if not target or not here:
                continue
            # Top level: module a -> module b.
            if target[0] != here[0]:
                graph.setdefault(here[0], set()).add(target[0])
                continue
            # Inside one folder: sibling file -> sibling file.
            depth = 1
            while depth < len(here) and depth < len(target) and here[depth] == target[depth]:
                depth += 1
            if depth < len(here) and depth < len(target):
                a = "::".join(here[: depth + 1])
                b = "::".join(target[: depth + 1])
                if (src.joinpath(*target[: depth + 1]).with_suffix(".rs").exists()
                        or src.joinpath(*target[: depth + 1]).is_dir()):
                    graph.setdefault(a, set()).add(b)
    return [f"{crate.name}: " + " <-> ".join(c) for c in cycles(graph)]


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    crates = sys.argv[1:] or ["env", "agent", "train", "eval"]
    problems = [p for c in crates for p in check_crate(root / c)]
    for p in problems:
        print(f"import cycle: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
