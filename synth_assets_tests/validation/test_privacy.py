import numpy as np
import pandas as pd
import pytest

from synth_assets.validation.privacy import (
    attribute_inference,
    dcr,
    exact_copy_rate,
    linkability_risk,
    membership_inference_auc,
    replicated_uniques,
    singling_out_risk,
)
from synth_assets.validation.privacy.gower import gower_encode, nearest_neighbours
from synth_assets.validation.privacy.inference import guesses_correct
from synth_assets.validation.privacy.risk import residual_risk, success_rate
from synth_assets.validation.privacy.singling_out import multivariate_predicates, univariate_predicates

QIS = ["age", "sex", "region"]
NUMERIC = ["age", "hsize", "income", "weight"]


def test_gower_distance_by_hand():
    train = pd.DataFrame({"x": [0.0, 10.0], "c": ["a", "b"]})
    query = pd.DataFrame({"x": [2.0, np.nan, 50.0], "c": ["a", "a", None]})
    q, r = gower_encode([query, train], train)
    distances, indices = nearest_neighbours(q, r, k=2)
    # row 0: to (0,a) (0.2 + 0)/2 = .1; to (10,b) (.8 + 1)/2 = .9
    np.testing.assert_allclose(distances[0], [0.1, 0.9], rtol=1e-6)
    assert indices[0].tolist() == [0, 1]
    # row 1: missing vs observed number counts 1; category a matches row 0
    np.testing.assert_allclose(distances[1], [0.5, 1.0])
    # row 2: out-of-range number capped at 1, missing category differs from both
    np.testing.assert_allclose(distances[2], [1.0, 1.0])


def _gower_by_definition(a: pd.Series, b: pd.Series, ranges: dict[str, float]) -> float:
    parts = []
    for column, value in a.items():
        other = b[column]
        if pd.isna(value) or pd.isna(other):
            parts.append(0.0 if pd.isna(value) and pd.isna(other) else 1.0)
        elif column in ranges:
            parts.append(min(abs(value - other) / ranges[column], 1.0))
        else:
            parts.append(float(value != other))
    return float(np.mean(parts))


def test_gower_distances_with_missing_values_follow_the_definition():
    # numbers missing on both sides (distance 0), on one side (1), far out of range, and large
    rng = np.random.default_rng(4)
    n = 60
    train = pd.DataFrame({"x": rng.normal(0, 5, n), "y": rng.uniform(-3e6, 3e6, n),
                          "c": rng.choice(["a", "b", None], n)})
    train.loc[rng.random(n) < 0.3, "x"] = np.nan
    query = pd.DataFrame({"x": np.r_[np.nan, np.nan, 400.0, -1e9, rng.normal(0, 5, 6)],
                          "y": np.r_[np.nan, 1.0, np.nan, 2e7, rng.uniform(-3e6, 3e6, 6)],
                          "c": ["a", None, "b", "c", *rng.choice(["a", "b"], 6)]})
    ranges = {c: float(train[c].max() - train[c].min()) for c in ("x", "y")}
    q, r = gower_encode([query, train], train)
    distances, indices = nearest_neighbours(q, r, k=n)
    for i in range(len(query)):
        expected = [_gower_by_definition(query.iloc[i], train.iloc[j], ranges) for j in indices[i]]
        np.testing.assert_allclose(distances[i], expected, rtol=1e-5, atol=1e-6)
    # every reference row once per query row, nearest first
    assert all(sorted(row) == list(range(n)) for row in indices.tolist())
    assert (np.diff(distances, axis=1) >= 0).all()


def test_blocks_are_cache_sized_whatever_the_memory_allowed(train, independent, monkeypatch):
    from synth_assets.validation.privacy import gower

    q, r = gower_encode([independent.iloc[:300], train], train)
    whole = nearest_neighbours(q, r, k=2, max_cells=10**9)
    monkeypatch.setattr(gower, "BLOCK_CELLS", len(train) * 16)
    blocks: list[int] = []
    measure = gower._distance_block
    monkeypatch.setattr(gower, "_distance_block", lambda query, reference: blocks.append(query.n_rows) or
                        measure(query, reference))
    cached = nearest_neighbours(q, r, k=2, max_cells=10**9)
    assert max(blocks) == 16 and sum(blocks) == 300
    np.testing.assert_array_equal(whole[1], cached[1])
    np.testing.assert_array_equal(whole[0], cached[0])


def test_chunking_does_not_change_neighbours(train, independent):
    q, r = gower_encode([independent.iloc[:300], train], train)
    whole = nearest_neighbours(q, r, k=2, max_cells=10**9)
    chunked = nearest_neighbours(q, r, k=2, max_cells=len(train) * 7)
    np.testing.assert_array_equal(whole[1], chunked[1])
    np.testing.assert_allclose(whole[0], chunked[0])


