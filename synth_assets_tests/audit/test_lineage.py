import json

import pandas as pd

from synth_assets.audit import AssetStep, CheckResult, Lineage, copy_test, verify_release_files, write_lineage


def _release(tmp_path, records):
    release = tmp_path / "2024-x"
    release.mkdir()
    records.to_parquet(release / "fictitious_population_r1.parquet", index=False)
    return release


def test_copy_test_strict_and_replicated_uniques(tmp_path):
    released = pd.DataFrame({"age": [8, 45, 30], "wage": [0.0, 1234.0, 10.0], "person_id": [1, 2, 3]})
    release = _release(tmp_path, released)
    register = pd.DataFrame({"age": [8, 8, 50], "wage": [0.0, 0.0, 99.0], "person_id": [1, 2, 3]})
    survey = pd.DataFrame({"age": [30], "wage": [10.0], "health": ["good"]})
    clean = copy_test(release, {"survey": survey.iloc[:0]}, {"register": register}, {"person_id"})
    assert clean["passed"]  # a shared child profile is not a disclosure
    assert clean["references"]["register"]["released records equal to one of its records"] == 1
    leaked = copy_test(release, {"survey": survey}, {"register": register.assign(age=[45, 8, 8], wage=[1234.0, 0, 0])},
                       {"person_id"})
    assert not leaked["passed"]
    assert leaked["references"]["survey"]["released records equal to one of its records"] == 1
    assert leaked["references"]["register"]["its unique records replicated"] == 1


def test_checksums_detect_a_file_altered_after_publication(tmp_path):
    release = _release(tmp_path, pd.DataFrame({"a": [1]}))
    from synth_assets.common.hashing import file_sha256

    card = {"checksums": {"fictitious_population_r1.parquet": file_sha256(release / "fictitious_population_r1.parquet")}}
    assert verify_release_files(release, card)["fictitious_population_r1.parquet"]["intact"]
    pd.DataFrame({"a": [2]}).to_parquet(release / "fictitious_population_r1.parquet")
    assert not verify_release_files(release, card)["fictitious_population_r1.parquet"]["intact"]


def test_write_lineage_json_and_html(tmp_path):
    lineage = Lineage(
        release="2024-x", release_path="/p", wave="2024", created_utc="2026-01-01T00:00:00+00:00",
        sources={"register": {"wave": "2024", "sha256_at_ingest": "ab" * 32}},
        steps=[AssetStep("population_model", "2024", "run-1", 0.0, "1", {"family": "cart"})],
        checks=[CheckResult("fictitious_dataset", "no_real_record_copied", "2024", True, "run-1")],
        model={"family": "cart"}, copy_test={"passed": True, "released_records": 3, "references": {}},
    )
    json_path, html_path = write_lineage(lineage, tmp_path / "out")
    assert json.loads(json_path.read_text())["steps"][0]["run_id"] == "run-1"
    page = html_path.read_text()
    assert "Lineage of release 2024-x" in page and "no_real_record_copied" in page and "PASSED" in page
