"""The region step's replicates side by side in forked processes (``ComputeResource.processes``):
the same release as one process makes, the children's progress in the step's log."""

from __future__ import annotations

import dagster as dg

from synth_assets.common.frames import ParquetTable
from synth_assets.common.layout import DataLayout
from synth_assets_tests.defs.conftest import FAST_RELEASE, Prepared

WAVE = "2024"


def _draw_release(prepared: Prepared, processes: int, **fictitious: int) -> tuple[str, list[str]]:
    """``fictitious_dataset`` (its steps, not its checks) drawn again with ``processes`` (and the step's
    ``fictitious`` settings): the release's hash and the run's log messages."""
    from synth_assets.defs.automation.jobs import RELEASE_JOB
    from synth_assets.defs.definitions import build_definitions

    defs = build_definitions(prepared.root)
    job = defs.resolve_job_def(RELEASE_JOB).get_subset(
        asset_selection={dg.AssetKey("fictitious_dataset")}, asset_check_selection=set())
    with prepared.instance() as instance:
        result = job.execute_in_process(
            instance=instance, partition_key=WAVE,
            run_config={"ops": {"fictitious_dataset": {"config": {
                            **FAST_RELEASE["ops"]["fictitious_dataset"]["config"], **fictitious}}},
                        "resources": {"compute": {"config": {"processes": processes}}}})
        assert result.success
        messages = [e.user_message for e in instance.all_logs(result.run_id) if e.user_message]
    table = ParquetTable(DataLayout(prepared.root).warehouse / "fictitious_dataset" / f"{WAVE}.parquet")
    return table.sha256(), messages


def test_replicates_drawn_in_child_processes_are_the_release_one_process_draws(release_copy: Prepared):
    one, one_log = _draw_release(release_copy, 1)
    two, two_log = _draw_release(release_copy, 2)
    assert two == one  # every value of both replicates, row for row
    assert any("2 replicates, 2 at a time in processes of their own" in m for m in two_log)
    assert not any("at a time in processes" in m for m in one_log)
    # each child's calibration lines reach the step's log (an instance that manages no Python logger
    # too, as this test's): relayed to the parent, which logs them through its context
    chosen = sorted(m for m in two_log if m.startswith("calibration:") and "households chosen" in m)
    assert len(chosen) == 2 and chosen == sorted(m for m in one_log if m.startswith("calibration:")
                                                 and "households chosen" in m)
    for i in (1, 2):
        assert any(f"replicate {i} of 2:" in m and "calibrated" in m for m in two_log)
        # each child's own peak, beside the step's (which does not count the children)
        assert any(m.startswith(f"replicate {i}: its process's peak resident memory") for m in two_log)
    assert not any("its process's peak" in m for m in one_log)


def test_chunks_enforced_in_child_processes_make_the_release_one_process_makes(release_copy: Prepared):
    """One replicate, drawn in the step's process a chunk at a time, each chunk's rules and copy
    filters in a child while the next chunk is drawn: the same release as without children."""
    small_chunks = {"replicates": 1, "chunk_persons": 1000}  # the demo's surplus in several chunks
    one, one_log = _draw_release(release_copy, 1, **small_chunks)
    two, two_log = _draw_release(release_copy, 2, **small_chunks)
    assert two == one
    assert not any("at a time in processes" in m for m in two_log)  # one replicate: drawn here
    # the children's enforcement lines, relayed to the step's log (one process logs them to Python's
    # logger, which no instance setting manages here)
    redrawn = [m for m in two_log if m.startswith("redrew ") and "generated households" in m]
    assert len(redrawn) >= 3 and not any(m.startswith("redrew ") for m in one_log)


def test_unset_the_step_forks_on_every_core_for_a_city_district_and_not_for_a_city(monkeypatch):
    from synth_assets.common import parallel
    from synth_assets.defs import working_sets

    monkeypatch.setattr(working_sets, "available_cores", lambda: 4)
    monkeypatch.setattr(parallel, "available_cores", lambda: 4)
    small, large = working_sets.FORK_BELOW_PERSONS - 1, working_sets.FORK_BELOW_PERSONS
    assert working_sets.child_processes(None, small, pieces=5) == 4
    assert working_sets.child_processes(None, small, pieces=2) == 2  # never more children than pieces
    assert working_sets.child_processes(None, large, pieces=5) == 1
    # set, the resource's choice whatever the size (a machine with memory to spare)
    assert working_sets.child_processes(2, large, pieces=5) == 2
    assert working_sets.child_processes(-1, large, pieces=5) == 4
    assert working_sets.child_processes(1, small, pieces=5) == 1
    # the matched replicates' fusions: a smaller child, so side by side up to a larger register
    assert working_sets.child_processes(None, large, pieces=2, fork_below=working_sets.MATCHING_FORK_BELOW_PERSONS) == 2
    assert working_sets.child_processes(None, working_sets.MATCHING_FORK_BELOW_PERSONS, pieces=2,
                                        fork_below=working_sets.MATCHING_FORK_BELOW_PERSONS) == 1
    # a replicate's chunks: enforced in a child per core when the replicates are drawn one at a time
    assert working_sets.chunk_processes(None, replicate_processes=1) == 4
    assert working_sets.chunk_processes(2, replicate_processes=1) == 2
    assert working_sets.chunk_processes(1, replicate_processes=1) == 1
    assert working_sets.chunk_processes(None, replicate_processes=4) == 1  # the replicates' children hold the cores


def test_a_network_s_replicates_drawn_in_child_processes(release_copy: Prepared):
    """The networks' replicates (fine-tuned, torch) drawn in forked children: torch's thread pool
    does not survive a fork, so the children run it on one thread (``forked_imap``)."""
    from synth_assets.defs.automation.jobs import RELEASE_JOB
    from synth_assets.defs.definitions import build_definitions

    defs = build_definitions(release_copy.root)
    job = defs.resolve_job_def(RELEASE_JOB).get_subset(
        asset_selection={dg.AssetKey("population_model"), dg.AssetKey("fictitious_dataset")},
        asset_check_selection=set())
    with release_copy.instance() as instance:
        result = job.execute_in_process(
            instance=instance, partition_key=WAVE, raise_on_error=False,
            run_config={"ops": {"population_model": {"config": {"family": "neural", "epochs": 1, "seed": 0}},
                                "fictitious_dataset": FAST_RELEASE["ops"]["fictitious_dataset"]},
                        "resources": {"compute": {"config": {"processes": 2}}}})
        assert result.success, [e.event_specific_data.error.to_string() for e in result.all_events
                                if e.is_step_failure]
        messages = [e.user_message for e in instance.all_logs(result.run_id) if e.user_message]
    assert any("2 replicates, 2 at a time in processes of their own" in m for m in messages)
    release = ParquetTable(DataLayout(release_copy.root).warehouse / "fictitious_dataset" / f"{WAVE}.parquet").read()
    assert sorted(release["replicate"].unique()) == [1, 2]
    for _, persons in release.groupby("replicate"):
        households = persons.groupby("household_id")
        assert (households.size() == households["household_size"].first()).all()
