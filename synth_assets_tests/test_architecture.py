"""The import graph: packages depend one way, in pipeline order, and no module imports itself in a circle.

Every module of ``synth_assets`` is parsed with :mod:`ast`; imports at module level and
inside functions count alike (an import moved into a function still ties the modules).
A package may import its own modules and those of packages *below* it in :data:`LAYERS`;
the Dagster layer (``defs``, ``cli``, ``definitions``) may import any package below it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "synth_assets"

#: Lowest first. A module of one layer may import modules of its own layer and of lower ones.
#: ``common`` holds the shared primitives (files, hashing, distances, HTML, settings); ``demo``
#: generates the demonstration data and depends on nothing but ``common``.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("common",),
    ("catalog",),
    ("demo",),
    ("ingest",),
    ("harmonise",),
    ("matching",),
    ("synthesis",),
    ("calibration",),
    ("inference",),
    ("validation",),
    ("publication",),
    ("audit",),
    ("dagster_api",),  # the one module touching Dagster's private API (see its contract test)
    ("defs",),
    ("operations",),  # what runs the definitions: the headless runner, the audit's history reader
    ("cli", "definitions"),
)


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(module: str, path: Path, known: set[str]) -> set[str]:
    """The ``synth_assets`` modules ``module`` imports, at any depth of its code."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # ``from package import module`` imports the module; ``from module import name`` the module.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            # ``import a.b.c`` also runs a and a.b: the nearest known module stands for them.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != module:
                found.add(target)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    paths = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    known = set(paths)
    return {module: imported_modules(module, path, known) for module, path in paths.items()}


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else ""
    for rank, layer in enumerate(LAYERS):
        if name in layer:
            return rank
    return None


