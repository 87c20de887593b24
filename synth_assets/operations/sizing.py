"""How ``synth-assets run`` executes a run, from the size of the population it is given.

In one process (``--in-process``) a step's peak adds what the steps before it left behind: the
ingest runs alone left 0.56 GB resident at 300,000 persons and 0.85 GB at 1.2 million, and the
seventh pass measured 4.55 GB for ``population_model`` in one process at 1.2 million
(``bench/README.md``). A process per release step costs its start, 1-2 s forked from a server
holding the imports (about 40 steps): little beside a large population's run, a large share of a
small demo's (the 3,000-person release: 1 min 41 s against 33 s in one process).
"""

from __future__ import annotations

from pathlib import Path

from synth_assets.catalog import Catalog
from synth_assets.ingest import IngestError, delivered_rows, discover_waves

#: From this many register persons (its largest delivered wave), ``synth-assets run`` runs each
#: release step in a process of its own, population-sized steps one at a time, unless told otherwise.
STEP_PROCESSES_FROM_PERSONS = 500_000


def largest_register_wave(catalog: Catalog, incoming: Path | str) -> int | None:
    """Records in the largest delivered wave of the register (None: no wave, or one whose header
    does not say); read from the files' headers, or a CSV's lines, before any ingest."""
    source = catalog.sources[catalog.register_name]
    known = []
    for path in discover_waves(incoming, source).values():
        try:
            count = delivered_rows(path, source)
        except IngestError:  # unreadable: its ingest run names the file and refuses it, not this guess
            continue
        if count is not None:
            known.append(count)
    return max(known) if known else None
