"""Sequential CART: fidelity of marginals and relations, point masses, reproducibility."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from synth_assets.synthesis import CARTSynthesizer, make_synthesizer
from synth_assets.validation.privacy.copies import exact_copy_rate


@pytest.fixture(scope="module")
def fitted(persons: pd.DataFrame) -> CARTSynthesizer:
    return make_synthesizer("cart", seed=1).fit(persons)


@pytest.fixture(scope="module")
def synthetic(fitted: CARTSynthesizer, persons: pd.DataFrame) -> pd.DataFrame:
    return fitted.sample(3 * len(persons), seed=2)


def tvd(a: pd.Series, b: pd.Series) -> float:
    p = a.value_counts(normalize=True, dropna=False)
    q = b.value_counts(normalize=True, dropna=False)
    return 0.5 * p.sub(q, fill_value=0).abs().sum()


def test_schema_dtypes_and_categories_are_kept(synthetic: pd.DataFrame, persons: pd.DataFrame) -> None:
    assert list(synthetic.columns) == list(persons.columns)
    assert synthetic.dtypes.equals(persons.dtypes)
    for col in ("region", "education"):
        assert synthetic[col].cat.categories.equals(persons[col].cat.categories)
        assert synthetic[col].cat.ordered == persons[col].cat.ordered
    assert set(synthetic["tenure"]) <= set(persons["tenure"])
    assert synthetic["age"].between(persons["age"].min(), persons["age"].max()).all()


def test_marginals_are_close(synthetic: pd.DataFrame, persons: pd.DataFrame) -> None:
    for col in ("region", "relation", "education", "employed"):
        assert tvd(synthetic[col], persons[col]) < 0.05, col
    for col in ("age", "household_income"):
        assert stats.ks_2samp(synthetic[col], persons[col]).statistic < 0.1, col


def test_point_masses_codes_and_missing_rates_are_kept(synthetic: pd.DataFrame, persons: pd.DataFrame) -> None:
    assert abs((synthetic["income"] == 0).mean() - (persons["income"] == 0).mean()) < 0.05
    assert abs(synthetic["income"].isna().mean() - persons["income"].isna().mean()) < 0.05
    assert abs((synthetic["hours"] == -8).mean() - (persons["hours"] == -8).mean()) < 0.05
    assert abs(synthetic["education"].isna().mean() - persons["education"].isna().mean()) < 0.05
    # conditionally too: "not applicable" hours belong to children, as in the real data
    assert synthetic.loc[synthetic["hours"] == -8, "age"].quantile(0.95) < 16


def test_relations_are_kept(synthetic: pd.DataFrame, persons: pd.DataFrame) -> None:
    def corr(df: pd.DataFrame) -> float:
        adults = df[df["age"] >= 16]
        return adults["hours"].corr(adults["income"].fillna(0))

    assert abs(corr(synthetic) - corr(persons)) < 0.1
    real_rate = persons.groupby("employed")["income"].apply(lambda s: (s == 0).mean())
    syn_rate = synthetic.groupby("employed")["income"].apply(lambda s: (s == 0).mean())
    assert (syn_rate - real_rate).abs().max() < 0.1


def test_smoothing_makes_continuous_values_new(synthetic: pd.DataFrame, persons: pd.DataFrame) -> None:
    positive = synthetic["household_income"]
    assert positive.isin(persons["household_income"]).mean() < 0.05


def test_same_seed_same_rows_other_seed_other_rows(fitted: CARTSynthesizer) -> None:
    a = fitted.sample(200, seed=7)
    pd.testing.assert_frame_equal(a, fitted.sample(200, seed=7))
    assert not a.equals(fitted.sample(200, seed=8))
    chunked = fitted.sample(200, seed=7, chunk_size=64)
    assert len(chunked) == 200 and chunked.index.equals(pd.RangeIndex(200))


def test_copy_filter_redraws_rows_equal_to_training_records() -> None:
    rng = np.random.default_rng(0)
    data = pd.DataFrame({c: rng.choice(list("wxyz"), 300) for c in "abcde"})
    data["f"] = data["a"].map({"w": 0, "x": 1, "y": 2, "z": 3}) + rng.integers(0, 2, 300)

    def copy_share(avoid_copies: bool) -> float:  # measured as the gate measures it
        synth = CARTSynthesizer(seed=0, min_leaf=10, avoid_copies=avoid_copies).fit(data)
        return exact_copy_rate(synth.sample(300), data)

    assert copy_share(False) > 0.15
    assert copy_share(True) < 0.01


def test_posterior_draw_changes_donor_weights_only(fitted: CARTSynthesizer, persons: pd.DataFrame) -> None:
    draw = fitted.posterior_draw(3)
    assert draw.has_posterior_draw and draw is not fitted
    out = draw.sample(500, seed=1)
    assert out.dtypes.equals(persons.dtypes)
    assert not out.equals(fitted.sample(500, seed=1))


def test_conditional_sampling_fixes_the_given_columns(persons: pd.DataFrame) -> None:
    synth = CARTSynthesizer(seed=0, condition_columns=["region", "age"]).fit(persons)
    known = pd.DataFrame({"region": pd.Categorical(["north"] * 50 + ["west"] * 50, dtype=persons["region"].dtype),
                          "age": [5] * 50 + [60] * 50})
    out = synth.sample_conditional(known, seed=1)
    pd.testing.assert_frame_equal(out[["region", "age"]], known)
    assert (out["hours"].iloc[:50] == -8).mean() > 0.8  # five-year-olds do not work
    assert (out["hours"].iloc[50:] == -8).mean() < 0.1


def test_visit_sequence_puts_states_before_values(persons: pd.DataFrame) -> None:
    columns = ["income", "age", "sex", "region", "tenure", "household_size", "household_income",
               "relation", "employed", "hours", "education"]
    synth = CARTSynthesizer(seed=0, visit_sequence=columns).fit(persons)
    order = synth.training_log["visit_sequence"]
    assert order[:2] == ["income#state", "income"]
    with pytest.raises(ValueError, match="lacks columns"):
        CARTSynthesizer(visit_sequence=["age"]).fit(persons)


def test_blocks_are_drawn_whole_from_one_training_record():
    import numpy as np
    import pandas as pd

    from synth_assets.synthesis import CARTSynthesizer

    rng = np.random.default_rng(0)
    n = 3000
    age = rng.integers(18, 80, n)
    # a donor block: 60 distinct (a, b, c) tuples repeated, as a survey fused from 60 donors
    donors = pd.DataFrame({"a": rng.lognormal(5, 1, 60).round(2), "b": rng.lognormal(6, 1, 60).round(2),
                           "c": rng.choice(["x", "y", "z"], 60)})
    data = pd.concat([pd.DataFrame({"age": age}), donors.iloc[rng.integers(0, 60, n)].reset_index(drop=True)], axis=1)
    tuples = set(map(tuple, data[["a", "b", "c"]].to_numpy()))

    blocked = CARTSynthesizer(seed=1, blocks=[["a", "b", "c"]]).fit(data).sample(2000, seed=2)
    drawn = set(map(tuple, blocked[["a", "b", "c"]].to_numpy()))
    assert drawn <= tuples  # every block is one real record's
    free = CARTSynthesizer(seed=1).fit(data).sample(2000, seed=2)
    assert len(set(map(tuple, free[["a", "b", "c"]].to_numpy())) - tuples) > 20  # without blocks they mix
    # posterior draws keep blocks whole too
    posterior = CARTSynthesizer(seed=1, blocks=[["a", "b", "c"]]).fit(data).posterior_draw(3).sample(500, seed=4)
    assert set(map(tuple, posterior[["a", "b", "c"]].to_numpy())) <= tuples


def test_a_block_grows_a_tree_where_any_member_varies_and_none_where_all_are_constant():
    """A block's step grows a tree unless every member has one value in every record: one member
    varying is enough (the others constant), as distinct rows would say."""
    rng = np.random.default_rng(0)
    n = 2000
    age = rng.integers(18, 80, n)
    constant = pd.DataFrame({"age": age, "a": np.full(n, 3.5), "b": np.full(n, "x")})
    varying = constant.assign(b=np.where(age > 50, "y", "x"))  # a constant, b follows the age
    for data, grows in ((constant, False), (varying, True)):
        model = CARTSynthesizer(seed=1, blocks=[["a", "b"]], avoid_copies=False).fit(data)
        leader = next(step for step in model._steps if step.column in ("a", "b") and step.leader is None)
        assert (leader.tree is not None) is grows
    out = CARTSynthesizer(seed=1, blocks=[["a", "b"]], avoid_copies=False).fit(varying).sample(4000, seed=2)
    old, young = (out.loc[out["age"] > 55, "b"] == "y").mean(), (out.loc[out["age"] < 45, "b"] == "y").mean()
    assert old - young > 0.5  # the tree's leaves follow the age: b is drawn given it


def test_the_draws_are_the_same_from_a_matrix_held_by_row_or_by_column(persons: pd.DataFrame) -> None:
    """The steps read and write the matrix a column at a time, so it is held by column (Fortran
    order): a gated step's rows too. The draws do not depend on how it is held."""
    from synth_assets.synthesis import cart

    model = CARTSynthesizer(seed=1).fit(persons)
    matrix = model._model_input(persons)
    assert matrix.flags["F_CONTIGUOUS"]
    rows = cart._rows_of(matrix, np.arange(0, len(matrix), 3))
    assert rows.flags["F_CONTIGUOUS"] and np.array_equal(rows, matrix[::3], equal_nan=True)
    empty = np.full((500, len(model._steps)), np.nan)
    by_row = model._fill_steps(np.ascontiguousarray(empty), np.random.default_rng(5), 0, len(model._steps))
    by_column = model._fill_steps(np.asfortranarray(empty), np.random.default_rng(5), 0, len(model._steps))
    assert by_column.flags["F_CONTIGUOUS"]
    np.testing.assert_array_equal(by_row, by_column)


