"""Code versions derived from the source each asset runs, so a change of code marks it stale.

An asset's ``code_version`` is a hash of every ``synth_assets`` module its stage's defs module
imports, directly or not (imports inside functions included, found with ``ast`` as the
architecture test finds them), with the ``__init__`` of every package on the way: change
``synthesis/constraints.py`` and the synthesis assets get a new version, the ingest assets
keep theirs. Computed once per module, at import; ``root`` lets a test hash a copy.

``covered(version)`` says which packages a version covers (``catalog, common, ingest, ...``):
the asset-spec snapshot records that, which changes with the graph, not with every edit.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = "synth_assets"
ROOT = Path(__file__).resolve().parents[1]  # the synth_assets package folder

_COVERED: dict[str, tuple[str, ...]] = {}


def _file_of(module: str, root: Path) -> Path | None:
    parts = module.split(".")[1:]
    base = root.joinpath(*parts)
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def _imports(module: str, path: Path) -> frozenset[str]:
    """Every ``synth_assets`` module ``path`` imports (``from a import b``: ``a.b`` where ``b`` is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return frozenset(m for m in found if m == PACKAGE or m.startswith(PACKAGE + "."))


def module_closure(module: str, root: Path = ROOT) -> dict[str, Path]:
    """``module`` and every ``synth_assets`` module it needs, with their packages' ``__init__``: name -> file."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _file_of(name, root)
        if path is None:
            continue  # a name imported from a module, not a module
        seen[name] = path
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        todo += [p for p in parents if p not in seen]
        if name != PACKAGE:  # the top-level package's lazy analyst shortcuts are no step's code
            todo += sorted(_imports(name, path) - seen.keys())
    return seen


def _package_of(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts:
        return PACKAGE
    if parts[0] == "defs" and len(parts) > 2:
        return f"defs/{parts[1]}"  # a stage folder; ``defs`` alone: the shared modules
    return parts[0]


@functools.cache
def code_version(module: str, root: Path = ROOT) -> str:
    """A 16-hex hash of the sorted paths and contents of ``module``'s closure (see the module doc)."""
    closure = module_closure(module, root)
    if module not in closure:
        raise ModuleNotFoundError(f"no module {module} under {root}")
    digest = hashlib.sha256()
    for name in sorted(closure):
        digest.update(name.encode() + b"\0" + closure[name].read_bytes() + b"\0")
    version = digest.hexdigest()[:16]
    _COVERED[version] = tuple(sorted({_package_of(m) for m in closure} - {PACKAGE}))
    return version


def covered(version: str | None) -> tuple[str, ...] | None:
    """The packages whose source a version computed here hashes (None: not a version from here)."""
    return _COVERED.get(version or "")
