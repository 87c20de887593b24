import numpy as np
import pandas as pd
import pytest

from synth_assets.catalog.rules import broken_rows
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
    assert len(data) >= len(sample)
    assert len(data) - len(sample) < 3  # at most one household beyond the target
    assert result.rejected_households > 0 and 0 < result.rejection_rate < 0.5
    heads = data.groupby("household_id")["age"].first()
    assert (heads == 40).all()  # households were kept whole, ids unique after renumbering


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
    assert len(result.data) >= len(sample)


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


def test_valid_replicates_come_from_their_own_draw_and_refills_from_the_fitted_model():
    from synth_assets.synthesis.constraints import sample_valid_replicates

    replicates = sample_valid_replicates(_DrawTaggedModel(), 400, 3, RULES, seed=7, household_id="household_id")
    draws = [set(r.data["draw"].dropna()) for r in replicates]
    # Each replicate is one posterior draw, distinct from the others' ...
    assert all(len(d) == 1 for d in draws) and len({d.pop() for d in draws}) == 3
    for replicate in replicates:
        assert replicate.data["draw"].isna().any()  # ... and its replacements come from the fitted model
        assert replicate.rejected_households > 0  # children with wages were drawn, and replaced
        assert len(replicate.data) >= 400 and not broken_rows(replicate.data, RULES)[0].any()
        assert replicate.data["household_id"].is_unique