def test_stratum_keeps_a_rare_value_s_relation_that_the_tree_mixes_away():
    """Spending that grows with the size up to rare large households: leaves of a large
    ``min_leaf`` mix sizes 6-8 (their mean spending shrinks toward size 5); with the size
    as ``stratum`` each large size keeps its own spending."""
    rng = np.random.default_rng(0)
    n = 4000
    size = np.minimum(rng.geometric(0.4, n), 8)
    spend = 200 + 50 * size + rng.normal(0, 20, n)
    data = pd.DataFrame({"size": size, "other": rng.normal(0, 1, n), "spend": spend})
    real = data.groupby("size")["spend"].mean()
    large = real.index[(real.index >= 6) & (data["size"].value_counts().reindex(real.index) >= 10)]

    def error(**params) -> float:
        model = CARTSynthesizer(seed=0, min_leaf=150, smoothing=False, **params).fit(data)
        out = model.sample(20000, seed=1)
        return float((out.groupby("size")["spend"].mean() - real).abs().reindex(large).max())

    assert error() > 15  # the whole leaf: large sizes take smaller households' spending
    assert error(stratum="size") < 8
    with pytest.raises(ValueError, match="stratum column 'nope'"):
        CARTSynthesizer(seed=0, stratum="nope").fit(data)


