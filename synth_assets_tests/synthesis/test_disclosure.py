"""Disclosure filters judge risk: common profiles pass, a reproduced rare record or a whole copy does not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synth_assets.common import hashing
from synth_assets.common.disclosure import DisclosureIndex, disclosive_rows, judge_all
from synth_assets.synthesis.constraints import RuleViolationError, enforce_rules
from synth_assets.validation.privacy.copies import disclosive_copies

QI = ["region", "household_size"]


def _real(seed: int = 0, n: int = 300) -> pd.DataFrame:
    """Coarse categories and mostly-zero incomes: many people share one profile; one rare record."""
    rng = np.random.default_rng(seed)
    real = pd.DataFrame({
        "region": pd.Categorical(rng.choice(["north", "south"], n), categories=["north", "south", "isle"]),
        "household_size": rng.integers(1, 4, n),
        "status": rng.choice(["employed", "other"], n),
        "income": np.where(rng.random(n) < 0.8, 0.0, rng.uniform(1_000, 50_000, n).round(2)),
    })
    rare = pd.DataFrame({"region": pd.Categorical(["isle"], categories=["north", "south", "isle"]),
                         "household_size": [7], "status": ["employed"], "income": [0.0]})
    return pd.concat([real, rare], ignore_index=True)


def _generated(real: pd.DataFrame) -> pd.DataFrame:
    common = real[(real["income"] == 0)].head(40)  # common profiles: coarse categories, zero income
    rare = real[real["region"] == "isle"]  # the rare real record, replicated
    whole = real[real["income"] > 0].head(2)  # real records copied whole, continuous values included
    return pd.concat([common, rare, whole], ignore_index=True)


def test_common_profiles_pass_a_replicated_rare_record_and_whole_copies_do_not():
    real = _real()
    generated = _generated(real)
    columns = list(real.columns)
    masks = disclosive_rows(generated, real, columns, quasi_identifiers=QI, k=3)
    assert not masks["replicated rare record"][:40].any() and not masks["full copy"][:40].any()
    assert masks["replicated rare record"][40]
    assert masks["full copy"][41:].all()
    # a survey sharing only some columns cannot be copied whole; its common profiles pass too
    survey = real[["region", "household_size", "status"]]
    masks = disclosive_rows(generated, survey, columns, quasi_identifiers=QI, k=3)
    assert set(masks) == {"replicated rare record"}
    assert masks["replicated rare record"].tolist() == [False] * 40 + [True] + [False] * 2
    # the old filter (equality on the shared columns) called almost every record a copy
    old = generated[survey.columns].astype(str).agg("|".join, axis=1).isin(
        survey.astype(str).agg("|".join, axis=1))
    assert old.mean() == 1.0
    assert disclosive_copies(generated, real, columns, QI, 3) == {"replicated rare record": 1, "full copy": 3}


def test_every_index_judges_a_frame_as_alone_each_column_hashed_once(monkeypatch):
    """``judge_all`` hashes each of the generated rows' columns once for every reference (a survey's
    columns are the matched data's too), block by block: the masks of each index judging them alone,
    the comparisons' conversions included (a reference's numbers against text, its text against numbers)."""
    real = _real()
    generated = pd.concat([_generated(real)] * 3, ignore_index=True)
    generated["household_size"] = generated["household_size"].astype(str)  # text where the references have numbers
    columns = list(real.columns)
    references = {"matched": real, "survey": real[["region", "household_size", "status"]],
                  "coded": real.assign(status=real["status"].map({"employed": 1, "other": 2}))[["status", "income"]],
                  "written": real.assign(income=real["income"].astype(str))[["region", "income"]]}
    indexes = {name: DisclosureIndex(ref, columns, quasi_identifiers=QI, k=3) for name, ref in references.items()}
    alone = {name: index.judge(generated) for name, index in indexes.items()}
    assert alone["matched"]["replicated rare record"].sum() == 3 and alone["matched"]["full copy"].sum() == 9
    hashed: list[str] = []
    column_hashes = hashing._column_hashes

    def recorded(values, as_number):
        hashed.append(values.name)
        return column_hashes(values, as_number)

    monkeypatch.setattr(hashing, "_column_hashes", recorded)
    for rows in (len(generated), 50):  # one block; blocks of 50 rows
        hashed.clear()
        together = judge_all(indexes, generated, rows=rows)
        assert together.keys() == alone.keys()
        for name, masks in alone.items():
            assert together[name].keys() == masks.keys()
            for kind, mask in masks.items():
                np.testing.assert_array_equal(together[name][kind], mask, err_msg=f"{name}: {kind}")
        blocks = -(-len(generated) // rows)
        # region, household size, status (as text) and income once a block; status as a number, income as text
        assert sorted(hashed) == sorted(["region", "household_size", "status", "income", "status", "income"] * blocks)


def test_k_sets_what_counts_as_rare():
    real = _real()
    twice = pd.concat([real, real[real["region"] == "isle"]], ignore_index=True)  # the isle profile held by 2
    generated = _generated(real)
    assert disclosive_rows(generated, twice, list(real.columns), quasi_identifiers=QI, k=2)[
        "replicated rare record"].sum() == 0
    assert disclosive_rows(generated, twice, list(real.columns), quasi_identifiers=QI, k=3)[
        "replicated rare record"].sum() == 1


def test_enforcement_redraws_only_risky_records_and_reports_per_stratum():
    real = _real()
    generated = _generated(real).assign(household_id=np.arange(43))

    def draw(n, seed):
        rng = np.random.default_rng(seed)
        return pd.DataFrame({
            "region": pd.Categorical(rng.choice(["north", "south"], n), categories=["north", "south", "isle"]),
            "household_size": rng.integers(1, 4, n), "status": rng.choice(["employed", "other"], n),
            "income": rng.uniform(60_000, 90_000, n), "household_id": np.arange(n) + 10_000})

    result = enforce_rules(generated, [], draw, references={"survey": real}, household_id="household_id",
                           quasi_identifiers=QI, k=3, strata=["region", "household_size"],
                           compare_columns=list(real.columns), seed=0)
    assert result.rejected_households == 3  # the rare record and the two whole copies; the 40 common ones stay
    reasons = {r: n for r, n in result.rejected_by_reason.items() if n}
    assert all(r.startswith("disclosure filter") for r in reasons)
    rare = next(r for r in reasons if "replicated rare record" in r)
    assert result.rejected_by_stratum[rare]["region"] == {"isle": 1}
    assert result.drawn_by_stratum["region"]["isle"] == 1
    kept = result.data.drop(columns="household_id")
    assert not disclosive_rows(kept, real, list(real.columns), quasi_identifiers=QI, k=3)["full copy"].any()
    assert len(result.data) == len(generated)


def test_a_model_that_keeps_copying_is_refused_naming_the_filter():
    real = _real()
    copies = pd.concat([real[real["income"] > 0]] * 2, ignore_index=True)
    copies = copies.assign(household_id=np.arange(len(copies)))
    with pytest.raises(RuleViolationError, match=r"copy filter `disclosure filter: full copy .* not a rule"):
        enforce_rules(copies, [], lambda n, s: copies.head(n), references={"matched": real},
                      household_id="household_id", quasi_identifiers=QI, k=3, compare_columns=list(real.columns))


def test_an_index_of_a_stored_table_equals_the_index_of_the_frame(tmp_path):
    """Hashed a row group at a time from its file (a region's view of it too), the same index as of the frame."""
    from synth_assets.common.disclosure import DisclosureIndex
    from synth_assets.common.frames import ParquetTable, write_rows

    real = _real(n=2_000)
    real["household_size"] = real["household_size"].astype("Int64")
    real.loc[5, "household_size"] = pd.NA  # missing in one row group only
    write_rows(real, tmp_path / "real.parquet", row_group_rows=300)
    stored = ParquetTable(tmp_path / "real.parquet")
    assert stored._file().num_row_groups > 5  # hashed by blocks, each with its own categories
    columns = list(real.columns)
    for reference, frame in ((stored, real), (stored.where("status", ["other"]), real[real["status"] == "other"])):
        from_file = DisclosureIndex(reference, columns, quasi_identifiers=QI, k=3)
        from_frame = DisclosureIndex(frame.reset_index(drop=True), columns, quasi_identifiers=QI, k=3)
        assert from_file.rare.size and from_file.every.size
        np.testing.assert_array_equal(from_file.rare, from_frame.rare)
        np.testing.assert_array_equal(from_file.every, from_frame.every)
        generated = _generated(frame)
        for kind, mask in from_frame.judge(generated).items():
            np.testing.assert_array_equal(from_file.judge(generated)[kind], mask)
