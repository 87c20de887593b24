"""Wave partitions: one dynamic partition set per source, since calendars differ.

A survey's waves are added when its files arrive (the sensor, or ``make run``), so a
survey that skips a year has no partition for it. Release assets are partitioned by the
register's waves: the release for wave W uses, per survey, the latest wave at or before W.
"""

from __future__ import annotations

import dagster as dg


def wave_partitions(source_name: str) -> dg.DynamicPartitionsDefinition:
    return dg.DynamicPartitionsDefinition(name=f"{source_name}_waves")


def latest_wave_at_or_before(waves: list[str], release_wave: str) -> str | None:
    """Waves are keys such as '2023'; compare as numbers when they are numbers."""

    def order(key: str):
        return (0, int(key)) if key.isdigit() else (1, key)

    eligible = [w for w in waves if order(w) <= order(release_wave)]
    return max(eligible, key=order) if eligible else None