def test_stratum_cells_never_hold_fewer_donors_than_the_minimum():
    from synth_assets.synthesis.cart import MIN_STRATUM_RECORDS

    rng = np.random.default_rng(1)
    data = pd.DataFrame({"size": rng.integers(1, 9, 500), "value": rng.lognormal(5, 1, 500)})
    model = CARTSynthesizer(seed=0, min_leaf=50, stratum="size").fit(data)
    donors = model._steps[-1].donors
    assert donors is not None and model._steps[-1].stratum is not None
    assert donors.counts.min() >= MIN_STRATUM_RECORDS


def test_trees_fitted_in_threads_make_the_same_model(persons: pd.DataFrame) -> None:
    """The steps' trees are fitted on the training data, each with its own seed: fitted two at a
    time (``n_jobs=2``) they are those fitted one after another, and so are the draws."""
    import threading

    from synth_assets.synthesis import cart

    names: set[str] = set()
    fit_step = cart.CARTSynthesizer._fit_step

    def recording(self, *args, **kwargs):
        names.add(threading.current_thread().name)
        return fit_step(self, *args, **kwargs)

    one = CARTSynthesizer(seed=3).fit(persons)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cart.CARTSynthesizer, "_fit_step", recording)
        two = CARTSynthesizer(seed=3, n_jobs=2).fit(persons)
    assert any(name.startswith("cart-fit") for name in names)  # fitted in the pool's threads
    pd.testing.assert_frame_equal(one.sample(2000, seed=5), two.sample(2000, seed=5))
    assert two.get_params()["n_jobs"] == 2 and two.clone().n_jobs == 2
    with pytest.raises(ValueError, match="n_jobs"):
        CARTSynthesizer(n_jobs=0)


