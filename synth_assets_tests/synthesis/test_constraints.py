import numpy as np
import pandas as pd
import pytest

from synth_assets.catalog.rules import RuleError, broken_rows
from synth_assets.synthesis.constraints import RuleViolationError, enforce_rules


def _households(n_households, seed, child_wage_share):
    rng = np.random.default_rng(seed)
    rows = []
    for h in range(n_households):
        for member in range(rng.integers(1, 4)):
            age = 40 if member == 0 else int(rng.integers(1, 15))
            wage = 1000.0 if member == 0 else (500.0 if rng.random() < child_wage_share else 0.0)
            rows.append({"household_id": h, "age": age, "wage": wage, "bonus": np.nan})
    return pd.DataFrame(rows)


RULES = ["not (age < 16 and wage > 0)", "bonus >= 0"]


def test_broken_rows_counts_per_rule_and_nulls_are_not_applicable():
    data = pd.DataFrame({"age": [10, 10, 30, 12], "wage": [5.0, 0.0, 5.0, np.nan],
                         "bonus": [np.nan, -1.0, 1.0, 2.0]})
    bad, counts = broken_rows(data, RULES)
    assert bad.tolist() == [True, True, False, False]
    assert counts == {RULES[0]: 1, RULES[1]: 1}


def test_enforce_rules_replaces_whole_households():
    sample = _households(300, 0, child_wage_share=0.1)
    draw = lambda n, seed: _households(max(n // 2, 1), seed, child_wage_share=0.1)  # noqa: E731
    result = enforce_rules(sample, RULES, draw, household_id="household_id", seed=1)
    data = result.data
    assert not broken_rows(data, RULES)[0].any()
    assert result.rejected_households > 0 and 0 < result.rejection_rate < 0.5
    # The draw's households, ids and sizes: each rejected one replaced by one of its size.
    assert data.groupby("household_id", sort=False).size().equals(sample.groupby("household_id", sort=False).size())
    heads = data.groupby("household_id")["age"].first()
    assert (heads == 40).all()  # households were kept whole


def test_enforce_rules_refuses_a_model_that_ignores_a_rule():
    sample = _households(200, 0, child_wage_share=0.9)
    draw = lambda n, seed: _households(max(n // 2, 1), seed, child_wage_share=0.9)  # noqa: E731
    with pytest.raises(RuleViolationError, match=r"not \(age < 16 and wage > 0\)"):
        enforce_rules(sample, RULES, draw, household_id="household_id")


def test_enforce_rules_removes_copies_of_reference_records():
    def draw(n, seed):
        r = np.random.default_rng(seed)
        return pd.DataFrame({"household_id": np.arange(n) // 2, "age": r.integers(20, 80, n),
                             "wage": r.choice([0.0, 1000.0, 2000.0], n), "bonus": np.nan})

    sample = draw(400, 0)
    real = sample.sample(20, random_state=1).drop(columns=["household_id"]).assign(extra=1)
    from synth_assets.validation.privacy.copies import exact_copy_rate

    assert exact_copy_rate(sample.drop(columns=["household_id"]), real) > 0.05  # the model copies
    result = enforce_rules(sample, [], draw, references={"survey": real}, household_id="household_id", seed=3)
    assert exact_copy_rate(result.data.drop(columns=["household_id"]), real) == 0.0
    assert result.rejected_by_reason["copy of a survey record"] > 0
    assert len(result.data) == len(sample)


def test_unique_references_reject_only_replicated_uniques():
    real = pd.DataFrame({"age": [8, 8, 8, 45], "wage": [0.0, 0.0, 0.0, 1234.0]})  # 8/0 shared, 45/1234 unique
    sample = pd.DataFrame({"household_id": [0, 1, 2], "age": [8, 45, 30], "wage": [0.0, 1234.0, 10.0]})

    def draw(n, seed):
        return pd.DataFrame({"household_id": np.arange(n), "age": 31, "wage": 11.0})

    result = enforce_rules(sample, [], draw, unique_references={"register": real}, household_id="household_id")
    ages = sorted(result.data["age"].tolist())
    assert 8 in ages and 45 not in ages  # the common record stays, the unique one is replaced
    assert result.rejected_by_reason["replicated unique of a register record"] == 1


class _DrawTaggedModel:
    """A stand-in synthesiser whose posterior draws tag their records, some breaking a rule."""

    family = "stub"
    has_posterior_draw = True

    def __init__(self, draw: int | None = None):
        self.draw = draw

    def posterior_draw(self, seed: int) -> "_DrawTaggedModel":
        return _DrawTaggedModel(draw=seed)

    def sample(self, n: int, seed: int = 0) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        ages = rng.integers(1, 80, n)
        wages = np.where(rng.random(n) < 0.3, 100.0, 0.0)
        return pd.DataFrame({"household_id": np.arange(n), "age": ages, "wage": wages,
                             "bonus": np.nan, "draw": self.draw})


def test_valid_replicates_come_from_their_own_draw_refills_included():
    from synth_assets.synthesis.constraints import sample_valid_replicates

    replicates = sample_valid_replicates(_DrawTaggedModel(), 400, 3, RULES, seed=7, household_id="household_id")
    draws = [set(r.data["draw"]) for r in replicates]
    # Each replicate, its redrawn households included, is one posterior draw, distinct from the others'.
    assert all(len(d) == 1 for d in draws) and len({d.pop() for d in draws}) == 3
    for replicate in replicates:
        assert replicate.rejected_households > 0  # children with wages were drawn, and redrawn
        assert replicate.fixed_by_household_redraws == replicate.rejected_households  # no member model here
        assert len(replicate.data) == 400 and not broken_rows(replicate.data, RULES)[0].any()
        assert replicate.data["household_id"].tolist() == list(range(400))  # the draw's ids, in order


# ---- households redrawn conditionally: the household structure stays the model's ----------

from scipy import stats  # noqa: E402

from synth_assets.synthesis import HouseholdSynthesizer  # noqa: E402
from synth_assets_tests.synthesis.conftest import make_people  # noqa: E402

# Hits each person with probability about 1/6 (women whose age is a multiple of 3), so a
# household of four or more is rejected over twice as often as a single person; and a
# household-level rule no member redraw can fix (a fresh household of the same structure must).
PERSON_RULES = ["not (sex == 'f' and age % 3 == 0)", "not (tenure == 'rent' and household_income < 12000)"]


def _household_type(people: pd.DataFrame) -> pd.Series:
    has_child = people.groupby("household_id")["relation"].transform(lambda r: (r == "child").any())
    kind = np.where(people["household_size"] == 1, "single", np.where(has_child, "family", "couple"))
    return pd.Series(kind, index=people.index)


@pytest.fixture(scope="module")
def household_model() -> HouseholdSynthesizer:
    people = make_people(600, seed=5)
    people = people.assign(household_type=_household_type(people))
    return HouseholdSynthesizer(seed=3).fit(people)


def _structure(data: pd.DataFrame) -> pd.Series:
    households = data.groupby("household_id", sort=False)[["household_size", "household_type"]].first()
    size = households["household_size"].clip(upper=4).astype(str).replace("4", "4+")
    return (size + "/" + households["household_type"]).value_counts()


def test_enforcement_keeps_the_household_structure_the_model_drew(household_model):
    from synth_assets.synthesis.constraints import sample_valid_replicates
    from synth_assets.synthesis.replicates import replicate_models

    n = 8000
    (enforced,) = sample_valid_replicates(household_model, n, 1, PERSON_RULES, seed=11, household_id="household_id")
    # The replicate's own model and seed: its raw draw, before enforcement, and an independent one.
    ((model, replicate_seed),) = replicate_models(household_model, 1, 11, cluster="household_id")
    raw = model.sample(n, seed=replicate_seed)
    fresh = model.sample(n, seed=replicate_seed + 1)
    raw_sizes = raw.groupby("household_id")["household_size"].first()
    rejected = raw.assign(bad=broken_rows(raw, PERSON_RULES)[0]).groupby("household_id")["bad"].any()
    # The premise: large households are rejected far more often than single persons.
    assert rejected[raw_sizes >= 4].mean() > 2 * rejected[raw_sizes == 1].mean()
    assert enforced.rejection_rate > 0.15

    cells = _structure(raw).index.union(_structure(fresh).index)
    counts = pd.DataFrame({"enforced": _structure(enforced.data), "independent": _structure(fresh)}).reindex(cells)
    counts = counts.fillna(0)
    chi2, p, *_ = stats.chi2_contingency(counts.T.to_numpy())
    tvd = 0.5 * (counts / counts.sum()).diff(axis=1).abs()["independent"].sum()
    print(f"structure of the enforced sample against an independent draw: chi2={chi2:.1f}, p={p:.3g}, TVD={tvd:.4f}")
    assert p > 0.01  # within sampling error of the model's own output
    # Stronger, and exact: the enforced file has the very household structure of its raw draw.
    assert _structure(enforced.data).sort_index().equals(_structure(raw).sort_index())


def test_every_rule_holds_after_enforcement_and_households_stay_coherent(household_model):
    raw = household_model.sample(3000, seed=21)
    result = enforce_rules(raw, PERSON_RULES, lambda k, s: household_model.sample(k, seed=s),
                           household_id="household_id", households=household_model, seed=4)
    data = result.data
    assert not broken_rows(data, PERSON_RULES)[0].any()
    assert result.rejected_households > 0
    assert result.fixed_by_member_redraws > 0 and result.fixed_by_household_redraws > 0
    assert result.fixed_by_member_redraws + result.fixed_by_household_redraws == result.rejected_households
    # Same households (ids, order), same persons count; each household whole and coherent.
    assert len(data) == len(raw)
    assert list(pd.unique(data["household_id"])) == list(pd.unique(raw["household_id"]))
    groups = data.groupby("household_id")
    assert (groups.size() == groups["household_size"].first()).all()
    assert (groups["relation"].apply(lambda r: (r == "head").sum()) == 1).all()
    for col in ("region", "tenure", "household_income", "household_size", "household_type"):
        assert (groups[col].nunique(dropna=False) == 1).all(), col
    assert list(data.columns) == list(raw.columns) and data.dtypes.equals(raw.dtypes)


def test_a_copy_filter_that_rejects_everything_is_named_as_such(household_model):
    raw = household_model.sample(600, seed=1)
    register = pd.DataFrame({"region": ["north", "south", "east", "west"]})  # every region a unique record
    with pytest.raises(RuleViolationError, match="copy filter `replicated unique of a register record`") as err:
        enforce_rules(raw, [], lambda k, s: household_model.sample(k, seed=s), household_id="household_id",
                      households=household_model, unique_references={"register": register})
    assert "check the rule" not in str(err.value)


def test_a_rule_on_the_household_structure_itself_is_an_error_naming_it(household_model):
    # Neither new members nor a household of the same size can satisfy it: refuse, naming the rule.
    raw = household_model.sample(1000, seed=2)
    with pytest.raises(RuleViolationError, match=r"`household_size < 4`.*check the rule"):
        enforce_rules(raw, ["household_size < 4"], lambda k, s: household_model.sample(k, seed=s),
                      household_id="household_id", households=household_model, member_rounds=2, max_rounds=3)


def test_unfixable_households_can_be_dropped_and_counted(household_model):
    # For a surplus that calibration chooses from: drop what no redraw fixes, say how many.
    raw = household_model.sample(1000, seed=2)
    large = raw.groupby("household_id")["household_size"].first().ge(4).sum()
    result = enforce_rules(raw, ["household_size < 4"], lambda k, s: household_model.sample(k, seed=s),
                           household_id="household_id", households=household_model, member_rounds=2, max_rounds=3,
                           drop_unfixable=True)
    assert large > 0 and result.dropped_households == large
    assert (result.data["household_size"] < 4).all()
    assert result.data["household_id"].nunique() == raw["household_id"].nunique() - large


def test_a_household_whose_structure_breaks_a_rule_keeps_its_size_only(household_model):
    raw = household_model.sample(2000, seed=9)
    rule = "not (region == 'west' and household_size >= 2)"
    result = enforce_rules(raw, [rule], lambda k, s: household_model.sample(k, seed=s), household_id="household_id",
                           households=household_model, structure=("household_size", "household_type", "region"))
    data = result.data
    assert not broken_rows(data, [rule])[0].any()
    assert result.fixed_with_size_only == result.rejected_households > 0  # no member nor same-region household helps
    sizes = lambda d: d.groupby("household_id", sort=False)["household_size"].first()  # noqa: E731
    assert sizes(data).equals(sizes(raw))


def _enforcer(model):
    def enforce(sample: pd.DataFrame, seed: int) -> pd.DataFrame:
        return enforce_rules(sample, PERSON_RULES, lambda k, s: model.sample(k, seed=s),
                             household_id="household_id", households=model, seed=seed).data
    return enforce


def test_a_draw_in_one_chunk_is_the_unchunked_draw(household_model):
    from synth_assets.synthesis.constraints import draw_in_chunks

    enforce = _enforcer(household_model)
    whole = enforce(household_model.sample(1000, seed=8), 8)
    for chunk_size in (None, 1000, 10_000):
        pd.testing.assert_frame_equal(draw_in_chunks(household_model, 1000, enforce, seed=8, chunk_size=chunk_size),
                                      whole)


def test_a_chunked_draw_is_reproducible_valid_and_distributed_as_one_draw(household_model):
    from synth_assets.synthesis.constraints import draw_in_chunks

    enforce = _enforcer(household_model)
    chunked = draw_in_chunks(household_model, 3000, enforce, seed=8, chunk_size=1000)
    pd.testing.assert_frame_equal(chunked, draw_in_chunks(household_model, 3000, enforce, seed=8, chunk_size=1000))
    # every chunk's households whole, with ids unique across chunks, and every rule held
    assert not broken_rows(chunked, PERSON_RULES)[0].any()
    assert 3000 <= len(chunked) < 3000 + 10  # whole households: the last one may go past n
    groups = chunked.groupby("household_id", sort=False)
    assert (groups.size() == groups["household_size"].first()).all()
    ids = chunked["household_id"]
    assert (ids != ids.shift()).sum() == ids.nunique()  # one run per id: no id reused by a later chunk
    assert list(chunked.columns) == list(household_model.sample(10, seed=1).columns)
    # the household structure of three chunks against one unchunked draw of the same size
    whole = enforce(household_model.sample(3000, seed=10), 10)
    cells = _structure(chunked).index.union(_structure(whole).index)
    counts = pd.DataFrame({"chunked": _structure(chunked), "whole": _structure(whole)}).reindex(cells).fillna(0)
    assert stats.chi2_contingency(counts.T.to_numpy())[1] > 0.01
    for column in ("age", "household_income"):
        assert stats.ks_2samp(chunked[column], whole[column]).pvalue > 0.01, column


def test_a_record_top_coding_makes_a_rare_real_one_is_dropped_with_its_household():
    """Top-coding sets an amount to its threshold, a real value: the filters judge again after it."""
    from synth_assets.calibration.tails import top_code
    from synth_assets.synthesis.constraints import copy_detectors, drop_disclosive_households

    real = pd.DataFrame({"town": ["A", "B", "B", "B"], "age": [59, 30, 30, 30],
                         "income": [205570.68, 1000.0, 1000.0, 1000.0]})
    drawn = pd.DataFrame({"hh": [1, 1, 2, 3], "town": ["A", "A", "B", "A"], "age": [59, 12, 30, 40],
                          "income": [310000.0, 0.0, 1000.0, 5.0]})
    detectors = copy_detectors(None, {"register": real}, ["town", "age", "income"],
                               quasi_identifiers=["town", "age"], k=3)
    assert not any(m.any() for d in detectors for m in d(drawn).values())  # passes before top-coding
    published, _ = top_code(drawn, {"income": 205570.68})
    kept, dropped = drop_disclosive_households(published, detectors, "hh")
    assert dropped and set(dropped.values()) == {1}  # the one record (rare, and here a whole copy)
    assert any("rare" in reason for reason in dropped), dropped
    assert kept["hh"].tolist() == [2, 3]  # household 1 left out whole; household 2 is common, kept


def test_a_rule_is_evaluated_on_its_own_columns_whatever_else_the_frame_holds():
    """``broken_rows`` evaluates each rule on the columns it names (a cost per column of the frame
    otherwise): other columns, even one whose name contains a rule's column, change nothing."""
    data = pd.DataFrame({"age": [10, 30, 12, None], "labour_income": [100.0, 5.0, 0.0, 7.0]})
    wide = data.assign(age_band=["a", "b", "c", "d"], labour_income_net=[1.0, 2.0, 3.0, 4.0],
                       **{f"noise_{i}": range(4) for i in range(30)})
    rules = ["not (age < 16 and labour_income > 0)"]
    np.testing.assert_array_equal(broken_rows(data, rules)[0], [True, False, False, False])
    np.testing.assert_array_equal(broken_rows(wide, rules)[0], broken_rows(data, rules)[0])
    with pytest.raises(RuleError, match="age_typo"):
        broken_rows(wide, ["age_typo > 3"])


def test_rules_are_evaluated_as_a_frame_would_evaluate_them_without_building_one(monkeypatch):
    """``broken_rows`` hands each rule's columns to ``pandas.eval`` as they are (a frame of them per rule
    was half the cost of checking a chunk): the same rows and counts as ``DataFrame.eval`` on the whole
    frame, nulls not applicable, and a column whose name needs backticks still evaluated."""
    rng = np.random.default_rng(3)
    n = 500
    data = pd.DataFrame({
        "age": rng.integers(0, 90, n).astype(float),
        "labour_income": np.where(rng.random(n) < 0.5, 0.0, rng.gamma(2.0, 900.0, n)),
        "relation": pd.Categorical(rng.choice(["head", "partner", "child"], n)),
        "household_type": rng.choice(["single", "couple_no_children", "other"], n),
        "hours worked": rng.integers(0, 60, n).astype(float),
    })
    data.loc[rng.random(n) < 0.1, "age"] = np.nan
    data.loc[rng.random(n) < 0.1, "relation"] = np.nan
    rules = ["not (age < 16 and labour_income > 0)",
             "not (relation == 'partner' and household_type not in ['couple_no_children'])",
             "age >= 5", "not (age < 15 and `hours worked` > 0)"]
    expected_bad = np.zeros(n, dtype=bool)
    expected_counts = {}
    for rule in rules:  # the reference: the whole frame's eval, a row whose named columns hold a null applies no rule
        named = [c for c in data.columns if c in rule]
        bad = (~data.eval(rule, engine="python").astype(bool) & data[named].notna().all(axis=1)).to_numpy()
        expected_counts[rule] = int(bad.sum())
        expected_bad |= bad
    assert all(expected_counts.values()), expected_counts  # every rule breaks somewhere: the test can tell them apart
    frames_evaluated: list[list[str]] = []
    evaluate = pd.DataFrame.eval

    def recorded(frame, expression, **kwargs):
        frames_evaluated.append(list(frame.columns))
        return evaluate(frame, expression, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "eval", recorded)
    bad, counts = broken_rows(data, rules)
    np.testing.assert_array_equal(bad, expected_bad)
    assert counts == expected_counts
    assert frames_evaluated == [["age", "hours worked"]]  # only the rule that needs its names quoted


class _CopyNumberedMembers:
    """A household model stand-in for ``households`` broken households whose member redraws come out
    valid from copy ``valid_from`` on (a round's copies come one after another, households in the same
    order in each), so the test can tell which copy a fixed household kept; it counts its calls."""

    def __init__(self, households: int, valid_from: int) -> None:
        self.households, self.valid_from, self.calls, self.rows_given = households, valid_from, 0, []

    def redraw_members(self, persons: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
        self.calls += 1
        self.rows_given.append(len(persons))
        copy = pd.factorize(persons["household_id"])[0] // self.households
        return persons.assign(wage=np.where(copy >= self.valid_from, 0.0, 500.0), bonus=copy.astype(float))

    def sample_households_like(self, persons, on=(), *, seed=0, max_rounds=8):
        raise AssertionError("every household is fixed by its members")


@pytest.mark.parametrize("ids", ["integers", "text"])
def test_a_round_redraws_several_copies_of_few_households_and_keeps_the_first_valid(ids: str):
    sample = _households(40, 0, child_wage_share=0.0)
    if ids == "text":
        sample["household_id"] = "h" + sample["household_id"].astype(str)
    children = sample.index[sample["age"] < 16]
    sample.loc[children[:5], "wage"] = 500.0  # five households break the rule
    broken = sample.loc[children[:5], "household_id"].nunique()
    model = _CopyNumberedMembers(broken, valid_from=2)  # copies 0 and 1 break it again, copy 2 is valid
    result = enforce_rules(sample, RULES, lambda n, s: sample.iloc[:0], household_id="household_id",
                           households=model, member_rounds=5, seed=3)
    # one call, with the five attempts of every broken household, instead of three rounds
    assert model.calls == 1
    assert model.rows_given[0] == 5 * int(sample["household_id"].isin(
        sample.loc[children[:5], "household_id"]).sum())
    assert result.fixed_by_member_redraws == broken and result.fixed_by_household_redraws == 0
    assert not broken_rows(result.data, RULES)[0].any()
    fixed = result.data["household_id"].isin(sample.loc[children[:5], "household_id"])
    assert (result.data.loc[fixed, "bonus"] == 2).all()  # the first valid copy: the third
    assert result.data.loc[~fixed, "bonus"].isna().all()
    # the households, ids and persons of the draw, in its order
    assert result.data["household_id"].tolist() == sample["household_id"].tolist()


def test_copies_per_round_fill_a_round_up_to_the_attempts_left():
    from synth_assets.synthesis.constraints import REDRAW_PERSONS, copies_per_round

    assert copies_per_round(REDRAW_PERSONS * 2, 5) == 1  # many pending: a copy each, rounds as before
    assert copies_per_round(REDRAW_PERSONS // 3, 5) == 3
    assert copies_per_round(10, 5) == 5  # never more attempts than the rounds allow
    assert copies_per_round(0, 1) == 1


def test_chunks_enforced_in_child_processes_are_the_chunks_one_process_enforces(household_model, monkeypatch):
    """Each chunk's members drawn and enforced in a forked child, several chunks at a time, while this
    process begins the next (its households' rows): the same chunks, in order, as one process makes,
    and what ``enforce`` returns is all that comes back (it ran in the child)."""
    import os

    from synth_assets.synthesis.constraints import enforced_chunks
    from synth_assets.synthesis.households import HouseholdSynthesizer

    enforce = _enforcer(household_model)

    def enforce_where(sample: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, int]:
        return enforce(sample, seed), os.getpid()

    here = list(enforced_chunks(household_model, 4000, enforce_where, seed=8, chunk_size=1000))
    drawn_here: list[int] = []  # members drawn in this process (a child's calls are counted in the child)
    draw_members = HouseholdSynthesizer._draw_members

    def recorded(self, *args, **kwargs):
        drawn_here.append(os.getpid())
        return draw_members(self, *args, **kwargs)

    monkeypatch.setattr(HouseholdSynthesizer, "_draw_members", recorded)
    forked = list(enforced_chunks(household_model, 4000, enforce_where, seed=8, chunk_size=1000, processes=2))
    assert not drawn_here
    assert len(forked) == len(here) == 4
    for (chunk, _), (same, _) in zip(forked, here, strict=True):
        pd.testing.assert_frame_equal(chunk, same)
    assert {pid for _, pid in here} == {os.getpid()}
    assert os.getpid() not in {pid for _, pid in forked} and len({pid for _, pid in forked}) == 4
