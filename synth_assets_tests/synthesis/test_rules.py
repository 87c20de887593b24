"""Declarative rules: checked on any table, applied to synthetic output."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synth_assets.synthesis import Derived, InCategories, ZeroWhen, apply_rules, check_rules, make_synthesizer


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [10, 30, 12, 50],
            "wage": [100.0, 200.0, 0.0, np.nan],
            "benefit": [0.0, 50.0, 5.0, np.nan],
            "total": [100.0, 999.0, 5.0, np.nan],
            "code": ["a", "b", "zz", None],
        }
    )


RULES = [
    ZeroWhen("wage", "age < 16"),
    Derived("total", ["wage", "benefit"]),
    InCategories("code", ["a", "b"]),
]


def test_check_rules_reports_share_breaking_each_rule() -> None:
    shares = check_rules(frame(), RULES)
    assert shares == {
        "wage == 0 when age < 16": 0.25,  # the 10-year-old's wage
        "total = wage + benefit": 0.25,  # 999 != 250; all-missing total with all-missing parts is fine
        "code in ['a', 'b']": 0.25,  # 'zz'; missing is allowed
    }


def test_apply_rules_repairs_in_order() -> None:
    fixed = apply_rules(frame(), RULES)
    assert fixed["wage"].tolist()[:3] == [0.0, 200.0, 0.0]
    assert fixed["total"].tolist()[:3] == [0.0, 250.0, 5.0]  # recomputed after the wage rule
    assert np.isnan(fixed["total"].iloc[3])
    assert fixed["code"].tolist()[:3] == ["a", "b", "a"]
    assert all(share == 0 for share in check_rules(fixed, RULES).values())


def test_integer_totals_stay_integers() -> None:
    df = pd.DataFrame({"a": [1, 2], "b": [3, 4], "t": [0, 0]})
    assert apply_rules(df, [Derived("t", ["a", "b"])])["t"].dtype == np.int64


def test_synthesiser_applies_its_rules_after_sampling(persons: pd.DataFrame) -> None:
    data = persons.assign(total=persons["income"].fillna(0) + persons["household_income"])
    rules = [ZeroWhen("income", "age < 16"), Derived("total", ["income", "household_income"])]
    unruled = make_synthesizer("cart", seed=0).fit(data).sample(500)
    assert check_rules(unruled, rules)["total = income + household_income"] > 0.5  # smoothing breaks sums
    out = make_synthesizer("cart", seed=0, rules=rules).fit(data).sample(500)
    assert all(share == 0 for share in check_rules(out, rules).values())
    assert out.dtypes.equals(data.dtypes)
