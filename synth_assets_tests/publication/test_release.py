import fcntl
import json
import threading
from datetime import UTC

import pandas as pd
import pyarrow as pa
import pytest

from synth_assets.common.hashing import file_sha256
from synth_assets.publication import latest_release, publish_release, release_id
from synth_assets.publication import release as release_module


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
    with pytest.raises(pa.ArrowException):
        _publish(public, tmp_path, release="2024-b", data=broken)
    assert sorted(p.name for p in public.iterdir() if p.name != ".lock") == ["2023-a", "LATEST"]
    assert latest_release(public) == first


def test_release_names_started_in_the_same_second_differ():
    from datetime import datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert release_id("2024", now) != release_id("2024", now)
    assert release_id("2024", now, unique="abcd1234") == "2024-20260101T000000Z-abcd1234"


def _publish_unnamed(public, reports, data):
    return publish_release(
        data, public_dir=public, wave="2024", report_dir=reports,
        provenance={}, model={"family": "cart"}, metrics={}, checks=[],
    )


def test_concurrent_releases_on_one_root_each_publish_their_own_files(tmp_path):
    public, reports = tmp_path / "public", tmp_path / "reports"
    reports.mkdir()
    inputs = [_fictitious(n=7).assign(age=lambda d, k=k: d["age"] + 100 * k) for k in range(4)]
    start = threading.Barrier(len(inputs))
    outcomes: list = [None] * len(inputs)

    def publish(i):
        start.wait()  # all at once, in the same second: the old names collided here
        try:
            outcomes[i] = _publish_unnamed(public, reports, inputs[i])
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            outcomes[i] = error

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    names = [card.release for _, card in outcomes]
    assert len(set(names)) == len(inputs)
    for data, (target, card) in zip(inputs, outcomes):
        saved = json.loads((target / "data_card.json").read_text())
        assert saved["release"] == card.release == target.name
        for r in (1, 2):
            name = f"fictitious_population_r{r}.parquet"
            assert saved["checksums"][name] == file_sha256(target / name)
            own = data[data["replicate"] == r].drop(columns="replicate").reset_index(drop=True)
            pd.testing.assert_frame_equal(pd.read_parquet(target / name), own)
    assert latest_release(public).name in names
    assert sorted(p.name for p in public.iterdir() if not p.name.startswith(".")) == sorted([*names, "LATEST"])


def test_release_is_written_and_promoted_under_the_public_lock(tmp_path, monkeypatch):
    public = tmp_path / "public"
    probes = []
    original = release_module.file_sha256

    def probing_sha256(path):
        # Another process trying the lock while the release is being written must be refused.
        with open(public / ".lock", "a") as other:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(other, fcntl.LOCK_UN)
                probes.append("free")
            except BlockingIOError:
                probes.append("held")
        return original(path)

    monkeypatch.setattr(release_module, "file_sha256", probing_sha256)
    _publish(public, tmp_path)
    assert probes and set(probes) == {"held"}


def test_report_that_changed_since_it_was_written_is_not_published(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "report.html").write_text("<html>judged</html>")
    recorded = file_sha256(reports / "report.html")
    (reports / "report.html").write_text("<html>swapped</html>")
    with pytest.raises(ValueError, match="differs from"):
        publish_release(
            _fictitious(), public_dir=tmp_path / "public", wave="2024", report_dir=reports, provenance={},
            model={}, metrics={}, checks=[], report_checksums={"report.html": recorded},
        )
    assert latest_release(tmp_path / "public") is None
    assert [p.name for p in (tmp_path / "public").iterdir()] == [".lock"]