def test_tree_rows_choose_the_splits_on_a_sample_and_fill_the_leaves_with_every_record() -> None:
    """Above ``tree_rows`` records a tree's splits come from a sample of that many, ``min_leaf``
    scaled to it; every record still fills the leaves, so they hold as many records as the whole
    data's leaves and never fewer than the scaled minimum. At or below it, the model is the same."""
    import math

    from synth_assets_tests.synthesis.conftest import make_people

    data = make_people(1500, seed=4).drop(columns=["household_id"])
    whole = CARTSynthesizer(seed=3, min_leaf=40).fit(data)
    sampled = CARTSynthesizer(seed=3, min_leaf=40, tree_rows=1000).fit(data)
    whole_steps = {step.column: step for step in whole._steps}
    grown = [step for step in sampled._steps if step.tree is not None]
    assert sum(int(step.donors.counts.sum()) > 1000 for step in grown) >= 3
    for step in grown:
        records = int(step.donors.counts.sum())  # the step's training records, all in some leaf
        assert step.tree.tree_.n_node_samples[0] == min(records, 1000)
        if records > 1000:
            assert step.donors.counts.min() >= math.ceil(40 * 1000 / records)
            # leaves no smaller in records than the tree fitted on all of them makes them (larger
            # where a sample's node is pure and the whole data's is not)
            assert step.donors.counts.mean() >= 0.8 * whole_steps[step.column].donors.counts.mean()
    # the draws as faithful, on every variable, as the model's whose trees saw every record
    drawn_whole, drawn_sampled = whole.sample(len(data), seed=5), sampled.sample(len(data), seed=5)
    for column in ("sex", "education", "relation", "tenure"):
        assert tvd(drawn_sampled[column], data[column]) <= tvd(drawn_whole[column], data[column]) + 0.03
    for column in ("age", "income"):
        ks_sampled = stats.ks_2samp(drawn_sampled[column].dropna(), data[column].dropna()).statistic
        ks_whole = stats.ks_2samp(drawn_whole[column].dropna(), data[column].dropna()).statistic
        assert ks_sampled <= ks_whole + 0.03
    # as many records as the data or more: every record, the model of synthpop's way
    same = CARTSynthesizer(seed=3, min_leaf=40, tree_rows=len(data)).fit(data)
    pd.testing.assert_frame_equal(same.sample(1000, seed=6), whole.sample(1000, seed=6))
    with pytest.raises(ValueError, match="tree_rows"):
        CARTSynthesizer(tree_rows=999)
    # a sample's predictors are the rows' own, made without copying them whole first
    step = grown[-1]
    matrix = sampled._model_input(data)[:, : sampled._visit_order().index(step.column)]
    rows = np.array([3, 0, 17, len(data) - 1])
    np.testing.assert_array_equal(step.features(matrix, rows), step.features(matrix)[rows])