def layer_violations(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Imports from a lower layer into a higher one, and modules in no layer."""
    problems = []
    for module, targets in sorted(graph.items()):
        rank = layer_of(module)
        if rank is None:
            if module != ROOT.name:
                problems.append(f"{module} belongs to no layer of LAYERS: move it into a package or add it")
            continue
        for target in sorted(targets):
            target_rank = layer_of(target)
            if target_rank is not None and target_rank > rank:
                problems.append(
                    f"{module} imports {target}: {LAYERS[rank][0]} may not depend on "
                    f"{LAYERS[target_rank][0]}, which comes later in the pipeline"
                )
    return problems


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def describe_cycle(graph: Mapping[str, Iterable[str]], component: list[str]) -> str:
    """The imports inside one cycle, ``a -> b`` each, so the message says which line to move."""
    members = set(component)
    edges = [f"{a} -> {b}" for a in component for b in sorted(graph.get(a, ())) if b in members]
    return "; ".join(edges)


# ------------------------------------------------------------------- the checker itself


def test_checker_finds_a_cycle_and_names_its_imports() -> None:
    graph = {
        "synth_assets.synthesis.a": {"synth_assets.synthesis.b"},
        "synth_assets.synthesis.b": {"synth_assets.synthesis.c"},
        "synth_assets.synthesis.c": {"synth_assets.synthesis.a"},
        "synth_assets.synthesis.d": {"synth_assets.synthesis.a"},
    }
    found = cycles(graph)
    assert found == [["synth_assets.synthesis.a", "synth_assets.synthesis.b", "synth_assets.synthesis.c"]]
    assert "synth_assets.synthesis.c -> synth_assets.synthesis.a" in describe_cycle(graph, found[0])
    assert cycles({"x": {"y"}, "y": set()}) == []


def test_checker_refuses_an_import_against_the_pipeline_order() -> None:
    graph = {
        "synth_assets.synthesis.tabular": {"synth_assets.validation.privacy.copies", "synth_assets.common.hashing"},
        "synth_assets.validation.evaluate": {"synth_assets.synthesis.base"},
        "synth_assets.defs.assets": {"synth_assets.audit.lineage"},
        "synth_assets.stray": set(),
    }
    problems = layer_violations(graph)
    assert any(
        "synth_assets.synthesis.tabular imports synth_assets.validation.privacy.copies" in p for p in problems
    ), problems
    assert any("synth_assets.stray belongs to no layer" in p for p in problems)
    assert len(problems) == 2


def test_checker_sees_imports_inside_functions_and_relative_ones(tmp_path: Path) -> None:
    package = tmp_path / "synth_assets"
    (package / "catalog").mkdir(parents=True)
    (package / "validation").mkdir()
    (package / "__init__.py").write_text("")
    (package / "catalog" / "__init__.py").write_text("from .model import Catalog\n")
    (package / "catalog" / "model.py").write_text(
        "def check():\n    from synth_assets.validation.report import write\n"
    )
    (package / "validation" / "__init__.py").write_text("")
    (package / "validation" / "report.py").write_text("from ..catalog import model\n")
    graph = import_graph(package)
    assert graph["synth_assets.catalog"] == {"synth_assets.catalog.model"}
    assert graph["synth_assets.catalog.model"] == {"synth_assets.validation.report"}
    assert graph["synth_assets.validation.report"] == {"synth_assets.catalog.model"}
    assert cycles(graph) == [["synth_assets.catalog.model", "synth_assets.validation.report"]]
    assert layer_violations(graph) == [
        "synth_assets.catalog.model imports synth_assets.validation.report: catalog may not depend on "
        "validation, which comes later in the pipeline"
    ]


# ------------------------------------------------------------------- the project


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_every_package_has_a_layer(graph: dict[str, set[str]]) -> None:
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in ROOT.glob("*.py") if p.name != "__init__.py"}
    layered = {name for layer in LAYERS for name in layer}
    assert packages | modules <= layered, f"not in LAYERS: {sorted((packages | modules) - layered)}"


def test_no_import_cycle(graph: dict[str, set[str]]) -> None:
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(describe_cycle(graph, c) for c in found)


def test_packages_depend_one_way_in_pipeline_order(graph: dict[str, set[str]]) -> None:
    problems = layer_violations(graph)
    assert not problems, "imports against the pipeline order:\n" + "\n".join(problems)


#: Inside ``defs``: shared definitions first, then one folder per stage in pipeline order (the
#: calibration targets come from the register, before the model draws), ``definitions`` last.
DEFS_LAYERS: tuple[tuple[str, ...], ...] = (
    ("keys", "partitions", "values", "resources", "io_managers", "metadata", "signatures", "deployment", "versions",
     "deliveries", "automation", "working_sets"),
    ("ingest",),
    ("harmonise",),
    ("matching",),
    ("calibration",),
    ("synthesis",),
    ("validation",),
    ("publication",),
    ("definitions",),
)


def defs_layer_of(module: str) -> int | None:
    parts = module.split(".")
    if parts[:2] != ["synth_assets", "defs"] or len(parts) < 3:
        return None
    return next((rank for rank, layer in enumerate(DEFS_LAYERS) if parts[2] in layer), None)


def test_defs_stages_depend_one_way() -> None:
    graph = import_graph()
    problems = []
    for module, targets in sorted(graph.items()):
        if not module.startswith("synth_assets.defs."):
            continue
        rank = defs_layer_of(module)
        if rank is None:
            problems.append(f"{module} is in no stage of DEFS_LAYERS")
            continue
        for target in sorted(targets):
            target_rank = defs_layer_of(target)
            if target_rank is not None and target_rank > rank:
                problems.append(f"{module} imports {target}, a later stage")
    assert not problems, "\n".join(problems)


def test_defs_has_one_folder_per_stage() -> None:
    stages = {p.name for p in (ROOT / "defs").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert stages == {"ingest", "harmonise", "matching", "calibration", "synthesis", "validation", "publication",
                      "automation"}
    for stage in stages - {"automation"}:
        assert (ROOT / "defs" / stage / "assets.py").exists(), f"defs/{stage}/ has no assets.py"
