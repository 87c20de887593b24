"""Wave partitions: one dynamic partition set per source, since calendars differ; defined once here.

A survey's waves are added when its files arrive (the sensor, or ``make run``), so a
survey that skips a year has no partition for it. Release assets are partitioned by the
register's waves: the release for wave W uses, per survey, the latest wave at or before W.
"""

from __future__ import annotations

import functools

import dagster as dg


def partitions_name(source_name: str) -> str:
    """The name of ``source_name``'s dynamic partition set (``<source>_waves``) on the instance."""
    return f"{source_name}_waves"


@functools.cache
def wave_partitions(source_name: str) -> dg.DynamicPartitionsDefinition:
    """The one partitions definition of ``source_name``'s waves (the same object on every call)."""
    return dg.DynamicPartitionsDefinition(name=partitions_name(source_name))


def wave_order(key: str) -> tuple[int, int | str]:
    """Waves are keys such as '2023'; compare as numbers when they are numbers."""
    return (0, int(key)) if key.isdigit() else (1, key)


def latest_wave_at_or_before(waves: list[str], release_wave: str) -> str | None:
    eligible = [w for w in waves if wave_order(w) <= wave_order(release_wave)]
    return max(eligible, key=wave_order) if eligible else None