def test_blocks_are_fitted_one_at_a_time_whatever_n_jobs():
    """A block's step holds a column per category of each member (the largest working set): with
    threads, two blocks never fit at once, and the model is the one fitted one step at a time."""
    import threading
    import time

    from synth_assets.synthesis import cart

    rng = np.random.default_rng(2)
    n = 2000
    data = pd.DataFrame({"age": rng.integers(18, 80, n), "a": rng.normal(size=n), "b": rng.choice(["x", "y"], n),
                         "c": rng.normal(size=n), "d": rng.choice(["u", "v", "w"], n), "e": rng.normal(size=n)})
    blocks = [["a", "b"], ["c", "d"]]
    running, most = 0, 0
    lock = threading.Lock()
    fit_block = cart.CARTSynthesizer._fit_block_step

    def counting(self, *args, **kwargs):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.2)  # long enough for another thread to start the other block, were it let
        try:
            return fit_block(self, *args, **kwargs)
        finally:
            with lock:
                running -= 1

    one = CARTSynthesizer(seed=4, blocks=blocks).fit(data)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cart.CARTSynthesizer, "_fit_block_step", counting)
        three = CARTSynthesizer(seed=4, blocks=blocks, n_jobs=3).fit(data)
    assert most == 1
    pd.testing.assert_frame_equal(one.sample(1000, seed=6), three.sample(1000, seed=6))


def test_blocks_are_fitted_beside_the_lighter_steps_last_block_first():
    """With threads, one thread fits the blocks (the last in the visit order first: the most
    predictors) while the others fit the lighter steps, instead of the blocks ending the fit on one
    core; the model is still the one fitted one step at a time.

    Told by events, not by timing (a loaded machine delays threads): a lighter step waits for a
    block to have started, and a block waits for a lighter step to start while it runs. Fitted one
    after the other, blocks last, neither wait is ever met."""
    import threading

    from synth_assets.synthesis import cart

    rng = np.random.default_rng(2)
    n = 2000
    data = pd.DataFrame({"age": rng.integers(18, 80, n), "a": rng.normal(size=n), "b": rng.choice(["x", "y"], n),
                         "c": rng.normal(size=n), "d": rng.choice(["u", "v", "w"], n), "e": rng.normal(size=n),
                         "f": rng.normal(size=n)})
    blocks = [["a", "b"], ["c", "d"]]
    starts: list[tuple[str, str, int]] = []
    met: list[bool] = []
    lock = threading.Lock()
    block_running, step_during_block = threading.Event(), threading.Event()
    fit_block, fit_step = cart.CARTSynthesizer._fit_block_step, cart.CARTSynthesizer._fit_step

    def block(self, column, *args, **kwargs):
        with lock:
            starts.append(("block", column, threading.get_ident()))
        block_running.set()
        met.append(step_during_block.wait(timeout=20))  # a lighter step starts while this block runs
        return fit_block(self, column, *args, **kwargs)

    def step(self, column, *args, **kwargs):
        met.append(block_running.wait(timeout=5))
        if block_running.is_set():
            step_during_block.set()
        with lock:
            starts.append(("step", column, threading.get_ident()))
        return fit_step(self, column, *args, **kwargs)

    one = CARTSynthesizer(seed=4, blocks=blocks, visit_sequence=["age", "e", "f", "a", "b", "c", "d"]).fit(data)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cart.CARTSynthesizer, "_fit_block_step", block)
        patch.setattr(cart.CARTSynthesizer, "_fit_step", step)
        two = CARTSynthesizer(seed=4, blocks=blocks, n_jobs=2,
                              visit_sequence=["age", "e", "f", "a", "b", "c", "d"]).fit(data)
    order = two.training_log["visit_sequence"]
    fitted_blocks = [order.index(column) for kind, column, _ in starts if kind == "block"]
    assert len(fitted_blocks) == 2 and fitted_blocks[0] > fitted_blocks[1]  # the last block first
    assert len({thread for kind, _, thread in starts if kind == "block"}) == 1  # one thread fits the blocks
    assert met and all(met), met  # side by side: every wait was met
    pd.testing.assert_frame_equal(one.sample(1000, seed=6), two.sample(1000, seed=6))


