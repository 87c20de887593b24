"""Time use and mobility in a release against the demo's truth, and their linked tables.

    PYTHONPATH=. .venv/bin/python bench/release/diaries.py --data data [--output bench/release/diaries.md]

After a pipeline run on the demo (``make run``, or any data root with a release, the
warehouse's matched dataset and ``truth/``). Two parts:

1. The record surveys' aggregates (minutes per activity, trips, kilometres, car share) as
   ``bench/release/truth.py`` measures every survey: TVD to the truth of each margin, each
   register x survey pair and each pair within the survey, for the release (mean over
   replicates), the matched dataset, the CIA oracle and the floor, beside the same means for
   the person- and household-level surveys.
2. Linked tables: for replicate 1, diary days and trips generated from each person's
   aggregates (``synth_assets.synthesis.linked``), fitted on the survey's delivered records
   (the wave the release fused): the largest difference between the aggregates of the
   generated records and the person's, days failing the catalog's record checks, generated
   days equal to a real one, and the distributions beside the survey's.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from synth_assets.common.layout import DataLayout
from synth_assets.harmonise import harmonise_record_rows
from synth_assets.harmonise.records import aggregate_records, failed_days, with_derived
from synth_assets.ingest import discover_waves, read_source_file
from synth_assets.synthesis.linked import clean_days, compare_distributions, copied_days, generator_for

HERE = Path(__file__).resolve().parent
DISTRIBUTIONS = {"covers_day": ["activity", "duration", "start"], "trips": ["main_mode", "purpose", "departure", "distance"]}


def _truth_module():
    spec = importlib.util.spec_from_file_location("bench_release_truth", HERE / "truth.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def aggregates_table(evaluation) -> pd.DataFrame:  # noqa: ANN001 - truth.Evaluation
    """Mean TVD per kind of table and survey group (record surveys by name, the others together)."""
    catalog = evaluation.inputs.catalog
    owner = {v: n for n, s in catalog.surveys.items() for v in s.specific}
    record = {n for n, s in catalog.surveys.items() if s.records is not None}
    pairs = evaluation.pairs.copy()

    def group(table: str) -> str:
        names = {owner[v] for v in str(table).split(" × ") if v in owner}
        mine = sorted(names & record)
        return ", ".join(mine) if mine else ("other surveys" if names else "register")

    pairs["surveys"] = pairs["table"].map(group)
    kinds = ["survey margin", "register × survey", "within one survey"]
    pairs = pairs.loc[pairs["kind"].isin(kinds) & pairs["surveys"].ne("register")]
    columns = ["release", "matched", "cia_oracle", "floor"]
    table = pairs.groupby(["kind", "surveys"])[columns].mean().round(3)
    table["tables"] = pairs.groupby(["kind", "surveys"]).size()
    return table.reset_index()


def linked_tables(root: Path, evaluation) -> tuple[pd.DataFrame, pd.DataFrame]:  # noqa: ANN001
    layout = DataLayout(root)
    catalog = evaluation.inputs.catalog
    persons = evaluation.inputs.replicates[0].reset_index(drop=True)
    persons = persons.assign(person_id=np.arange(1, len(persons) + 1))
    summary, distributions = [], []
    for name, source in catalog.surveys.items():
        if source.records is None:
            continue
        waves = [w for w in discover_waves(layout.incoming, source) if w <= evaluation.inputs.wave]
        path = discover_waves(layout.incoming, source)[waves[-1]]
        rows = harmonise_record_rows(read_source_file(path, source).data, catalog, name, file=path)
        generator = generator_for(source, seed=1).fit(rows)
        generated = with_derived(generator.sample(persons).merge(persons[["person_id", "age"]], on="person_id"), source)
        inside = persons[list(source.aggregates)].ge(0).all(axis=1)
        back = aggregate_records(generated, source).reindex(persons.loc[inside, "person_id"])
        want = persons.loc[inside].set_index("person_id")[list(source.aggregates)]
        columns = ["start", "end", "activity"] if source.records.covers_day else ["main_mode", "distance", "departure"]
        summary.append({
            "survey": name, "unit": source.records.unit, "persons": int(inside.sum()),
            "records": int((pd.to_numeric(generated["record_id"]) > 0).sum()),
            "max |aggregate - person's|": float(np.nanmax(np.abs(back.to_numpy(float) - want.to_numpy(float)))),
            "days failing checks": int(failed_days(generated, source)[["person_id", "day_id"]].drop_duplicates().shape[0]),
            "days equal to a real day": copied_days(generated, rows, source.id_column or "person_id", columns),
        })
        kind = "covers_day" if source.records.covers_day else "trips"
        per_day = ("activity", "duration") if kind == "covers_day" else ("main_mode", "distance")
        # beside the survey's days that pass the catalog's checks (records unweighted)
        table = compare_distributions(generated, clean_days(rows, source), source.id_column or "person_id",
                                      DISTRIBUTIONS[kind], per_day)
        distributions.append(table.rename(columns={"survey": "survey records"}).assign(source=name))
    return pd.DataFrame(summary), pd.concat(distributions, ignore_index=True) if distributions else pd.DataFrame()


def _md(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--wave")
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    truth = _truth_module()
    evaluation = truth.evaluate(args.data, args.wave, draws=args.draws)
    summary, distributions = linked_tables(args.data, evaluation)
    text = "\n\n".join([
        f"# Time use and mobility against the truth (release {evaluation.inputs.release.name})",
        f"Machine: {truth.machine()}. Command: `{' '.join(['bench/release/diaries.py', *(argv or sys.argv[1:])])}`.",
        "## Aggregates: mean TVD to the truth", _md(aggregates_table(evaluation)),
        "## Linked tables generated for replicate 1", _md(summary),
        "## Their distributions beside the survey's records", _md(distributions),
    ]) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
