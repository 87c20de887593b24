"""The Data Docs index from each validation result's summary: GE's own page, each result loaded once."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from synth_assets.common.data_docs_index import SUMMARIES
from synth_assets.common.expectations import INDEX_BUILDER, DataDocs, run_suite, table_suite

SPEC = {"name": "persons", "required_columns": ["person_id", "age"], "ranges": {"age": {"min": 0, "max": 120}}}
FRAME = pd.DataFrame({"person_id": [1, 2], "age": [30, 40]})


@pytest.fixture
def full_loads(monkeypatch):
    """The suite names of every validation result loaded whole from the project's store."""
    from great_expectations.data_context.data_context.abstract_data_context import AbstractDataContext

    loaded: list[str] = []
    load = AbstractDataContext.get_validation_result

    def counted(self, expectation_suite_name, *args, **kwargs):
        loaded.append(expectation_suite_name)
        return load(self, expectation_suite_name, *args, **kwargs)

    monkeypatch.setattr(AbstractDataContext, "get_validation_result", counted)
    return loaded


def _ge_default_index(root) -> str:
    """The index page GE's own ``DefaultSiteIndexBuilder`` makes of the project at ``root``."""
    import great_expectations as gx
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    context = gx.get_context(mode="file", project_root_dir=str(root))
    site = context.variables.data_docs_sites["local_site"]
    context.update_data_docs_site("local_site", {**site, "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}})
    context.build_data_docs(resource_identifiers=[ExpectationSuiteIdentifier(name="no such suite")])  # the index alone
    return _built_at_left_out(DataDocs(root).index.read_text())


def _built_at_left_out(page: str) -> str:
    return re.sub(r"\?d=\d{8}T\d{6}\.\d+Z", "", page)  # the logo's address holds the build's time


def test_each_result_is_loaded_once_and_the_index_is_the_one_ge_makes(tmp_path, full_loads):
    root = tmp_path / "data_docs"
    for run, (spec, frame) in enumerate([(SPEC, FRAME), ({**SPEC, "name": "other"}, FRAME.assign(age=[30, 150])),
                                         (SPEC, FRAME)]):
        run_suite(frame, table_suite(spec), docs=DataDocs(root, run_name=f"run {run}"))
    # each build loaded only the result it had not summarised yet: the one just stored
    assert full_loads == ["persons", "other", "persons"]
    summaries = json.loads((DataDocs(root).project / SUMMARIES).read_text())
    assert len(summaries) == 3 and all("results" not in s for s in summaries.values())
    assert sorted(s["success"] for s in summaries.values()) == [False, True, True]

    ours = _built_at_left_out(DataDocs(root).index.read_text())
    for text in ("run 0", "run 1", "run 2", "other"):
        assert text in ours, text
    assert _ge_default_index(root) == ours  # the same page, every result loaded by GE


def test_a_removed_result_leaves_the_index_and_its_summary(tmp_path):
    root = tmp_path / "data_docs"
    for run in ("kept", "removed"):
        run_suite(FRAME, table_suite(SPEC), docs=DataDocs(root, run_name=run))
    [removed] = (DataDocs(root).project / "uncommitted" / "validations").glob("persons/removed/*/*.json")
    removed.unlink()
    run_suite(FRAME, table_suite({**SPEC, "name": "other"}), docs=DataDocs(root, run_name="later"))
    index = DataDocs(root).index.read_text()
    assert "kept" in index and "later" in index and "removed" not in index
    summaries = json.loads((DataDocs(root).project / SUMMARIES).read_text())
    assert len(summaries) == 2 and not any("removed" in key for key in summaries)


def test_a_project_ge_made_is_switched_to_the_summarised_index(tmp_path, full_loads):
    import great_expectations as gx

    root = tmp_path / "data_docs"
    gx.get_context(mode="file", project_root_dir=str(root))  # GE's default site: its own index builder
    run_suite(FRAME, table_suite(SPEC), docs=DataDocs(root, run_name="first"))
    config = (DataDocs(root).project / "great_expectations.yml").read_text()
    assert INDEX_BUILDER["module_name"] in config and INDEX_BUILDER["class_name"] in config
    run_suite(FRAME, table_suite(SPEC), docs=DataDocs(root, run_name="second"))
    assert full_loads == ["persons", "persons"]  # GE's builder would have loaded 1 then 2
