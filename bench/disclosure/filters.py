"""Do the copy filters move the release's municipality or household-size distribution?

On the demo's truth (all variables known: the matched dataset's stand-in) and its survey
samples (the survey references), the household model the pipeline trains (CART households,
CART members, survey blocks, household variables at their level) draws households; the
disclosure filters (``release.disclosure``, k and the catalog's quasi-identifiers) then
redraw the households that disclose a real record, as ``fictitious_dataset`` does
(``drop_unfixable``, as under calibration). The filtered draw is compared with the same draw
unfiltered (paired: what the filters changed) and set beside two independent unfiltered
draws of the same size (sampling error). Households are the unit: municipality and size are
household facts.

    PYTHONPATH=. .venv/bin/python bench/disclosure/filters.py --persons 50000 --seeds 1 2 3

writes ``bench/disclosure/results.md`` (``--output`` elsewhere).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from synth_assets.catalog import Catalog, parse_catalog
from synth_assets.common.distances import total_variation
from synth_assets.synthesis.constraints import RuleEnforcement, enforce_rules
from synth_assets.synthesis.factory import build_population_synthesizer

REPO = Path(__file__).resolve().parents[2]
WAVE = 2024
PERSON_ID, HOUSEHOLD_ID = "person_id", "household_id"
#: The household facts whose distributions the filters must not move.
STRATA = ("municipality", "household_size")


@dataclass
class Prepared:
    """The model's training data and the filters' references, from a demo's truth."""

    catalog: Catalog
    matched: pd.DataFrame  # every register and survey variable of every person (ids kept)
    references: dict[str, pd.DataFrame]  # matched dataset and each survey's records, ids dropped
    register: pd.DataFrame  # the register's variables (its rare records may not reappear)


def prepare(root: Path, catalog: Catalog | None = None, wave: int = WAVE) -> Prepared:
    """The demo under ``root`` (``synth-assets demo-data``) as the release's inputs would see it."""
    catalog = catalog or parse_catalog((REPO / "data" / "catalog.yaml").read_text(encoding="utf-8"))
    truth = pd.read_parquet(root / "truth" / f"population_{wave}.parquet")
    specific = [v for source in catalog.surveys.values() for v in source.specific]
    columns = [*catalog.register.variables, *specific]
    matched = truth[[c for c in columns if c in truth.columns]].reset_index(drop=True)
    ids = [PERSON_ID, HOUSEHOLD_ID]
    references = {"matched dataset": matched.drop(columns=ids)}
    for name, source in catalog.surveys.items():
        samples = sorted((root / "truth" / "samples").glob(f"{name}_*.parquet"))
        if not samples:
            continue
        sampled = pd.read_parquet(samples[-1])[PERSON_ID]  # the survey's latest wave
        survey_columns = [c for c in source.variables if c in matched.columns and c not in ids]
        references[f"{name} survey"] = matched.loc[matched[PERSON_ID].isin(sampled), survey_columns]
    register = matched[[c for c in catalog.register.variables if c in matched.columns and c not in ids]]
    return Prepared(catalog, matched, references, register)


def fit(prepared: Prepared, seed: int = 0):
    """The household model the pipeline trains by default (``population_model``, CART / CART)."""
    catalog = prepared.catalog
    model = build_population_synthesizer(
        "cart", person_family="cart", household_id=HOUSEHOLD_ID, person_id=PERSON_ID, seed=seed,
        blocks=[[v for v in s.specific if v in prepared.matched] for s in catalog.surveys.values()],
        household_level=[v for v in catalog.household_variables() if v in prepared.matched],
        household_totals=[v for v in catalog.register_amounts() if v in prepared.matched],
    )
    return model.fit(prepared.matched.drop(columns=[PERSON_ID]))


