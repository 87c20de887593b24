"""Time use and mobility in a release against the demo's truth, and its linked tables.

    PYTHONPATH=. .venv/bin/python bench/release/diaries.py --data data [--output bench/release/diaries.md]

After a pipeline run on the demo (``make run``, or any data root with a release, the
warehouse's matched dataset and ``truth/``). Two parts:

1. The record surveys' aggregates (minutes per activity, trips, kilometres, car share) as
   ``bench/release/truth.py`` measures every survey: TVD to the truth of each margin, each
   register x survey pair and each pair within the survey, for the release (mean over
   replicates), the matched dataset, the CIA oracle and the floor, beside the same means for
   the person- and household-level surveys.
2. The linked tables the release published for replicate 1 (``<survey>_<unit>s_r1.parquet``,
   keyed to the persons by person and household id): the largest difference between the
   aggregates of a person's records and the person's own, days failing the catalog's record
   checks, days equal to a day of the survey file (the wave the release fused); then their
   distributions beside the truth's (trips per day, car share of trips, kilometres per person
   by mode group, minutes per activity group per average day: the truth holds every person's
   aggregates) and beside the survey's records (records per day, mode shares, departure times).
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from synth_assets.common.layout import DataLayout
from synth_assets.harmonise import harmonise_record_rows
from synth_assets.harmonise.records import failed_days, with_derived
from synth_assets.ingest import discover_waves, read_source_file
from synth_assets.synthesis.linked import aggregate_differences, copied_days, copy_columns, linked_distributions

HERE = Path(__file__).resolve().parent


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


def _truth_rows(source, truth: pd.DataFrame, linked: pd.DataFrame, persons: pd.DataFrame,
                person_id: str) -> list[dict[str, object]]:
    """The linked records of the persons in the survey's universe beside the truth's aggregates."""
    names = list(source.aggregates)
    inside = persons.loc[persons[names].ge(0).all(axis=1), person_id]
    truth = truth.loc[truth[names].ge(0).all(axis=1)]
    rows = _real_records(linked.loc[linked[person_id].isin(inside)])
    out: list[dict[str, object]] = []

    def add(variable: str, statistic: str, generated: float, true: float) -> None:
        out.append({"variable": variable, "statistic": statistic, "linked (r1)": generated, "truth": true})

    records = source.records
    if records.covers_day is not None:
        minutes = (rows[records.covers_day.end] - rows[records.covers_day.start]).astype(float)
        kinds = rows[records.day_type].astype(str) if records.day_type else pd.Series("day", index=rows.index)
        weights = {k: w / sum(records.day_weights.values()) for k, w in records.day_weights.items()}
        per_type = minutes.groupby([rows["activity"].astype(str), kinds]).sum() / max(len(inside), 1)
        for name, aggregate in source.aggregates.items():
            activity = ast.literal_eval(str(aggregate.where).split("==", 1)[1].strip())
            generated = sum(float(per_type.get((activity, k), 0.0)) * w for k, w in weights.items())
            add("minutes per average day", activity, generated, float(truth[name].mean()))
        return out
    trips = pd.Series(_has_record(linked.loc[linked[person_id].isin(inside)]),
                      index=linked.loc[linked[person_id].isin(inside)].index)
    per_person = trips.groupby(linked.loc[trips.index, person_id]).sum().reindex(inside, fill_value=0)

    def bins(values: pd.Series) -> pd.Series:
        return values.clip(upper=5).map(lambda n: "5+" if n >= 5 else str(int(n))).value_counts(normalize=True)

    generated_bins, true_bins = bins(per_person), bins(truth["trips_per_day"].round())
    for b in sorted(set(generated_bins.index) | set(true_bins.index)):
        add("trips per day (share of persons)", b, float(generated_bins.get(b, 0.0)), float(true_bins.get(b, 0.0)))
    add("trips per day", "mean", float(per_person.mean()), float(truth["trips_per_day"].mean()))
    add("trips per day", "TVD", 0.5 * float(generated_bins.sub(true_bins, fill_value=0).abs().sum()), 0.0)
    for name, aggregate in source.aggregates.items():
        if aggregate.how == "sum":
            modes = ast.literal_eval(str(aggregate.where).split(" in ", 1)[1])  # the catalog's own list
            km = rows.loc[rows["main_mode"].astype(str).isin(modes), "distance"].astype(float).sum()
            add("km per person per day", name, float(km) / max(len(inside), 1), float(truth[name].mean()))
        elif aggregate.how == "share":
            modes = ast.literal_eval(str(aggregate.where).split(" in ", 1)[1])
            true_share = float((truth[name] * truth["trips_per_day"]).sum() / truth["trips_per_day"].sum())
            add("share of trips", name, float(rows["main_mode"].astype(str).isin(modes).mean()), true_share)
    return out


def _real_records(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.loc[_has_record(frame)]


def _has_record(frame: pd.DataFrame) -> np.ndarray:
    number = pd.to_numeric(frame["record_id"], errors="coerce")
    return (number.notna() & number.gt(0)).to_numpy()


def linked_tables(root: Path, evaluation) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:  # noqa: ANN001
    """Summary, distributions beside the truth, distributions beside the survey's records."""
    layout = DataLayout(root)
    catalog = evaluation.inputs.catalog
    release = evaluation.inputs.release
    person_id = catalog.register.id_column or "person_id"
    persons = pd.read_parquet(release / "fictitious_population_r1.parquet")
    summary, against_truth, distributions = [], [], []
    for name, source in catalog.surveys.items():
        if source.records is None:
            continue
        path = release / f"{name}_{source.records.unit}s_r1.parquet"
        if not path.exists():
            raise FileNotFoundError(f"{path}: this release has no linked {name} table (published since issue 17)")
        linked = pd.read_parquet(path)
        waves = [w for w in discover_waves(layout.incoming, source) if w <= evaluation.inputs.wave]
        survey_file = discover_waves(layout.incoming, source)[waves[-1]]
        rows = harmonise_record_rows(read_source_file(survey_file, source).data, catalog, name, file=survey_file)
        differences = aggregate_differences(linked, persons, source, person_id=person_id)
        generated = with_derived(linked.rename(columns={person_id: source.id_column or "person_id"}), source)
        summary.append({
            "survey": name, "unit": source.records.unit, "persons": int(differences["persons"].max()),
            "records": int(_has_record(linked).sum()),
            "max |aggregate - person's|": float(differences["max_difference"].max()),
            "days failing checks": int(failed_days(generated, source)[[source.id_column or "person_id", "day_id"]]
                                       .drop_duplicates().shape[0]),
            "days equal to a real day": copied_days(linked, rows, person_id, copy_columns(source)),
        })
        against_truth.append(pd.DataFrame(_truth_rows(source, evaluation.inputs.truth, linked, persons, person_id))
                             .assign(source=name))
        table = linked_distributions(linked, rows, source, person_id=person_id)
        distributions.append(table.rename(columns={"generated": "linked (r1)", "survey": "survey records"})
                             .assign(source=name))
    return (pd.DataFrame(summary), pd.concat(against_truth, ignore_index=True),
            pd.concat(distributions, ignore_index=True))


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
    summary, against_truth, distributions = linked_tables(args.data, evaluation)
    text = "\n\n".join([
        f"# Time use and mobility against the truth (release {evaluation.inputs.release.name})",
        f"Machine: {truth.machine()}. Command: `{' '.join(['bench/release/diaries.py', *(argv or sys.argv[1:])])}`.",
        "## Aggregates: mean TVD to the truth", _md(aggregates_table(evaluation)),
        "## Linked tables published for replicate 1", _md(summary),
        "## Their distributions beside the truth", _md(against_truth),
        "## Their distributions beside the survey's records (days passing the checks, unweighted)", _md(distributions),
    ]) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