def test_threads_give_the_same_neighbours_within_the_same_memory(train, independent, monkeypatch):
    from synth_assets.validation.privacy import gower

    q, r = gower_encode([independent.iloc[:300], train], train)
    one = nearest_neighbours(q, r, k=2, max_cells=len(train) * 40)
    blocks: list[int] = []
    measure = gower._distance_block
    monkeypatch.setattr(gower, "_distance_block", lambda query, reference: blocks.append(query.n_rows) or
                        measure(query, reference))
    two = nearest_neighbours(q, r, k=2, max_cells=len(train) * 40, n_jobs=2)
    np.testing.assert_array_equal(one[1], two[1])
    np.testing.assert_array_equal(one[0], two[0])
    # two blocks at a time, each half the size: the cells in memory at once stay within max_cells
    assert max(blocks) == 20 and len(blocks) == 15


def test_distance_metrics_are_the_same_on_threads(train, independent, holdout):
    assert dcr(independent, train, holdout, seed=3).metrics() == dcr(independent, train, holdout, seed=3,
                                                                        n_jobs=2).metrics()
    assert membership_inference_auc(independent, train, holdout, seed=3) == membership_inference_auc(
        independent, train, holdout, seed=3, n_jobs=2)


def test_copies_are_found_after_round_trips(train, independent):
    assert exact_copy_rate(train.copy(), train) == 1.0
    assert exact_copy_rate(independent, train) == 0.0
    round_trip = train.copy()
    round_trip["age"] = round_trip["age"].astype(float)  # int -> float
    round_trip["income"] = round_trip["income"] * (1 + 1e-9)  # CSV-style float noise
    assert exact_copy_rate(round_trip, train) == 1.0  # NaN incomes match NaN too
    half = pd.concat([train.iloc[:100], independent.iloc[:100]])
    assert exact_copy_rate(half, train) == 0.5


def test_replicated_uniques_by_hand():
    real = pd.DataFrame({"age": [30, 30, 41, 52], "sex": ["f", "f", "m", "m"], "income": [1.0, 2.0, 3.0, 4.0]})
    syn = pd.DataFrame({"age": [41, 52, 30], "sex": ["m", "m", "f"], "income": [3.0, 9.0, 1.0]})
    result = replicated_uniques(syn, real, ["age", "sex"])
    # unique on (age, sex): rows 41m and 52m; only 41m is copied whole (52m has another income)
    assert result["n_unique"] == 2 and result["n_replicated"] == 1
    assert result["share_of_records"] == 0.25 and result["share_of_uniques"] == 0.5


def test_copy_of_train_is_flagged(train, holdout):
    result = dcr(train.copy(), train, holdout)
    assert result.dcr_share >= 0.95
    assert result.dcr_p5_synthetic == 0 < result.dcr_p5_holdout
    assert membership_inference_auc(train.copy(), train, holdout) > 0.9


def test_dcr_ties_count_half(train, independent):
    """With train and holdout identical every synthetic record is equally close to both."""
    assert dcr(independent, train, train.copy()).dcr_share == 0.5


def test_independent_sample_is_not_closer_to_train(train, holdout, independent):
    assert abs(dcr(independent, train, holdout).dcr_share - 0.5) <= 0.07
    assert abs(membership_inference_auc(independent, train, holdout) - 0.5) <= 0.07


def test_wilson_rate_and_residual_risk():
    rate = success_rate(100, 50)
    z = 1.959963984540054
    assert rate.value == pytest.approx(0.5)
    assert rate.error == pytest.approx(z / (100 + z**2) * np.sqrt(25 + z**2 / 4))
    risk = residual_risk(success_rate(1000, 600), success_rate(1000, 200))
    assert risk.risk == pytest.approx((risk.attack.value - risk.control.value) / (1 - risk.control.value))
    assert risk.ci_low < risk.risk < risk.ci_high


def test_singling_out_predicates_follow_anonymeter(train):
    predicates = multivariate_predicates(train, 30, 3, np.random.default_rng(0), max_attempts=20_000)
    assert len(predicates) == 30
    arrays = {c: train[c].to_numpy(dtype=float) if c in NUMERIC else train[c].to_numpy(dtype=object) for c in train}
    medians = train[NUMERIC].median()
    for predicate in predicates:
        assert predicate.count(arrays) == 1 and len(predicate.terms) == 3
        for column, op, value in predicate.terms:
            if op in ("<=", ">="):  # the tail away from the median
                assert op == (">=" if value > medians[column] else "<=")
    assert all(p.count(arrays) == 1 for p in univariate_predicates(train))