def filtered(model, prepared: Prepared, sample: pd.DataFrame, seed: int, k: int | None = None) -> RuleEnforcement:
    """``sample`` through the disclosure filters, as ``fictitious_dataset`` runs them."""
    release = prepared.catalog.release
    return enforce_rules(
        sample, [], lambda n, s: model.sample(n, seed=s),
        references={"matched dataset": prepared.references["matched dataset"]},
        unique_references={**{n: r for n, r in prepared.references.items() if n != "matched dataset"},
                           "register": prepared.register},
        household_id=HOUSEHOLD_ID, households=model, seed=seed, drop_unfixable=True,
        quasi_identifiers=list(release.quasi_identifiers), k=k or release.disclosure.k,
        compare_columns=[c for c in prepared.matched.columns if c not in (PERSON_ID, HOUSEHOLD_ID)],
        strata=list(STRATA),
        member_rounds=release.enforcement.member_rounds, max_rounds=release.enforcement.max_rounds,
        max_rejection_rate=release.enforcement.max_rejection_rate,
    )


def household_tvd(a: pd.DataFrame, b: pd.DataFrame, column: str) -> float:
    """TVD between the distributions of a household fact (one value per household) in two draws."""
    first = [frame.groupby(HOUSEHOLD_ID, sort=False)[column].first().astype(str) for frame in (a, b)]
    levels = sorted(set(first[0]) | set(first[1]))
    shares = [f.value_counts(normalize=True).reindex(levels, fill_value=0.0) for f in first]
    return total_variation(shares[0].to_numpy(), shares[1].to_numpy())


def measure(model, prepared: Prepared, persons: int, seed: int) -> dict[str, float]:
    """One paired draw: what the filters changed, beside the error between independent draws."""
    started = time.perf_counter()
    sample = model.sample(persons, seed=seed)
    other = model.sample(persons, seed=seed + 10_000)  # an independent draw of the same size
    drawn = time.perf_counter()
    enforced = filtered(model, prepared, sample, seed)
    row: dict[str, float] = {
        "seed": seed, "households": enforced.drawn_households,
        "rejected share": round(enforced.rejection_rate, 4),
        "by members": enforced.fixed_by_member_redraws, "whole": enforced.fixed_by_household_redraws,
        "size only": enforced.fixed_with_size_only, "dropped": enforced.dropped_households,
        "filter s": round(time.perf_counter() - drawn, 1), "draw s": round(drawn - started, 1),
    }
    for column in STRATA:
        row[f"{column}: filtered vs unfiltered"] = round(household_tvd(enforced.data, sample, column), 4)
        row[f"{column}: two independent draws"] = round(household_tvd(other, sample, column), 4)
        removed = enforced.rejected_by_stratum
        shares = [n / enforced.drawn_by_stratum[column][value]
                  for reason in removed for value, n in removed[reason].get(column, {}).items()]
        row[f"{column}: max removed share of a stratum"] = round(max(shares, default=0.0), 4)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=50_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("results.md"))
    args = parser.parse_args(argv)
    from synth_assets.demo import generate_demo

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        generate_demo(Path(tmp), persons=args.persons)
        prepared = prepare(Path(tmp))
        model = fit(prepared)
        fitted = time.perf_counter() - started
        rows = [measure(model, prepared, args.persons, seed) for seed in args.seeds]
    table = pd.DataFrame(rows)
    medians = table.drop(columns="seed").median().round(4)
    text = "\n".join([
        "# Disclosure filters and the household distributions",
        "",
        f"Command: `PYTHONPATH=. .venv/bin/python bench/disclosure/filters.py --persons {args.persons} "
        f"--seeds {' '.join(map(str, args.seeds))}`",
        f"Machine: {platform.machine()}, {platform.python_version()}, 2 CPU cores shared with other work "
        f"(seconds are upper bounds). Demo generated and model fitted in {fitted:.0f} s.",
        "",
        "TVD of the household municipality and size distributions: the filtered draw against the same "
        "draw unfiltered (what the filters changed), and two independent unfiltered draws of the same "
        "size (sampling error). `max removed share of a stratum`: the largest share of one "
        "municipality's (size's) drawn records a filter rejected before the redraws. Rejected households "
        "were fixed `by members` (household row kept), `whole` (a household of the same size, type and "
        "municipality), of which `size only` (same size: these can move the municipality), or `dropped`.",
        "",
        table.to_markdown(index=False),
        "",
        "Medians: " + ", ".join(f"{k} {v:g}" for k, v in medians.items()),
        "",
    ])
    args.output.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
