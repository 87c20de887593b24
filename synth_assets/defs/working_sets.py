"""What a step holds in memory, as an op tag, so that a run's memory is bounded on one machine.

A release step whose working set grows with the register's population (it holds the matched
dataset, a replicate's columns or every record's hash) carries ``population``; a step that reads or
writes population-sized tables a row group or a block of persons at a time, and holds only counts,
a survey's records or one block besides, carries ``streamed``; a region step ``region`` (its
region's share of the candidates); the others (surveys, donors, the fan-out, the gate's threshold
check) hold little whatever the population and carry no tag.

The local executor runs at most one ``population`` step at a time (:data:`LOCAL_LIMITS`, Dagster's
``tag_concurrency_limits``): two population steps side by side need the sum of their peaks (at 1.2
million persons the CART fit, 3.1 GiB of its own, beside the matched dataset's check, 0.8 GiB, is
more than 4 GB), while a streamed step adds at most its row groups to the one beside it (at 2
million persons the largest, ``linked_tus``, peaked at 0.9 GiB of its own, 0.3 of them the imports
every step shares, beside population checks of 2.5 GiB: bench/README.md, "Twenty-second pass"). Two
streamed steps side by side (the two linked tables, their checks) hold less than that; they were held
to one at a time until the twenty-sixth pass, which left a core idle while ``linked_mobility`` (54% of
two cores) ran alone at 1.2 million persons. A step whose forked children each hold a batch (the release's Great
Expectations check: about 0.5 GB a child) is a population step. The release's checks that read whole
households or persons a row group at a time (``ParquetTable.whole_parts``: the register's margins,
the household variables, the top-coding, the linked aggregates) are streamed since the twenty-eighth
pass: at 2 million persons each held 0.4-0.6 GiB of its own where they had held 1.8-2.9 GiB (a
replicate read whole); the copy filters, which hold every real record's hash, stay a population
step. The small steps run
beside both. Region steps run side by side, as the issue of parallel regions asks: each holds its
own region. On Kubernetes each step is a pod sized for itself (``deploy/kubernetes/executor.yaml``),
so no limit is set there.
"""

from __future__ import annotations

from typing import Any

from synth_assets.common.parallel import available_cores, resolved_jobs

#: The op tag's key (Dagster's convention: a namespace, then the name).
WORKING_SET = "synth_assets/working_set"
#: A step holding data in proportion to the register's persons.
POPULATION: dict[str, str] = {WORKING_SET: "population"}
#: A step reading or writing population-sized tables a row group (or a block of persons) at a time.
STREAMED: dict[str, str] = {WORKING_SET: "streamed"}
#: A region step: data in proportion to its region's persons.
REGION: dict[str, str] = {WORKING_SET: "region"}
#: The multiprocess executor's ``tag_concurrency_limits``: one population-sized step at a time (the
#: executor's ``max_concurrent`` bounds the rest).
LOCAL_LIMITS: list[dict[str, Any]] = [{"key": WORKING_SET, "value": POPULATION[WORKING_SET], "limit": 1}]


#: From this many register persons, a step whose pieces could run in forked children (the region
#: step's replicates) runs them one at a time unless ``compute.processes`` says otherwise: two
#: replicates side by side add a replicate's working set (a chunk of candidates, the selection) and
#: the pages the children write, which at 1.2 million persons takes the run past the 4 GB it keeps
#: to (bench/README.md, "Eighteenth pass"). Below it, every core the step may use.
FORK_BELOW_PERSONS = 500_000

#: The same for the matched replicates' fusions, whose child holds less per register person (the
#: register's matching columns, one survey's recipients at a time): about 1.2 KB against a region
#: replicate's 2.5. At 1.2 million persons the step with two children side by side peaked at 3,168
#: MiB PSS (bench/README.md, "Twentieth pass"); from here on, one at a time keeps a run under 4 GB.
MATCHING_FORK_BELOW_PERSONS = 1_300_000


def child_processes(setting: int | None, persons: int, pieces: int, fork_below: int = FORK_BELOW_PERSONS) -> int:
    """How many children a population-sized step forks for ``pieces`` independent pieces: the compute
    resource's ``processes`` when set (``n_jobs`` convention), else every core below ``fork_below``
    register persons and none (one at a time, here) from there."""
    wanted = resolved_jobs(setting) if setting is not None else (
        available_cores() if persons < fork_below else 1)
    return max(1, min(wanted, pieces))


def chunk_processes(setting: int | None, replicate_processes: int) -> int:
    """How many children draw and enforce a replicate's chunks of candidates (their members, rules, copy
    filters) while the step begins the next: the compute resource's ``processes`` when set, else every core, when
    the replicates are drawn one at a time in the step's process; none when they run in children of
    their own (which then hold the cores). A child holds one chunk's working set (``chunk_persons``
    persons, whatever the population), so unlike a replicate's it does not grow with the register."""
    return 1 if replicate_processes > 1 else piece_processes(setting)


def piece_processes(setting: int | None) -> int:
    """How many children a step forks for pieces whose working set is bounded whatever the population
    (a chunk of candidates, a batch of the release's rows validated by Great Expectations): the
    compute resource's ``processes`` when set, else every core."""
    return resolved_jobs(setting) if setting is not None else available_cores()
