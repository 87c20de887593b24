"""Per-asset tests: one asset materialised with ``dg.materialize`` on one partition.

Upstream values come from a copy of the ingested tiny demo (conftest.py: every source wave
ingested) through the IO managers; the gate is called with its inputs as plain values.
"""

import base64
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from synth_assets.catalog import Catalog, load_catalog
from synth_assets.common.frames import ParquetTable, write_rows
from synth_assets.common.hashing import dataframe_sha256, file_sha256
from synth_assets.common.layout import DataLayout
from synth_assets.common.parallel import available_cores
from synth_assets.defs import keys
from synth_assets.defs.definitions import build_definitions
from synth_assets.defs.metadata import JUDGED_HASH
from synth_assets.defs.partitions import latest_wave_at_or_before
from synth_assets.defs.publication.assets import build_public_dataset
from synth_assets.defs.values import MatchingReport, ModelFile, SourceFile, WaveTable
from synth_assets.ingest import source_path
from synth_assets.operations.runner import register_waves
from synth_assets.synthesis.split import TAKE_ALL_BELOW, split_masks
from synth_assets_tests.defs.conftest import Prepared

RELEASE_WAVE = "2024"


@dataclass
class Warehouse:
    root: Path
    defs: dg.Definitions
    catalog: Catalog
    instance: dg.DagsterInstance
    waves: dict[str, str]  # the wave of each source the release reads

    def materialize(self, *selection: dg.AssetKey, partition: str = RELEASE_WAVE,
                    run_config: dict | None = None) -> dg.ExecuteInProcessResult:
        """Materialise the selected asset(s) and their checks; the rest of the graph only loads."""
        return dg.materialize(
            [*(self.defs.assets or []), *(self.defs.asset_checks or [])], selection=list(selection),
            partition_key=partition, instance=self.instance, resources=self.defs.resources, raise_on_error=False,
            run_config=run_config,
        )

    def load(self, key: dg.AssetKey, partition: str = RELEASE_WAVE):
        with self.defs.get_asset_value_loader(self.instance) as loader:
            return loader.load_asset_value(key, partition_key=partition)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory, prepared_ingested: Prepared) -> Warehouse:
    copy = prepared_ingested.copy_to(tmp_path_factory.mktemp("per_asset"))
    layout = DataLayout(copy.root)
    catalog = load_catalog(layout.catalog)
    with copy.instance() as instance:
        delivered = register_waves(instance, catalog, layout)
        waves = {name: latest_wave_at_or_before(found, RELEASE_WAVE) for name, found in delivered.items()}
        for name, wave in waves.items():
            assert wave is not None, name
            assert instance.get_latest_materialization_event(keys.raw(name)) is not None, name  # ingested
        yield Warehouse(copy.root, build_definitions(copy.root), catalog, instance,
                        {n: w for n, w in waves.items() if w})


def _check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_raw_asset_reads_one_wave_with_its_file_and_value_labels(warehouse: Warehouse):
    source = next(n for n, s in warehouse.catalog.sources.items() if s.format == "spss")  # a file with value labels
    wave = warehouse.waves[source]
    result = warehouse.materialize(keys.raw(source), partition=wave)
    assert result.success
    assert _check_results(result) == {keys.DELIVERED_FILE_IS_VALID: True}
    raw = warehouse.load(keys.raw(source), wave)
    path = source_path(warehouse.root / "incoming", warehouse.catalog.sources[source], wave)
    assert isinstance(raw, WaveTable) and not raw.data.attrs
    assert raw.origin == SourceFile(source, wave, str(path), file_sha256(path), result.run_id)
    assert raw.value_labels, "the SPSS file's value labels travel in the value"


def test_harmonised_asset_takes_the_raw_wave_from_the_warehouse(warehouse: Warehouse):
    register = warehouse.catalog.register_name
    result = warehouse.materialize(keys.harmonised(register))
    assert result.success
    assert _check_results(result) == {keys.CONFORMS_TO_COMMON_SCHEMA: True}
    harmonised = warehouse.load(keys.harmonised(register))
    raw = warehouse.load(keys.raw(register))
    assert harmonised.origin == raw.origin  # the file it came from, for the data card
    assert set(warehouse.catalog.register.variables) <= set(harmonised.data.columns)