def test_inference_guess_scoring():
    guess = pd.Series([100.0, 100.0, np.nan, np.nan, 0.0])
    truth = pd.Series([104.0, 106.0, np.nan, 5.0, 0.0])
    # within 5% of the truth; missing matches missing only; zero matches zero
    assert guesses_correct(guess, truth, numeric=True, tolerance=0.05).tolist() == [True, False, True, False, True]
    labels = guesses_correct(pd.Series(["a", None, "b"]), pd.Series(["a", None, None]), numeric=False, tolerance=0)
    assert labels.tolist() == [True, True, False]


def test_attacks_succeed_on_copies_only(train, holdout, independent):
    leaked = attribute_inference(train.copy(), train, holdout, QIS, ["income", "status"], n_attacks=500)
    safe = attribute_inference(independent, train, holdout, QIS, ["income", "status"], n_attacks=500)
    assert leaked["income"].risk > 0.3
    assert all(r.risk < 0.1 for r in safe.values())
    sets = (["age", "income"], ["weight", "hsize"])
    # children and the non-employed share age + zero/missing income: ties cap the success
    assert linkability_risk(train.copy(), train, holdout, sets, n_attacks=500).risk > 0.3
    assert linkability_risk(independent, train, holdout, sets, n_attacks=500).risk < 0.1
    assert singling_out_risk(train.copy(), train, holdout, n_attacks=100).risk > 0.5
    assert singling_out_risk(independent, train, holdout, n_attacks=100).risk < 0.15
    univariate = singling_out_risk(train.copy(), train, holdout, mode="univariate")
    assert univariate.attack.n_total > 0 and univariate.risk > 0.3


def test_disclosive_copies_by_blocks_add_up_to_the_whole_table(train, independent):
    """The release's copy check, a row group at a time: the counts of the table judged whole."""
    from synth_assets.validation.privacy.copies import disclosive_copies, disclosive_copies_by_blocks

    release = pd.concat([independent, train.iloc[:40], train.iloc[:3]], ignore_index=True)  # 43 copies
    columns = list(train.columns)
    references = {"training": train, "few columns": train[columns[:3]]}
    whole = {name: disclosive_copies(release, reference, columns, ["age", "sex"], 2)
             for name, reference in references.items()}
    blocks = [release.iloc[i:i + 97] for i in range(0, len(release), 97)]
    assert disclosive_copies_by_blocks(blocks, references, columns, ["age", "sex"], 2) == whole
    # blocks judged side by side in forked children: the same counts
    assert disclosive_copies_by_blocks(iter(blocks), references, columns, ["age", "sex"], 2, processes=2) == whole
    assert whole["training"]["full copy"] >= 43


def test_singling_out_pools_the_predicates_of_every_replicate(train, holdout, independent):
    one = singling_out_risk(independent, train, holdout, n_attacks=100)
    pooled = singling_out_risk([independent, independent.sample(frac=1.0, random_state=1)], train, holdout,
                               n_attacks=100)
    assert pooled.attack.n_total > one.attack.n_total  # each replicate adds its own predicates
    # a release with one copied replicate among safe ones is risky as a whole
    mixed = singling_out_risk([independent, train.copy()], train, holdout, n_attacks=100)
    assert mixed.risk > one.risk + 0.2
    # a single table is scored as before
    assert singling_out_risk([independent], train, holdout, n_attacks=100) == one


def test_singling_out_search_finds_the_predicates_asked_for_where_they_are_rare():
    """Isolating predicates are rare in a large sample (a few in a thousand tries): the search keeps
    trying, as anonymeter does, instead of stopping at a hundred tries per predicate (which found a
    sixth of them here); every predicate, written with the records' own values, isolates one record,
    missing values and categories included."""
    from synth_assets.validation.privacy.singling_out import MAX_ATTEMPTS, _arrays

    rng = np.random.default_rng(0)
    n = 20_000
    frame = pd.DataFrame({
        "age": rng.integers(0, 90, n).astype(float), "income": rng.lognormal(10, 1, n),
        "region": pd.Categorical(rng.choice(list("abcde"), n)), "sex": rng.choice(["f", "m"], n),
        "hours": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 60, n).astype(float))})
    former = multivariate_predicates(frame, 200, 3, np.random.default_rng(1), max_attempts=100 * 200)
    found = multivariate_predicates(frame, 200, 3, np.random.default_rng(1), max_attempts=MAX_ATTEMPTS)
    assert len(former) < 100 and len(found) == 200 and len({p.terms for p in found}) == 200
    arrays = _arrays(frame)
    assert all(p.count(arrays) == 1 for p in found)
    assert any(op == "isna" for p in found for _, op, _ in p.terms)
    assert any(op == "==" and column == "region" for p in found for column, op, _ in p.terms)
    # a table with fewer isolating predicates than asked ends the search, not at MAX_ATTEMPTS
    tiny = frame.head(30)
    assert 0 < len(multivariate_predicates(tiny, 10_000, 3, np.random.default_rng(1), max_attempts=MAX_ATTEMPTS)) < 10_000
