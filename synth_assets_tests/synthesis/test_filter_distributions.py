"""The disclosure filters leave the release's municipality and household-size distributions alone.

On a small demo (its truth standing for the matched dataset, its survey samples for the
surveys), the pipeline's household model draws households; the filters then redraw those that
disclose a real record (``bench/disclosure/filters.py``, which measures the same at the demo's
full size). The filtered draw must stay within sampling error of the unfiltered one: closer to
it than a second, independent draw of the same size is.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from synth_assets.common.disclosure import FULL, RARE
from synth_assets.demo import generate_demo
from synth_assets.synthesis.constraints import disclosure_detector

REPO = Path(__file__).resolve().parents[2]
PERSONS = 3000


def _bench():
    spec = importlib.util.spec_from_file_location("bench_disclosure_filters", REPO / "bench" / "disclosure" / "filters.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def draws(tmp_path_factory):
    bench = _bench()
    root = tmp_path_factory.mktemp("filters_demo")
    generate_demo(root, persons=PERSONS)
    prepared = bench.prepare(root)
    model = bench.fit(prepared)
    sample = model.sample(PERSONS, seed=1)
    independent = [model.sample(PERSONS, seed=s) for s in (2, 3)]
    return bench, prepared, model, sample, independent, bench.filtered(model, prepared, sample, seed=1)


def test_filters_move_no_household_distribution_beyond_sampling_error(draws):
    bench, _, _, sample, independent, enforced = draws
    assert enforced.rejected_households > 0, "the filters rejected nothing: the test would prove nothing"
    assert any(reason.startswith("disclosure filter") for reason in enforced.rejected_by_reason)
    for column in bench.STRATA:
        moved = bench.household_tvd(enforced.data, sample, column)
        # sampling error, computed here: two independent draws of the same size from the same model
        noise = min(bench.household_tvd(independent[0], sample, column),
                    bench.household_tvd(independent[1], sample, column),
                    bench.household_tvd(independent[0], independent[1], column))
        assert noise > 0
        assert moved < noise, f"{column}: the filters moved it by {moved:.4f}, sampling error {noise:.4f}"


def test_filtered_draw_discloses_no_real_record(draws):
    _, prepared, _, _, _, enforced = draws
    release = prepared.catalog.release
    columns = [c for c in prepared.matched.columns if c not in ("person_id", "household_id")]
    detect = disclosure_detector({**prepared.references, "register": prepared.register}, columns,
                                 quasi_identifiers=list(release.quasi_identifiers), k=release.disclosure.k)
    found = {reason: int(mask.sum()) for reason, mask in detect(enforced.data).items()}
    assert found and not any(found.values()), found
    assert any(RARE in reason for reason in found) and any(FULL in reason for reason in found)


def test_removals_are_reported_per_stratum(draws):
    bench, _, _, sample, _, enforced = draws
    for column in bench.STRATA:
        assert sum(enforced.drawn_by_stratum[column].values()) == len(sample)
        assert set(enforced.drawn_by_stratum[column]) == set(sample[column].astype(str))
    for reason, per_stratum in enforced.rejected_by_stratum.items():
        totals = {column: sum(per_stratum[column].values()) for column in bench.STRATA}
        assert set(totals.values()) == {enforced.rejected_by_reason[reason]}, (reason, totals)
    # no stratum loses most of its records to the filters (the region lost 29%)
    shares = [n / enforced.drawn_by_stratum[column][value]
              for per_stratum in enforced.rejected_by_stratum.values()
              for column in bench.STRATA for value, n in per_stratum[column].items()
              if enforced.drawn_by_stratum[column][value] >= 100]
    assert shares and float(np.max(shares)) < 0.25, shares


def test_a_larger_k_reaches_the_filters(draws):
    bench, prepared, model, sample, _, enforced = draws
    stricter = bench.filtered(model, prepared, sample, seed=1, k=8)
    rare = [r for r in enforced.rejected_by_reason if RARE in r]
    assert sum(stricter.rejected_by_reason.get(r.replace("fewer than 3", "fewer than 8"), 0) for r in rare) > \
        sum(enforced.rejected_by_reason[r] for r in rare)