def test_a_visit_sequence_keeps_its_order_with_the_blocks_last():
    """A given visit sequence is followed, the blocks drawn after every other column in their own
    order (a member takes its leader's record): with a block's columns in another order in the
    sequence, sampling used to fail on the member's leader."""
    rng = np.random.default_rng(2)
    n = 1000
    data = pd.DataFrame({"age": rng.integers(18, 80, n), "a": rng.normal(size=n), "b": rng.choice(["x", "y"], n),
                         "e": rng.normal(size=n), "f": rng.normal(size=n)})
    model = CARTSynthesizer(seed=4, blocks=[["a", "b"]], visit_sequence=["f", "a", "b", "age", "e"]).fit(data)
    order = model.training_log["visit_sequence"]
    assert order[:3] == ["f", "age", "e"] and set(order[3:]) == {"a", "b"}
    drawn = model.sample(500, seed=1)
    assert len(drawn) == 500 and drawn["b"].isin(["x", "y"]).all()


def _register_and_survey(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """``age`` the same in every replicate (the register); ``spend`` a survey variable."""
    rng = np.random.default_rng(0)
    age = rng.integers(18, 80, n)
    noise = np.random.default_rng(seed).normal(0, 5, n)
    # shifted within the range of the unshifted (the fitted coding keeps the training range)
    return pd.DataFrame({"age": age, "spend": 100 + 2 * age + noise + shift * (age < 50)})


def test_replicate_draw_keeps_the_trees_and_draws_the_replicate_s_values() -> None:
    fitted = CARTSynthesizer(seed=0, smoothing=False, avoid_copies=False).fit(_register_and_survey(4000, 1))
    replicate = _register_and_survey(4000, 2, shift=40.0)  # the survey variable moved, for the young only
    draw = fitted.replicate_draw(replicate, seed=3)
    assert [s.tree for s in draw._steps] == [s.tree for s in fitted._steps]  # the same trees: no refit
    assert draw.training_log["replicate_draw"] == {"rows": 4000, "trees": "kept"}
    out = draw.sample(20000, seed=4)
    assert set(out["spend"]) <= set(replicate["spend"])  # donors: the replicate's records
    old, young = out.loc[out["age"] >= 50, "spend"].mean(), out.loc[out["age"] < 50, "spend"].mean()
    expected = replicate.groupby(replicate["age"] >= 50)["spend"].mean()
    assert old == pytest.approx(expected[True], abs=3.0) and young == pytest.approx(expected[False], abs=3.0)
    # a copy is judged against the replicate's records, which are the ones it draws
    filtered = CARTSynthesizer(seed=0).fit(_register_and_survey(4000, 1))
    hashes = filtered.replicate_draw(replicate, seed=3)._train_hashes
    assert hashes is not None and filtered._train_hashes is not None
    assert not np.isin(hashes, filtered._train_hashes).all()


def test_replicate_draw_refills_the_leaves_in_threads_the_same_draw() -> None:
    """With ``n_jobs``, a replicate's steps are refilled side by side on threads: the same draw."""
    import threading

    from synth_assets.synthesis import cart

    data = _register_and_survey(4000, 1)
    replicate = _register_and_survey(4000, 2, shift=40.0)
    one = CARTSynthesizer(seed=0).fit(data).replicate_draw(replicate, seed=3)
    names: set[str] = set()
    refilled = cart.CARTSynthesizer._refilled

    def recording(self, *args, **kwargs):
        names.add(threading.current_thread().name)
        return refilled(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cart.CARTSynthesizer, "_refilled", recording)
        two = CARTSynthesizer(seed=0, n_jobs=2).fit(data).replicate_draw(replicate, seed=3)
    assert any(name.startswith("cart-refill") for name in names)
    pd.testing.assert_frame_equal(one.sample(3000, seed=4), two.sample(3000, seed=4))


def test_replicate_draw_fills_a_leaf_no_replicate_record_reaches_from_its_nearest_subtree() -> None:
    """A conditioning value the replicate lacks (the survey's rare category, absent from its
    bootstrap): its leaf draws from the records around it in the tree, not from nowhere."""
    rng = np.random.default_rng(0)
    z = rng.random(3000)
    data = pd.DataFrame({"z": z, "y": 10 * (z > 0.5) + rng.normal(0, 1, 3000)})
    fitted = CARTSynthesizer(seed=0, smoothing=False, avoid_copies=False, condition_columns=["z"]).fit(data)
    replicate = data.loc[data["z"] < 0.5].reset_index(drop=True)
    draw = fitted.replicate_draw(replicate, seed=1)
    out = draw.sample_conditional(pd.DataFrame({"z": [0.9] * 200 + [0.1] * 200}), seed=2)
    assert set(out["y"]) <= set(replicate["y"])


def test_replicate_draw_refits_when_the_replicate_holds_a_category_the_model_never_saw() -> None:
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"age": rng.integers(18, 80, 2000), "tenure": rng.choice(["own", "rent"], 2000)})
    fitted = CARTSynthesizer(seed=0).fit(data)
    replicate = data.assign(tenure=np.where(np.arange(2000) % 4 == 0, "free", data["tenure"]))
    draw = fitted.replicate_draw(replicate, seed=1)
    assert "replicate_draw" not in draw.training_log  # refitted, on the replicate's coding
    assert "free" in set(draw.sample(2000, seed=2)["tenure"])


