import json

import pandas as pd
import pytest

from synth_assets.publication import latest_release, publish_release
from synth_assets.storage import file_sha256


def _fictitious(m=2, n=5):
    return pd.concat(
        [pd.DataFrame({"age": range(n), "sex": ["f"] * n}).assign(replicate=r) for r in range(1, m + 1)],
        ignore_index=True,
    )


def _publish(public, reports, release="2024-a", data=None):
    return publish_release(
        data if data is not None else _fictitious(),
        public_dir=public, wave="2024", report_dir=reports, release=release,
        provenance={"register": {"wave": "2024", "sha256": "ab" * 32}},
        model={"family": "cart"},
        metrics={"kmarginal_3": 900.0},
        checks=[{"name": "dcr_share", "metric": "dcr_share", "value": 0.5, "threshold": 0.6, "passed": True}],
    )


def test_release_has_replicates_card_and_checksums(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "report.html").write_text("<html></html>")
    (reports / "metrics.json").write_text("{}")
    target, card = _publish(tmp_path / "public", reports)
    names = sorted(p.name for p in target.iterdir())
    assert names == ["data_card.json", "data_card.md", "fictitious_population_r1.parquet",
                     "fictitious_population_r2.parquet", "metrics.json", "report.html"]
    first = pd.read_parquet(target / "fictitious_population_r1.parquet")
    assert "replicate" not in first.columns and len(first) == 5
    saved = json.loads((target / "data_card.json").read_text())
    assert saved["checksums"]["fictitious_population_r2.parquet"] == file_sha256(target / "fictitious_population_r2.parquet")
    assert saved["replicates"] == 2 and saved["provenance"]["register"]["wave"] == "2024"
    assert "none describes a real person" in (target / "data_card.md").read_text()
    assert latest_release(tmp_path / "public") == target


def test_existing_release_is_never_overwritten(tmp_path):
    public = tmp_path / "public"
    target, _ = _publish(public, tmp_path)
    before = file_sha256(target / "fictitious_population_r1.parquet")
    with pytest.raises(FileExistsError):
        _publish(public, tmp_path, data=_fictitious(n=9))
    assert file_sha256(target / "fictitious_population_r1.parquet") == before


def test_failed_write_leaves_previous_release_and_pointer(tmp_path):
    public = tmp_path / "public"
    first, _ = _publish(public, tmp_path, release="2023-a")
    broken = _fictitious().assign(age=[object()] * 10)  # cannot be written as Parquet
    with pytest.raises(Exception):
        _publish(public, tmp_path, release="2024-b", data=broken)
    assert sorted(p.name for p in public.iterdir()) == ["2023-a", "LATEST"]
    assert latest_release(public) == first
