"""Great Expectations as its users know it: suites as GE JSON, Data Docs, special codes by row_condition."""

from __future__ import annotations

import json

import pandas as pd

from synth_assets.common.expectations import DataDocs, run_suite, table_suite

SPEC = {
    "name": "persons",
    "required_columns": ["person_id", "age"],
    "ranges": {"age": {"min": 0, "max": 120}},
    "categories": {"status": [1, 2]},
    "special_values": {"age": [-8, -9], "status": [-8]},
}


def _range_expectation(suite):
    return next(e for e in suite["expectations"] if e["type"] == "expect_column_values_to_be_between")


def test_special_codes_are_a_row_condition_not_a_filter():
    suite = table_suite(SPEC)
    between = _range_expectation(suite)
    assert between["kwargs"]["row_condition"] == "`age` not in [-8, -9]"
    assert between["kwargs"]["condition_parser"] == "pandas"
    in_set = next(e for e in suite["expectations"] if e["type"] == "expect_column_values_to_be_in_set")
    assert in_set["kwargs"]["row_condition"] == "`status` not in [-8]"

    codes_only = pd.DataFrame({"person_id": [1, 2, 3], "age": [30, -8, -9], "status": [1, -8, 2]})
    assert run_suite(codes_only, suite).success
    violating = codes_only.assign(age=[30, -8, 150])
    report = run_suite(violating, suite)
    assert not report.success
    [failure] = report.failures
    assert failure.column == "age" and failure.unexpected_count == 1 and failure.unexpected_examples == [150]
    # -7 is no special code: the condition keeps it, and the range refuses it
    assert not run_suite(codes_only.assign(age=[30, -7, -9]), suite).success


def test_suites_are_kept_as_ge_json_with_data_docs(tmp_path):
    import great_expectations as gx

    docs = DataDocs(tmp_path / "data_docs", run_name="2022 run-one")
    frame = pd.DataFrame({"person_id": [1, 2], "age": [30, -8], "status": [1, 2]})
    report = run_suite(frame, table_suite(SPEC), docs=docs)
    assert report.success
    assert report.suite_file == docs.suite_file("persons") and report.suite_file.exists()
    assert report.docs_index == docs.index and docs.index.exists()

    reloaded = gx.ExpectationSuite(**json.loads(report.suite_file.read_text()))
    assert reloaded.name == "persons"
    between = next(e for e in reloaded.expectations if e.expectation_type == "expect_column_values_to_be_between")
    assert between.row_condition is not None and "not in [-8, -9]" in str(between.row_condition)

    failed = run_suite(frame.assign(age=[30, 150]), table_suite({**SPEC, "name": "other"}),
                       docs=DataDocs(docs.root, run_name="2023 run-two"))
    assert not failed.success
    index = docs.index.read_text()
    for text in ("persons", "other", "2022 run-one", "2023 run-two"):
        assert text in index, text
    pages = list((docs.index.parent / "validations").rglob("*.html"))
    assert len(pages) == 2
    assert (docs.index.parent / "expectations" / "persons.html").exists()