def test_weighted_donor_picks_are_each_row_s_own_search() -> None:
    """The weighted picks are searched in sorted order for speed: each row still gets the donor
    its own draw selects within its own leaf."""
    from synth_assets.synthesis.cart import LeafDonors

    rng = np.random.default_rng(0)
    leaf_ids = rng.integers(0, 40, 5000)
    donors = LeafDonors.build(leaf_ids, rng.normal(size=5000), np.arange(5000), smoothing=False)
    weighted = donors.reweighted(rng.standard_exponential(5000))
    rows = rng.integers(0, 40, 2000)
    drawn, records = weighted.draw_with_records(rows, np.random.default_rng(1))
    pos = np.searchsorted(weighted.leaves, rows)
    starts, counts = weighted.starts[pos], weighted.counts[pos]
    cumulative = weighted.cumulative_weight
    assert cumulative is not None
    low, high = cumulative[starts], cumulative[starts + counts]
    u = np.random.default_rng(1).random(len(rows))
    expected = np.array([np.searchsorted(cumulative, t, side="right") - 1 for t in low + u * (high - low)])
    np.testing.assert_array_equal(records, weighted.records[np.clip(expected, starts, starts + counts - 1)])
    assert (leaf_ids[records] == rows).all()  # every donor from the row's own leaf


def test_a_block_drawn_for_no_row_leaves_its_members_empty_not_failing():
    """A household redraw whose wanted structures the model never draws asks the rest of the row for
    no row at all: the block's members then take no leader's record (a KeyError before, which failed
    a 1.2-million-person run's region step)."""
    import numpy as np
    import pandas as pd

    from synth_assets.synthesis import CARTSynthesizer

    rng = np.random.default_rng(0)
    n = 2000
    data = pd.DataFrame({"size": rng.choice(["1", "2", "3"], n), "a": rng.lognormal(5, 1, n).round(2),
                         "b": rng.choice(["x", "y"], n)})
    synth = CARTSynthesizer(seed=1, blocks=[["a", "b"]]).fit(data)
    rows, found = synth.sample_matching(pd.DataFrame({"size": ["9", "9"]}), seed=3)
    assert len(rows) == 0 and len(found) == 0 and list(rows.columns) == list(data.columns)
    empty = synth._fill_steps(np.full((0, len(synth._steps)), np.nan), np.random.default_rng(0), 0, len(synth._steps))
    assert empty.shape == (0, len(synth._steps))
    rows, found = synth.sample_matching(pd.DataFrame({"size": ["9", "2"]}), seed=3)
    assert found.tolist() == [1] and rows["size"].tolist() == ["2"]


def test_the_model_frame_holds_label_columns_as_categoricals_of_their_labels(fitted: CARTSynthesizer) -> None:
    """CART's matrix holds codes: its model frame hands each label column over as a categorical of its labels
    (decoded by code, ``transform.label_codes``), every row's value the label of its code."""
    frame = fitted._sample_model(300, np.random.default_rng(4))
    labels = fitted.transformer.categorical_labels
    assert labels
    for column, column_labels in labels.items():
        assert isinstance(frame[column].dtype, pd.CategoricalDtype), column
        assert list(frame[column].cat.categories) == column_labels, column
        assert frame[column].notna().all(), column  # a code of the labels, none outside them
