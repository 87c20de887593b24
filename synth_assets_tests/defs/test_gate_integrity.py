"""The gate publishes only the bytes its checks judged: a release, then attempts to slip
other data past it (a fresh draw never validated, training rows written over the table)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from synth_assets.common.hashing import dataframe_sha256, file_sha256
from synth_assets.common.layout import DataLayout
from synth_assets.defs.definitions import build_definitions
from synth_assets_tests.defs.conftest import FAST_RELEASE, Prepared

pytestmark = pytest.mark.slow

FICTITIOUS = FAST_RELEASE["ops"]["fictitious_dataset"]["config"]


@dataclass
class Released:
    root: Path
    layout: DataLayout
    defs: dg.Definitions
    instance: dg.DagsterInstance
    wave: str
    release: Path
    origin: Path  # the prepared data root this one was copied from

    @property
    def table(self) -> Path:
        return self.root / "warehouse" / "fictitious_dataset" / f"{self.wave}.parquet"

    def moved(self, recorded: Path) -> Path:
        """A path the prepared release's runs recorded (under ``origin``), in this copy."""
        return self.root / recorded.relative_to(self.origin) if recorded.is_relative_to(self.origin) else recorded

    def materialise(self, *assets: str, run_config: dict | None = None) -> dg.ExecuteInProcessResult:
        """Some assets alone (with their checks), on what earlier runs stored."""
        job = self.defs.resolve_implicit_global_asset_job_def()
        return job.execute_in_process(
            instance=self.instance, partition_key=self.wave, raise_on_error=False,
            asset_selection=[dg.AssetKey(a) for a in assets], run_config=run_config or {},
        )


@pytest.fixture(scope="module")
def released(tmp_path_factory, prepared_release: Prepared):
    """A copy of the prepared release (FAST_RELEASE), which this module's tests change in turn."""
    copy = prepared_release.copy_to(tmp_path_factory.mktemp("integrity"))
    release = copy.release
    with copy.instance() as instance:
        yield Released(copy.root, DataLayout(copy.root), build_definitions(copy.root), instance,
                       release.name.split("-")[0], release, prepared_release.root)


