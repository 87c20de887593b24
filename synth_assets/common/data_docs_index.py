"""Great Expectations' Data Docs index, built from a summary of each validation result.

GE rebuilds the index page after every validation, and its ``DefaultSiteIndexBuilder`` loads every
validation result the project holds to read four things of each (its success, batch kwargs, batch
spec and asset name): its whole result, every expectation's outcome included. A project that keeps
its history grows by some forty results a release, so each validation's index costs more with every
release: 4.0-4.4 s a validation at 978 results, 70% of it loading results (bench/README.md,
"Forty-eighth pass"); GE's users report the same (great_expectations issues 1826, 2565, 3732).

:class:`SummarisedSiteIndexBuilder` is GE's builder, the same page, whose results are read from
``uncommitted/data_docs_index.json``: each result's JSON without its expectations' outcomes, made
once from the result the first time the index lists it. Results are never rewritten under their key
(GE's key holds the run's time), so a summary stays true; one whose result is gone is dropped at the
next build. The project's site names this class (``common.expectations`` sets it): GE instantiates
it by module and class name, as its site configuration allows for any index builder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
from great_expectations.render.renderer.site_builder import DefaultSiteIndexBuilder

#: The summaries, beside the validation results (not among them: GE lists every file there as one)
SUMMARIES = Path("uncommitted") / "data_docs_index.json"


class _SummarisedResults:
    """The data context as the index builder reads it: each validation result from its summary."""

    def __init__(self, context: Any) -> None:
        self._context = context
        self.path = Path(context.root_directory) / SUMMARIES
        try:
            self.kept: dict[str, dict[str, Any]] = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):  # none yet, or unreadable: made again from the results
            self.kept = {}
        self.used: dict[str, dict[str, Any]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def get_validation_result(self, expectation_suite_name: str, run_id: Any = None, batch_identifier: Any = None,
                              validation_results_store_name: str | None = None, **kwargs: Any) -> Any:
        key = ValidationResultIdentifier(ExpectationSuiteIdentifier(name=expectation_suite_name), run_id,
                                         batch_identifier)
        name = json.dumps(key.to_tuple())
        summary = self.kept.get(name)
        if summary is None:
            result = self._context.get_validation_result(
                expectation_suite_name, run_id=run_id, batch_identifier=batch_identifier,
                validation_results_store_name=validation_results_store_name, **kwargs)
            if not hasattr(result, "to_json_dict"):  # GE's {} for a key with no result: as GE treats it
                return result
            summary = {k: v for k, v in result.to_json_dict().items() if k != "results"}
        self.used[name] = summary
        store = self._context.stores[validation_results_store_name or self._context.validation_results_store_name]
        return store.deserialize({**summary, "results": []})

    def save(self) -> None:
        """The summaries of the results this build listed: new ones added, those of removed results
        dropped; written whole or not at all."""
        if self.used == self.kept:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps(self.used))
        os.replace(partial, self.path)


class SummarisedSiteIndexBuilder(DefaultSiteIndexBuilder):
    """GE's index builder reading each validation result's summary, not the result (module doc)."""

    def build(self, skip_and_clean_missing: bool = True, build_index: bool = True) -> Any:
        if not build_index:
            return super().build(skip_and_clean_missing, build_index)
        context = self.data_context
        results = _SummarisedResults(context)
        self.data_context = results  # type: ignore[assignment]
        try:
            built = super().build(skip_and_clean_missing, build_index)
        finally:
            self.data_context = context
        results.save()
        return built
