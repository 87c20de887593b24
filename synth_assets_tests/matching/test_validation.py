"""Input errors are ValueErrors that name the column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synth_assets.matching import METHODS, fuse
from synth_assets_tests.matching.data import X, Z, survey_pair


@pytest.fixture
def pair() -> tuple[pd.DataFrame, pd.DataFrame]:
    recipient, donor, _ = survey_pair(200, 100)
    return recipient, donor


def test_missing_columns_are_named(pair: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    recipient, donor = pair
    with pytest.raises(ValueError, match=r"donor has no column 'wage' \(columns: age, sex, region, status"):
        fuse(recipient, donor, on=X, impute=["wage"])
    with pytest.raises(ValueError, match="recipient has no column 'education'"):
        fuse(recipient, donor.assign(education="x"), on=X + ["education"], impute=Z)
    with pytest.raises(ValueError, match="donor has no column 'w'"):
        fuse(recipient, donor, on=X, impute=Z, donor_weight="w")


def test_incompatible_x_types_are_named(pair: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    recipient, donor = pair
    with pytest.raises(ValueError, match=r"column 'age' is categorical .* in the recipient but numeric"):
        fuse(recipient.assign(age=recipient["age"].astype(str)), donor, on=X, impute=Z)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan])
def test_bad_donor_weights(pair: tuple[pd.DataFrame, pd.DataFrame], bad: float) -> None:
    recipient, donor = pair
    donor.loc[donor.index[3], "weight"] = bad
    with pytest.raises(ValueError, match="donor weight column 'weight' must be finite and positive: 1 bad value"):
        fuse(recipient, donor, on=X, impute=Z, donor_weight="weight")


def test_bad_arguments(pair: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    recipient, donor = pair
    with pytest.raises(ValueError, match="unknown matching method 'nearest'"):
        fuse(recipient, donor, on=X, impute=Z, method="nearest")
    with pytest.raises(ValueError, match="method 'nnd_hotdeck' has no option 'kk' \\(options: k, "):
        fuse(recipient, donor, on=X, impute=Z, kk=3)
    with pytest.raises(ValueError, match="recipient already has column 'status'"):
        fuse(recipient.assign(status="x"), donor, on=X, impute=Z)
    with pytest.raises(ValueError, match="column 'age' cannot be both imputed and matched on"):
        fuse(recipient, donor, on=X, impute=["age"])
    with pytest.raises(ValueError, match="donor has no rows"):
        fuse(recipient, donor.iloc[:0], on=X, impute=Z)
    with pytest.raises(ValueError, match="unknown distance"):
        fuse(recipient, donor, on=X, impute=Z, distance="euclid")


def test_every_method_returns_donor_dtypes(pair: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    recipient, donor = pair
    for method in METHODS:
        options = (
            {"auxiliary": pd.concat([recipient.iloc[:50], donor[Z].iloc[:50]], axis=1)}
            if method == "aux_hotdeck"
            else {}
        )
        result = fuse(recipient, donor, on=X, impute=Z, method=method, **options)
        assert (result.data[Z].dtypes == donor[Z].dtypes).all(), method
        assert result.data.index.equals(recipient.index), method
        assert result.data[Z].notna().all().all(), method
        assert isinstance(result.to_dict()["diagnostics"]["marginal"]["status"]["value"], float)


def test_empty_recipient_gives_empty_result(pair: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    recipient, donor = pair
    result = fuse(recipient.iloc[:0], donor, on=X, impute=Z)
    assert result.data.empty and list(result.data.columns) == list(recipient.columns) + Z


def test_matching_variable_with_disjoint_labels_is_refused(pair: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    recipient, donor = pair
    coded = recipient.assign(sex=recipient["sex"].map({"f": "F", "m": "M"}))
    with pytest.raises(ValueError, match=r"column 'sex': no recipient label matches a donor label") as info:
        fuse(coded, donor, on=X, impute=Z)
    assert "'F', 'M'" in str(info.value) and "'f', 'm'" in str(info.value)


def test_donation_class_with_disjoint_labels_is_refused(pair: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    recipient, donor = pair
    coded = recipient.assign(sex=recipient["sex"].map({"f": "F", "m": "M"}))
    on = [c for c in X if c != "sex"]
    with pytest.raises(ValueError, match=r"column 'sex': no recipient label matches") as info:
        fuse(coded, donor, on=on, impute=Z, donation_classes=["sex"])
    assert "'f', 'm'" in str(info.value)
    # Matching labels still fuse, classes and all.
    assert len(fuse(recipient, donor, on=on, impute=Z, donation_classes=["sex"]).data) == len(recipient)
