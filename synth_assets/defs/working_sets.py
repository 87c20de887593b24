"""What a step holds in memory, as an op tag, so that a run's memory is bounded on one machine.

A release step whose working set grows with the register's population (it reads or writes
the matched dataset, the release or the tables linked to it) carries ``population``; a region
step ``region`` (its region's share of the candidates); the others (surveys, donors, the fan-out,
the gate's threshold check) hold little whatever the population and carry no tag.

The local executor runs at most one ``population`` step at a time (:data:`LOCAL_LIMITS`, Dagster's
``tag_concurrency_limits``): two of them side by side need the sum of their peaks (at 1.2 million
persons the CART fit, 3.1 GiB of its own, beside the matched dataset's check, 0.8 GiB, is more than
4 GB), while the small steps still run beside them. Region steps run side by side, as the issue of
parallel regions asks: each holds its own region. On Kubernetes each step is a pod sized for itself
(``deploy/kubernetes/executor.yaml``), so no limit is set there.
"""

from __future__ import annotations

from typing import Any

#: The op tag's key (Dagster's convention: a namespace, then the name).
WORKING_SET = "synth_assets/working_set"
#: A step holding data in proportion to the register's persons.
POPULATION: dict[str, str] = {WORKING_SET: "population"}
#: A region step: data in proportion to its region's persons.
REGION: dict[str, str] = {WORKING_SET: "region"}
#: The multiprocess executor's ``tag_concurrency_limits``: one population-sized step at a time.
LOCAL_LIMITS: list[dict[str, Any]] = [{"key": WORKING_SET, "value": POPULATION[WORKING_SET], "limit": 1}]