def test_a_validation_saves_its_suite_only_when_it_changed_and_a_changed_one_replaces_the_kept_one(
        tmp_path, monkeypatch):
    # GE's add_or_update matches every expectation against the saved suite's (a list search of
    # normalised dicts, quadratic in the suite: 0.17-0.33 s for a survey's suite at every validation
    # in a file-system project): an unchanged suite is kept as saved, not saved again
    from great_expectations.core.factory.suite_factory import SuiteFactory

    added: list[str] = []
    updated: list[str] = []
    add, add_or_update = SuiteFactory.add, SuiteFactory.add_or_update

    def counted_add(self, suite):
        added.append(suite.name)
        return add(self, suite)

    def counted_update(self, suite):
        updated.append(suite.name)
        return add_or_update(self, suite)

    monkeypatch.setattr(SuiteFactory, "add", counted_add)
    monkeypatch.setattr(SuiteFactory, "add_or_update", counted_update)
    frame = pd.DataFrame({"person_id": [1, 2], "age": [30, -8], "status": [1, 2]})
    assert run_suite(frame, table_suite(SPEC)).success  # an ephemeral context: nothing saved before
    assert (added, updated) == (["persons"], [])

    docs = DataDocs(tmp_path / "data_docs", run_name="first")
    first = run_suite(frame, table_suite(SPEC), docs=docs)
    kept_file = first.suite_file.read_text()
    again = run_suite(frame, table_suite(SPEC), docs=DataDocs(docs.root, run_name="again"))
    assert first.success and again.success
    assert (added, updated) == (["persons"] * 2, [])  # the unchanged suite kept as saved
    assert again.suite_file.read_text() == kept_file

    narrower = {**SPEC, "ranges": {"age": {"min": 0, "max": 20}}}
    report = run_suite(frame, table_suite(narrower), docs=DataDocs(docs.root, run_name="second"))
    assert updated == ["persons"]
    assert not report.success and report.failures[0].unexpected_examples == [30]
    kept = json.loads(report.suite_file.read_text())
    assert _range_expectation(kept)["kwargs"]["max_value"] == 20
    assert kept["id"] == json.loads(kept_file)["id"]  # the suite's id stays the one saved first
    # the narrower suite judged again: unchanged now, so kept, with the same verdict
    repeated = run_suite(frame, table_suite(narrower), docs=DataDocs(docs.root, run_name="third"))
    assert updated == ["persons"] and not repeated.success
    assert "third" in docs.index.read_text()


def _site_pages(root) -> dict[str, str]:
    """The Data Docs pages under ``root``, each with its own project's id and build time left out."""
    import re

    def timeless(text: str) -> str:
        text = re.sub(r"dataContextId=[0-9a-f-]{36}|'_run_time_sort': [0-9.]+", "", text)
        return re.sub(r"\d{8}T\d{6}\.\d+Z|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?", "TIME", text)

    site = DataDocs(root).index.parent
    return {timeless(str(path.relative_to(site))): timeless(path.read_text()) for path in site.rglob("*.html")}


def test_data_docs_templates_are_compiled_once_a_process_and_render_the_same_pages(tmp_path):
    """Each Data Docs view GE makes has a Jinja environment of its own; they share one bytecode cache,
    so a second build compiles no template, and its pages are those of a build that compiled them."""
    from great_expectations.render.view.view import DefaultJinjaPageView

    from synth_assets.common.expectations import compiled_templates

    frame = pd.DataFrame({"person_id": [1, 2], "age": [30, -8], "status": [1, 2]})
    cache = compiled_templates()
    cache.codes.clear()  # as in a fresh process
    before = cache.compiled
    run_suite(frame, table_suite(SPEC), docs=DataDocs(tmp_path / "first", run_name="run"))
    compiled = cache.compiled
    assert compiled > before  # the first build compiled its templates, and kept them
    assert DefaultJinjaPageView().env.bytecode_cache is cache
    run_suite(frame, table_suite(SPEC), docs=DataDocs(tmp_path / "second", run_name="run"))
    assert cache.compiled == compiled  # none compiled again
    first, second = _site_pages(tmp_path / "first"), _site_pages(tmp_path / "second")
    assert len(first) == 3 and first == second


def test_a_validation_of_a_known_suite_leaves_the_project_s_configuration_unwritten(tmp_path, monkeypatch):
    # GE's add_or_update of the data source writes great_expectations.yml at every validation
    from great_expectations.data_context.data_context.file_data_context import FileDataContext

    saves: list[int] = []
    save = FileDataContext._save_project_config

    def counted(self, *args, **kwargs):
        saves.append(1)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(FileDataContext, "_save_project_config", counted)
    frame = pd.DataFrame({"person_id": [1, 2], "age": [30, -8], "status": [1, 2]})
    assert run_suite(frame, table_suite(SPEC), docs=DataDocs(tmp_path / "data_docs", run_name="first")).success
    assert saves  # the project made: its data source, asset and batch saved
    saves.clear()
    assert run_suite(frame, table_suite(SPEC), docs=DataDocs(tmp_path / "data_docs", run_name="second")).success
    assert saves == []
