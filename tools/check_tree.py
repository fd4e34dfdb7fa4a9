#!/usr/bin/env python3
"""The source tree's gates, run by `make test` (docs/ARCHITECTURE.md, "Gates"):

1. no Rust file under src/ or tests/ is longer than 600 lines;
2. no `#[path]` attribute: the folder tree is the module tree;
3. the top-level modules form layers, and a module uses only its own layer
   and those below it, so there is no import cycle between layers.

Exits 1 with one line per violation.
"""
import pathlib
import re
import sys

MAX_LINES = 600

# Lowest first. A module may use any module listed before it, never one after.
LAYERS = [
    "error",
    "config",
    "telemetry",
    "store",
    "calllog",
    "router",
    "serve",
    "upstream",
    "policy",
    "ai",
    "mcp",
    "snapshot",
    "proxy",
    "process",
]
RANK = {name: i for i, name in enumerate(LAYERS)}

USE_GROUP = re.compile(r"\bcrate::\{([^}]*)\}", re.S)
CRATE_PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")


def top_module(path: pathlib.Path, src: pathlib.Path) -> str | None:
    rel = path.relative_to(src)
    if len(rel.parts) == 1:
        stem = rel.stem
        return None if stem in ("lib", "main") else stem
    return rel.parts[0]


def strip_comments(text: str) -> str:
    # Doc links such as [`crate::serve::workers`] are not dependencies.
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def used_modules(text: str) -> set[str]:
    code = strip_comments(text)
    used = set(CRATE_PATH.findall(code))
    for group in USE_GROUP.findall(code):
        for item in group.split(","):
            name = item.strip().split("::", 1)[0].strip()
            if name:
                used.add(name)
    return used


def main() -> int:
    root = pathlib.Path(__file__).resolve().parent.parent
    src = root / "src"
    problems = []
    for path in sorted(list(src.rglob("*.rs")) + list((root / "tests").rglob("*.rs"))):
        text = path.read_text()
        rel = path.relative_to(root)
        lines = text.count("\n")
        if lines > MAX_LINES:
            problems.append(f"{rel}: {lines} lines, more than {MAX_LINES}: split it by responsibility")
        if re.search(r"#\[path\s*=", text):
            problems.append(f"{rel}: #[path] attribute: move the file where its module is")
        if not path.is_relative_to(src):
            continue
        me = top_module(path, src)
        if me is None:
            continue
        if me not in RANK:
            problems.append(f"{rel}: top-level module `{me}` is not in tools/check_tree.py's LAYERS")
            continue
        for other in sorted(used_modules(text)):
            if other in RANK and RANK[other] > RANK[me]:
                problems.append(f"{rel}: `{me}` uses `crate::{other}`, a layer above it ({' < '.join(LAYERS)})")
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"tree: ok ({len(LAYERS)} layers, no file over {MAX_LINES} lines, no #[path])")
    return 0


if __name__ == "__main__":
    sys.exit(main())
