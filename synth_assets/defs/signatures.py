"""Catalog-driven inputs: one function parameter per survey, named at definition time.

Dagster maps inputs to parameters by name and does not accept ``**kwargs``; the surveys
come from the catalog, so their parameters are added to the signature here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def with_keyword_inputs(fn: Callable, names: Iterable[str], annotations: Mapping[str, Any] | None = None) -> Callable:
    """``fn`` with one parameter per name; ``annotations``: the type of some of them (Dagster loads
    an input annotated ``ParquetTable`` as the file, not the frame: ``defs/io_managers.py``)."""
    signature = inspect.signature(fn)
    params = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    params += [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                 annotation=(annotations or {}).get(n, inspect.Parameter.empty)) for n in names]
    target: Any = fn  # functions take attributes; Callable does not say so
    target.__signature__ = signature.replace(parameters=params)
    return fn