def public_snapshot(root: Path) -> dict[str, str]:
    """Every file under data/public with its sha256 (the lock file holds nothing)."""
    public = root / "public"
    return {str(p.relative_to(public)): file_sha256(p) for p in sorted(public.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    messages = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error is not None:
                messages.append(error.message)
                error = error.cause
    return "\n".join(messages)


def card(release: Path) -> dict:
    return json.loads((release / "data_card.json").read_text())


def test_release_card_records_the_hash_every_check_judged(released: Released) -> None:
    published = card(released.release)
    on_disk = dataframe_sha256(pd.read_parquet(released.table))
    assert published["validation"]["fictitious_sha256"] == on_disk
    report = json.loads((released.root / "warehouse" / "validation_report" / f"{released.wave}.json").read_text())
    assert report["fictitious_sha256"] == on_disk and report["passed"] is True
    # the published replicates are the judged table, split by replicate
    table = pd.read_parquet(released.table)
    first = pd.read_parquet(released.release / "fictitious_population_r1.parquet")
    pd.testing.assert_frame_equal(
        first, table[table["replicate"] == 1].drop(columns="replicate").reset_index(drop=True))


def test_a_fresh_draw_is_not_published_on_the_old_validation(released: Released) -> None:
    before = public_snapshot(released.root)
    judged = card(released.release)["validation"]["fictitious_sha256"]
    # A draw that passes its own checks. On this 1,200-household population one draw in six
    # (seed 7: household structure TVD 0.0111 > 0.01) is rightly refused by calibrated_to_register.
    redraw = released.materialise(
        "fictitious_dataset", run_config={"ops": {"fictitious_dataset": {"config": {**FICTITIOUS, "seed": 8}}}})
    assert redraw.success, failure_text(redraw)  # the new draw passes its own checks
    fresh = dataframe_sha256(pd.read_parquet(released.table))
    assert fresh != judged

    refused = released.materialise("public_dataset")
    assert not refused.success
    message = failure_text(refused)
    assert "publication refused" in message
    assert f"validation_report[{released.wave}] judged fictitious_dataset sha256 {judged}" in message
    assert f"not the one received ({fresh})" in message
    assert "thresholds_pass judged" in message
    # the fictitious checks ran on the new draw, so they are not what stops it
    assert "no_real_record_copied judged" not in message
    assert public_snapshot(released.root) == before


def test_training_rows_written_over_the_table_are_not_published(released: Released) -> None:
    before = public_snapshot(released.root)
    original = released.table.read_bytes()
    fictitious = pd.read_parquet(released.table)
    training = pd.read_parquet(released.root / "warehouse" / "training_sample" / f"{released.wave}.parquet")
    # real people, dressed as a replicate of the fictitious table
    forged = training.assign(replicate=1, calibration_weight=1.0)[list(fictitious.columns)]
    forged.to_parquet(released.table, index=False)
    try:
        refused = released.materialise("public_dataset")
    finally:
        released.table.write_bytes(original)
    assert not refused.success
    message = failure_text(refused)
    received = dataframe_sha256(forged)
    for check in ("no_real_record_copied", "rules_and_categories_hold", "calibrated_to_register", "thresholds_pass"):
        assert f"check {check} judged fictitious_dataset sha256" in message and check in message
    assert f"not the one received ({received})" in message
    assert public_snapshot(released.root) == before


def test_a_real_diary_day_written_into_the_linked_table_is_not_published(released: Released) -> None:
    before = public_snapshot(released.root)
    table = released.root / "warehouse" / "linked_tus" / f"{released.wave}.parquet"
    original = table.read_bytes()
    linked = pd.read_parquet(table)
    real = pd.read_parquet(released.root / "warehouse" / "survey_records_tus" / f"{released.wave}.parquet")
    first = real.loc[real["record_id"] > 0].iloc[0]
    day = real.loc[(real["person_id"] == first["person_id"]) & (real["day_id"] == first["day_id"])]
    person = linked.loc[linked["replicate"] == 1].iloc[0]
    pasted = day.assign(replicate=1, person_id=person["person_id"], household_id=person["household_id"], day_id=9)
    forged = pd.concat([linked, pasted[list(linked.columns)]], ignore_index=True)
    forged.to_parquet(table, index=False)
    try:
        refused = released.materialise("public_dataset")
    finally:
        table.write_bytes(original)
    assert not refused.success
    message = failure_text(refused)
    assert f"linked_tus[{released.wave}] check no_real_day_copied judged linked_tus sha256" in message
    assert f"not the one received ({dataframe_sha256(forged)})" in message
    assert public_snapshot(released.root) == before


def publication_metadata(released: Released) -> dict:
    from synth_assets.dagster_api import latest_materialization

    latest = latest_materialization(released.instance, dg.AssetKey("public_dataset"), released.wave)
    assert latest is not None
    return latest.metadata


def folder_snapshot(folder: Path) -> dict[str, str]:
    return {p.name: file_sha256(p) for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_refused_run_leaves_the_release_and_the_report_it_links_alone(released: Released) -> None:
    import yaml

    from synth_assets.operations.runner import latest_report

    published = card(released.release)
    # the public card names no internal path: the report it copies is in the asset's metadata
    assert "report" not in published["validation"] and str(released.origin) not in json.dumps(published)  # its root
    linked = released.moved(Path(publication_metadata(released)["report"]).parent)
    # the release holds a copy of the very report it links
    assert file_sha256(released.release / "report.html") == file_sha256(linked / "report.html")
    assert published["checksums"]["metrics.json"] == file_sha256(linked / "metrics.json")
    before_public, before_linked = public_snapshot(released.root), folder_snapshot(linked)

    catalog_file = released.root / "catalog.yaml"
    original = catalog_file.read_text()
    raw = yaml.safe_load(original)
    raw["release"].setdefault("thresholds", {})["kmarginal_3"] = 1000.5  # unreachable: the run is refused
    catalog_file.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False))
    try:
        strict = build_definitions(released.root).resolve_implicit_global_asset_job_def()
        refused = strict.execute_in_process(
            instance=released.instance, partition_key=released.wave, raise_on_error=False,
            asset_selection=[dg.AssetKey("validation_report"), dg.AssetKey("public_dataset")],
        )
    finally:
        catalog_file.write_text(original)
    assert not refused.success
    verdict = next(e for e in refused.get_asset_check_evaluations() if e.check_name == "thresholds_pass")
    assert not verdict.passed and "kmarginal_3" in verdict.description
    own = latest_report(released.instance, released.wave, refused.run_id)
    assert own is not None and own.parent != linked and own.parent.parent == linked.parent
    assert json.loads((own.parent / "metrics.json").read_text())["passed"] is False
    assert folder_snapshot(linked) == before_linked
    assert public_snapshot(released.root) == before_public


def test_a_fresh_validation_publishes_the_new_draw_beside_the_old_release(released: Released) -> None:
    before = public_snapshot(released.root)
    # the linked tables follow the new persons (the old ones' are refused beside them)
    result = released.materialise("linked_tus", "linked_mobility", "validation_report", "public_dataset")
    assert result.success, failure_text(result)
    current = dataframe_sha256(pd.read_parquet(released.table))
    newest = (released.root / "public" / (released.root / "public" / "LATEST").read_text().strip())
    assert newest != released.release
    assert card(newest)["validation"]["fictitious_sha256"] == current
    assert Path(publication_metadata(released)["report"]).parent.name == result.run_id
    # the gate says what it does before its silent work (the hashes, the files), not only once it is done
    said = [record.user_message for record in released.instance.all_logs(result.run_id)
            if record.step_key == "public_dataset" and record.user_message.startswith(("the gate:", "published release"))]
    assert len(said) == 3 and said[1].startswith("the gate: every judgement") and said[2].startswith("published"), said
    assert f"the gate: hashing the release ({pd.read_parquet(released.table).shape[0]:,} records)" in said[0]
    assert "tus records" in said[0] and "mobility records" in said[0]
    # the earlier release is untouched: only the new folder and the pointer changed
    after = public_snapshot(released.root)
    assert {k: v for k, v in after.items() if k.startswith(released.release.name)} == \
        {k: v for k, v in before.items() if k.startswith(released.release.name)}


def test_a_value_outside_its_category_set_in_one_replicate_fails_the_suite_naming_column_and_value(
        released: Released) -> None:
    """The suite reads the release by row groups (in batches), not all replicates at once: a
    value forged into replicate 2 alone still fails it, named with its column and value."""
    from synth_assets.catalog import load_catalog
    from synth_assets.catalog.expectations import fictitious_suite_spec
    from synth_assets.common.frames import write_rows

    original = released.table.read_bytes()
    fictitious = pd.read_parquet(released.table)
    spec = fictitious_suite_spec(load_catalog(released.root / "catalog.yaml"), fictitious)
    column = next(c for c in spec["categories"] if c in fictitious.columns)
    forged = fictitious.copy()
    row = forged.index[forged["replicate"] == 2][5]
    if isinstance(forged[column].dtype, pd.CategoricalDtype):
        forged[column] = forged[column].cat.add_categories(["forged"])
    else:
        forged[column] = forged[column].astype(object)
    forged.loc[row, column] = "forged"
    write_rows(forged, released.table, row_group_rows=500)  # many row groups
    key = dg.AssetCheckKey(dg.AssetKey("fictitious_dataset"), "rules_and_categories_hold")
    # the check alone, on the table as stored (a job of that check; its partition as a run tag)
    partitions = released.defs.resolve_asset_graph().get(key.asset_key).partitions_def
    suite = dg.define_asset_job("suite_only", selection=dg.AssetSelection.checks(key), partitions_def=partitions)
    job = dg.Definitions.merge(released.defs, dg.Definitions(jobs=[suite])).resolve_job_def("suite_only")
    try:
        result = job.execute_in_process(instance=released.instance, tags={"dagster/partition": released.wave},
                                        raise_on_error=False)
    finally:
        released.table.write_bytes(original)
    verdict = next(e for e in result.get_asset_check_evaluations() if e.check_name == key.name)
    assert not verdict.passed
    assert f"expect_column_values_to_be_in_set failed on column '{column}': 1 unexpected values (e.g. forged)" \
        in verdict.description
    assert verdict.metadata["table"].value == str(released.table)  # the file judged