def test_the_register_wave_is_read_harmonised_and_checked_a_part_at_a_time(warehouse: Warehouse, monkeypatch):
    """A register wave never whole in an ingest step: read a batch at a time and written out as it
    comes, harmonised a row group at a time, each checked a batch at a time (ids judged on their
    column alone); stored, the same wave as the file read and harmonised whole."""
    import synth_assets.catalog.expectations as expectations
    import synth_assets.defs.harmonise.assets as harmonise_assets
    import synth_assets.defs.ingest.assets as ingest_assets
    import synth_assets.defs.values as values
    from synth_assets.common.frames import ParquetStack
    from synth_assets.harmonise import harmonise_table
    from synth_assets.ingest import read_source_batches, read_source_file

    read, harmonised_rows, validated_rows = [], [], []

    def batches(path, source, rows=None):
        for batch in read_source_batches(path, source, rows=97):
            read.append(len(batch.data))
            yield batch

    def harmonise_part(raw, *args, **kwargs):
        harmonised_rows.append(len(raw))
        return harmonise_table(raw, *args, **kwargs)

    validate_chunks = expectations.validate_chunks

    def recorded_chunks(chunks, *args, **kwargs):
        def counted():
            for chunk in chunks:
                validated_rows.append(len(chunk))
                yield chunk
        return validate_chunks(counted(), *args, **kwargs)

    monkeypatch.setattr(ingest_assets, "read_source_batches", batches)
    monkeypatch.setattr(harmonise_assets, "harmonise_table", harmonise_part)
    monkeypatch.setattr(values, "ParquetStack", lambda **kwargs: ParquetStack(row_group_rows=50, **kwargs))
    monkeypatch.setattr(expectations, "BATCH_ROWS", 120)
    monkeypatch.setattr(expectations, "validate_chunks", recorded_chunks)
    register = warehouse.catalog.register_name
    result = warehouse.materialize(keys.raw(register), keys.harmonised(register))
    assert result.success
    assert _check_results(result) == {keys.DELIVERED_FILE_IS_VALID: True, keys.CONFORMS_TO_COMMON_SCHEMA: True}
    path = source_path(warehouse.root / "incoming", warehouse.catalog.register, RELEASE_WAVE)
    whole = read_source_file(path, warehouse.catalog.register).data
    assert len(read) > 3 and max(read) == 97 and sum(read) == len(whole)
    assert len(harmonised_rows) > 3 and max(harmonised_rows) == 50 and sum(harmonised_rows) == len(whole)
    assert max(validated_rows) == 50 and sum(validated_rows) == 2 * len(whole)  # both checks, by row groups
    expected = ParquetStack()
    expected.append(harmonise_table(whole, warehouse.catalog, register, file=str(path)))
    stored = warehouse.load(keys.harmonised(register))
    assert isinstance(stored, WaveTable) and stored.origin.file == str(path)
    pd.testing.assert_frame_equal(stored.data, expected.finish().read())


def test_donor_takes_the_latest_survey_wave_at_or_before_the_release(warehouse: Warehouse):
    for survey in warehouse.catalog.surveys:
        result = warehouse.materialize(keys.donor(survey))
        assert result.success, survey
        donor = warehouse.load(keys.donor(survey))
        assert donor.wave == warehouse.waves[survey] == donor.origin.wave
        assert donor.origin == warehouse.load(keys.harmonised(survey), donor.wave).origin
    assert any(w != RELEASE_WAVE for w in warehouse.waves.values()), "a survey of an earlier wave is part of the test"


