"""The package layout holds: no import cycles between hnet's modules, lower layers never import
higher ones, torch-free modules stay torch-free, and nothing points outside the repository."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "hnet"

# Bottom → top. A module may import its own layer or lower ones, never a higher one.
LAYERS = [
    {"errors", "registry", "scenarios", "files", "rng", "metrics", "rundir", "steps"},
    {"fast"},  # performance-only code: imports no other hnet module
    {"data", "models"},
    {"methods"},
    {"config"},
    {"job"},
    {"tracking"},
    {"launch"},  # hnet train's launcher: wires the job layer to the tracking mirror
    {"study"},
    {"report"},
    {"cli", "__main__"},
]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """hnet modules imported anywhere in ``name`` (function-local imports included: a cycle
    hidden in a function is still a cycle)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "hnet")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            if base.split(".")[0] != "hnet":
                continue
            for a in node.names:  # `from pkg import submodule` imports the submodule
                sub = f"{base}.{a.name}"
                out.add(sub if sub in MODULES else base)
    return {m for m in out if m in MODULES and m != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def test_no_import_cycles():
    """Depth-first search for a back edge; a package importing its own submodules (registries)
    is fine, a submodule importing its package's __init__ back would be a cycle."""
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(GRAPH[m]):
            if state.get(n) == 1:
                cycles.append([*stack[stack.index(n) :], n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles: " + "; ".join(" → ".join(c) for c in cycles)


def layer_of(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    return -1


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in MODULES if m != "hnet" and layer_of(m) < 0)
    assert not unplaced, f"add these to LAYERS in {__file__}: {unplaced}"


def test_lower_layers_never_import_higher_ones():
    bad = [
        f"{m} (layer {layer_of(m)}) imports {n} (layer {layer_of(n)})"
        for m, deps in GRAPH.items()
        if m != "hnet"
        for n in deps
        if n != "hnet" and layer_of(n) > layer_of(m)
    ]
    assert not bad, "\n".join(bad)


def test_the_cycle_check_finds_a_cycle():
    """The checker itself works: a fake graph with a cycle is reported."""
    saved = dict(GRAPH)
    try:
        GRAPH["hnet.errors"] = {"hnet.rng"}
        GRAPH["hnet.rng"] = {"hnet.errors"}
        with pytest.raises(AssertionError, match="import cycles"):
            test_no_import_cycles()
    finally:
        GRAPH.clear()
        GRAPH.update(saved)


OUTSIDE = re.compile(r"METHOD\.md|DESIGN\.md|\.\./shared")


WHERE = ["hnet", "workflow", "tests", "docs", "README.md", "Makefile", "pyproject.toml", ".ci"]


@pytest.mark.parametrize("where", WHERE)
def test_nothing_points_outside_the_repository(where):
    root = ROOT / where
    files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
    hits = []
    for f in files:
        if f.suffix in {".png", ".svg", ".pyc", ".db"} or f == Path(__file__):
            continue
        for i, line in enumerate(f.read_text(errors="ignore").splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{f.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_docs_links_resolve():
    """Every relative link in README.md and docs/ names a file that exists."""
    link = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
    broken = []
    for doc in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:
        for target in link.findall(doc.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(ROOT)} → {target}")
    assert not broken, "\n".join(broken)


# docs/design.md, "Package layout": one list item per module, "- `hnet/…/name.py`: purpose".
DESIGN = ROOT / "docs" / "design.md"
LISTED = re.compile(r"^- `(hnet/[\w/]+\.py)`: \S")
# Modules listed in the layout while they are being written on another branch; drop a name here
# once its file exists.
PLANNED: set[str] = set()  # modules the layout may name before they exist


def layout_list(text: str) -> list[str]:
    """The module paths named by the list under "## Package layout" (up to the next "## ")."""
    section = text.split("\n## Package layout\n", 1)[1].split("\n## ", 1)[0]
    return [m.group(1) for line in section.splitlines() if (m := LISTED.match(line))]


def package_files() -> set[str]:
    return {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py")}


def test_the_layout_list_names_every_module():
    listed = set(layout_list(DESIGN.read_text()))
    missing = sorted(package_files() - listed)
    assert not missing, (
        "docs/design.md's 'Package layout' list lacks these modules; add a line "
        '"- `hnet/…/name.py`: purpose" for each: ' + ", ".join(missing)
    )


def test_the_layout_list_names_only_modules_that_exist():
    listed = layout_list(DESIGN.read_text())
    gone = sorted(set(listed) - package_files() - PLANNED)
    twice = sorted({m for m in listed if listed.count(m) > 1})
    assert not gone, "docs/design.md's 'Package layout' lists modules that do not exist: " + (
        ", ".join(gone)
    )
    assert not twice, "docs/design.md's 'Package layout' lists these twice: " + ", ".join(twice)


def test_the_layout_list_check_reads_the_list():
    """The parser finds list items in the section only, so a module named elsewhere in the page
    does not count as listed."""
    text = (
        "# D\n\n- `hnet/a.py`: before\n\n## Package layout\n\n- `hnet/b.py`: one\n"
        "- `hnet/c/d.py`: two\nprose naming `hnet/e.py`\n\n## Next\n\n- `hnet/f.py`: after\n"
    )
    assert layout_list(text) == ["hnet/b.py", "hnet/c/d.py"]