def test_the_matching_fuses_a_register_a_part_at_a_time_and_writes_its_report(warehouse: Warehouse, monkeypatch):
    """A register stored in row groups of 97 persons, fused in parts of about a quarter of it: each
    part written as it is fused, together the register's records once and in order, households whole
    (the step's check), the report written through its IO manager; the matched replicates likewise."""
    import synth_assets.defs.values as values
    from synth_assets.common.frames import ParquetStack

    monkeypatch.setattr(values, "ParquetStack", lambda **kwargs: ParquetStack(row_group_rows=97, **kwargs))
    register = warehouse.catalog.register_name
    assert warehouse.materialize(keys.harmonised(register)).success
    if any(not warehouse.instance.get_latest_materialization_event(keys.donor(s)) for s in warehouse.catalog.surveys):
        for survey in warehouse.catalog.surveys:
            assert warehouse.materialize(keys.donor(survey)).success
    persons = warehouse.load(keys.harmonised(register)).data
    part = -(-len(persons) // 4)  # four parts
    result = warehouse.materialize(keys.MATCHED_DATASET, keys.MATCHING_REPORT, run_config={
        "ops": {"matched_dataset": {"config": {"part_persons": part}}}})
    assert result.success
    assert _check_results(result) and all(_check_results(result).values())
    metadata = result.asset_materializations_for_node("matched_dataset")[0].metadata
    parts = metadata["register_parts"].value
    assert parts == 4 and metadata["rows"].value == len(persons)
    assert len(metadata["diagnostics"].value[next(iter(warehouse.catalog.surveys))]["register_parts"]) == parts
    matched = warehouse.load(keys.MATCHED_DATASET)
    assert isinstance(matched, pd.DataFrame)
    pd.testing.assert_frame_equal(matched[list(persons.columns)], persons)
    page = warehouse.root / "reports" / "matching_report" / f"{RELEASE_WAVE}.html"
    assert "Statistical matching diagnostics" in page.read_text()
    report = warehouse.load(keys.MATCHING_REPORT)
    assert isinstance(report, MatchingReport)
    assert {n: o.wave for n, o in report.sources.items()} == warehouse.waves
    assert not (warehouse.root / "reports" / RELEASE_WAVE).exists(), "no side write beside the IO manager"
    assert warehouse.materialize(keys.TRAINING_SAMPLE, keys.HOLDOUT_SAMPLE).success
    result = warehouse.materialize(keys.MATCHED_REPLICATES, run_config={
        "ops": {"matched_replicates": {"config": {"replicates": 2, "part_persons": part}}}})
    assert result.success
    # the training sample's households alone, the records a release reads of its replicates
    training = warehouse.load(keys.TRAINING_SAMPLE)
    assert 0 < len(training) < len(persons)
    fused = persons.loc[persons["household_id"].isin(training["household_id"])].reset_index(drop=True)
    replicates = warehouse.load(keys.MATCHED_REPLICATES)
    for r in (1, 2):
        one = replicates[replicates["replicate"] == r].reset_index(drop=True)
        pd.testing.assert_frame_equal(one[list(persons.columns)], fused)
    assert result.asset_materializations_for_node("matched_replicates")[0].metadata[
        "recipient_households"].value == training["household_id"].nunique()


def _model() -> ModelFile:
    """The model as the gate takes it: a handle whose training log comes from the file's header."""
    return ModelFile(None, lambda: pytest.fail("the gate loaded the model"),
                     lambda: {"params": {}, "epochs": None, "card": {"family": "cart"}})


def _gate(warehouse: Warehouse, fictitious: pd.DataFrame, report: dict, folder: Path) -> None:
    public = build_public_dataset(warehouse.catalog)  # unbound: its resources come with the context
    origin = SourceFile("register", RELEASE_WAVE, "register.parquet", "0" * 64, "run")
    context = dg.build_asset_context(partition_key=RELEASE_WAVE, instance=warehouse.instance,
                                     resources={"project": warehouse.defs.resources["project"]})

    def stored(name: str, frame: pd.DataFrame) -> ParquetTable:  # the gate takes its tables as the files
        write_rows(frame, folder / f"{name}.parquet")
        return ParquetTable(folder / f"{name}.parquet")

    linked = {keys.name(keys.linked(s)): stored(s, pd.DataFrame({"replicate": [1], "person_id": [1]}))
              for s, source in warehouse.catalog.surveys.items() if source.records is not None}
    public(context, fictitious=stored("fictitious", fictitious), report=report,
           matching=MatchingReport("<html>", {"register": origin}), model=_model(), **linked)


def test_a_cart_population_model_never_asks_for_torch(warehouse: Warehouse, monkeypatch):
    """Neither CART's households nor its members train with torch: it is not imported for them
    (about 160 MB of every such step's peak), nor its threads or device asked for."""
    from synth_assets.defs.resources import ComputeResource

    def refuse(self, *args, **kwargs):
        raise AssertionError("torch asked for by a CART model")

    monkeypatch.setattr(ComputeResource, "configure_torch", refuse)
    monkeypatch.setattr(ComputeResource, "use_gpu", refuse)
    config = {"ops": {"population_model": {"config": {"family": "cart"}}}}
    for survey in warehouse.catalog.surveys:
        if not warehouse.instance.get_latest_materialization_event(keys.donor(survey)):
            assert warehouse.materialize(keys.donor(survey)).success
    result = warehouse.materialize(keys.MATCHED_DATASET, keys.MATCHING_REPORT, keys.TRAINING_SAMPLE, keys.HOLDOUT_SAMPLE,
                                   keys.POPULATION_MODEL, run_config=config)
    assert result.success, [e.event_specific_data.error.message for e in result.all_events if e.is_step_failure]
    model = warehouse.load(keys.POPULATION_MODEL)
    assert model.training_log["card"]["device"] == "cpu"
    # its trees fitted on the compute resource's threads (default -1: every core the step may use)
    assert [m.n_jobs for m in model.fitted_models] == [available_cores()] * 2
    # a torch family still asks (the refusal is the patched method's)
    neural = warehouse.materialize(keys.POPULATION_MODEL, run_config={
        "ops": {"population_model": {"config": {"family": "neural", "epochs": 1}}}})
    assert not neural.success
    errors = [str(e.event_specific_data.error.to_string()) for e in neural.all_events if e.is_step_failure]
    assert any("torch asked for" in error for error in errors), errors


def test_the_model_takes_the_compute_resource_s_threads_unless_its_params_say():
    from synth_assets.defs.resources import ComputeResource
    from synth_assets.defs.synthesis.assets import ModelConfig, _with_threads

    compute = ComputeResource(threads=3)
    assert _with_threads(ModelConfig(family="cart", params={"min_leaf": 20}), compute) == {"n_jobs": 3, "min_leaf": 20}
    assert _with_threads(ModelConfig(family="cart", params={"n_jobs": 1}), compute) == {"n_jobs": 1}
    # a network's households with CART's members: CART takes it
    assert _with_threads(ModelConfig(family="neural", person_family="cart"), compute) == {"n_jobs": 3}
    assert _with_threads(ModelConfig(family="neural"), compute) == {}
    assert _with_threads(ModelConfig(family="cart"), ComputeResource()) == {"n_jobs": available_cores()}
    with pytest.raises(ValueError, match="got 0"):
        ComputeResource(threads=0)


def test_the_gate_refuses_data_whose_checks_never_ran(warehouse: Warehouse, tmp_path: Path):
    fictitious = pd.DataFrame({"age": [30, 40]})
    report = {JUDGED_HASH: dataframe_sha256(fictitious), "passed": True, "report_dir": str(warehouse.root)}
    with pytest.raises(dg.Failure) as refused:
        _gate(warehouse, fictitious, report, tmp_path)
    assert "check no_real_record_copied: never evaluated" in str(refused.value.description)
    assert not (warehouse.root / "public").exists()


def test_the_gate_refuses_data_the_report_did_not_judge(warehouse: Warehouse, tmp_path: Path):
    fictitious = pd.DataFrame({"age": [30, 40]})
    report = {JUDGED_HASH: "another", "passed": True, "report_dir": str(warehouse.root)}
    with pytest.raises(dg.Failure) as refused:
        _gate(warehouse, fictitious, report, tmp_path)
    assert "validation_report[2024] judged fictitious_dataset sha256 another" in str(refused.value.description)
    assert not (warehouse.root / "public").exists()


def test_the_training_sample_is_capped_at_max_training_persons(warehouse: Warehouse):
    """Beyond ``split.max_training_persons`` the model learns from a random sample of whole households
    (its fit and every replicate's refit then cost the same for any population); the holdout stays."""
    for survey in warehouse.catalog.surveys:
        if not warehouse.instance.get_latest_materialization_event(keys.donor(survey)):
            assert warehouse.materialize(keys.donor(survey)).success
    household = warehouse.catalog.register.household_id_column
    split = [keys.MATCHED_DATASET, keys.MATCHING_REPORT, keys.TRAINING_SAMPLE, keys.HOLDOUT_SAMPLE]
    assert warehouse.materialize(*split).success
    full, holdout = warehouse.load(keys.TRAINING_SAMPLE), warehouse.load(keys.HOLDOUT_SAMPLE)
    cap = 1_000  # the least allowed: about 40% of the demo's training persons
    capped_run = warehouse.materialize(*split[2:], run_config={
        "ops": {"split_matched_dataset": {"config": {"max_training_persons": cap}}}})
    assert capped_run.success
    capped = warehouse.load(keys.TRAINING_SAMPLE)
    assert cap - 10 <= len(capped) <= cap
    assert set(capped[household]) < set(full[household])
    sizes = full.groupby(household).size()
    assert (capped.groupby(household).size() == sizes.loc[capped[household].unique()]).all()  # whole households
    pd.testing.assert_frame_equal(warehouse.load(keys.HOLDOUT_SAMPLE), holdout)
    # stratified by the structure the release is calibrated on: its rare structures are taken whole
    structure = next(list(m.variables) for m in warehouse.catalog.calibration_margins() if m.unit == "household")
    per_structure = full.drop_duplicates(household).groupby(structure, observed=True).size()
    rare = per_structure.loc[per_structure < TAKE_ALL_BELOW].index
    assert len(rare) and set(rare) <= set(capped.drop_duplicates(household).set_index(structure).index)
    matched = warehouse.load(keys.MATCHED_DATASET)
    expected, _ = split_masks(matched[household], 0.2, max_training_rows=cap,
                              strata=matched.groupby(structure, observed=True, dropna=False, sort=False).ngroup())
    assert set(capped[household]) == set(matched.loc[expected, household])  # not the unstratified sample
    meta = capped_run.asset_materializations_for_node("split_matched_dataset")[0].metadata
    assert meta["persons_in_neither_sample"].value == len(full) - len(capped)


def test_the_matching_diagnostics_read_a_seeded_sample_of_a_large_register():
    from synth_assets.defs.matching.assets import DIAGNOSED_RECORDS, _matching_page, diagnosed_rows

    assert diagnosed_rows(DIAGNOSED_RECORDS) is None  # up to the limit: every record
    rows = diagnosed_rows(3 * DIAGNOSED_RECORDS)
    assert rows is not None and len(rows) == DIAGNOSED_RECORDS == len(set(rows.tolist()))
    assert (rows[1:] > rows[:-1]).all() and rows.max() < 3 * DIAGNOSED_RECORDS  # in order, within the register
    assert (rows == diagnosed_rows(3 * DIAGNOSED_RECORDS)).all()  # seeded: the same report twice

    class Report:
        def to_markdown(self) -> str:
            return "bounds"

    assert f"sample of {DIAGNOSED_RECORDS:,} of the {3 * DIAGNOSED_RECORDS:,}" in _matching_page(
        Report(), 3 * DIAGNOSED_RECORDS, b"png")
    page = _matching_page(Report(), 1000, b"png")
    assert "All 1,000 matched records" in page
    # the plot the step drew once for its metadata, not drawn again
    assert f"base64,{base64.b64encode(b'png').decode()}'" in page
