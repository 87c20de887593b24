"""neural_draw: a torch network defines where a recipient stands; a real donor is drawn there."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synth_assets.matching import fuse
from synth_assets.matching.diagnostics import weighted_ks, weighted_tvd
from synth_assets.matching.methods import neural
from synth_assets.matching.problem import build_problem
from synth_assets_tests.matching.data import X, Z, count_trainings, survey_pair


@pytest.fixture(scope="module")
def pair() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return survey_pair(4000, 1500, seed=3)


@pytest.fixture(scope="module")
def fused(pair):
    recipient, donor, _ = pair
    return fuse(recipient, donor, on=X, impute=Z, donor_weight="weight", method="neural_draw", seed=1)


def test_draws_keep_the_marginal_where_the_plug_in_prediction_collapses(pair, fused) -> None:
    recipient, donor, _ = pair
    drawn_tvd = weighted_tvd(fused.data["status"], donor["status"], None, donor["weight"])
    # The same network's modal class, plugged in, over-represents the majority class.
    problem = build_problem(
        recipient, donor, on=X, impute=["status"], recipient_weight=None, donor_weight="weight",
        donation_classes=None, distance="gower", auxiliary=None,
    )
    head = neural.target_head("status", donor["status"], problem.donor_weights, 10)
    inputs = neural.NetworkInputs.fit(recipient, donor, X, problem.donor_weights)
    x_rec, x_don = inputs.recipients(np.arange(len(recipient))), inputs.donors
    net, _ = neural.fit_network(
        x_don, [head], problem.donor_weights, 0, hidden=64, layers=2, dropout=0.0, epochs=200,
        batch_size=256, lr=3e-3, weight_decay=1e-4, patience=10, validation=0.2, refit=True, threads=1,
    )
    rec_proba = neural.predict(net, x_rec)
    levels = pd.factorize(donor["status"].astype(object), use_na_sentinel=False)[1]
    mode = pd.Series(np.asarray(levels)[rec_proba[0].argmax(axis=1)])
    argmax_tvd = weighted_tvd(mode, donor["status"].astype(object), None, donor["weight"])
    assert drawn_tvd < 0.03
    assert argmax_tvd > 0.1
    # The predicted probabilities are calibrated on average: their mean is the donor's share.
    share_work = np.average(donor["status"] == "work", weights=donor["weight"])
    assert abs(rec_proba[0][:, list(levels).index("work")].mean() - share_work) < 0.03


def test_whole_block_from_one_donor_with_spread_and_spike_kept(pair, fused) -> None:
    _, donor, _ = pair
    data = fused.data
    assert fused.donor_index is not None
    assert (data["annual_hours"] == 52 * data["hours"]).all()  # a within-survey relation survives
    assert (data[Z].to_numpy() == donor[Z].to_numpy()[fused.donor_index]).all()
    assert weighted_ks(data["hours"], donor["hours"], None, donor["weight"]) < 0.05
    assert data["hours"].std() > 0.9 * donor["hours"].std()  # a conditional mean would shrink it
    assert abs((data["hours"] == 0).mean() - np.average(donor["hours"] == 0, weights=donor["weight"])) < 0.03
    assert ((data["status"] == "work") == (data["hours"] > 0)).all()
    assert (data[Z].dtypes == donor[Z].dtypes).all()


def test_x_by_z_relation_is_kept(pair, fused) -> None:
    recipient, donor, _ = pair
    random = fuse(recipient, donor, on=X, impute=Z, donor_weight="weight", method="random_hotdeck")
    assert fused.diagnostics.mean_x_by_z_tvd < 0.05
    assert fused.diagnostics.mean_x_by_z_tvd < 0.5 * random.diagnostics.mean_x_by_z_tvd
    # Retirement after 60: the age profile of status survives the fusion.
    old = fused.data["age"] >= 60
    assert (fused.data.loc[old, "status"] == "retired").mean() > 0.6
    assert (fused.data.loc[~old, "status"] == "retired").mean() < 0.1
    extra = fused.diagnostics.extra
    assert extra["draw"] == "match" and extra["best_epoch"] >= 1 and extra["parameters"] > 0


def test_donor_weights_are_honoured() -> None:
    """Z independent of X; heavy donors (weight 10) say "heavy": about 10/11 of recipients must too."""
    rng = np.random.default_rng(0)
    n = 1000
    donor = pd.DataFrame({"age": rng.integers(16, 90, n), "sex": rng.choice(["f", "m"], n)})
    heavy = np.arange(n) % 2 == 0
    donor["z"] = np.where(heavy, "heavy", "light")
    donor["w"] = np.where(heavy, 10.0, 1.0)
    recipient = pd.DataFrame({"age": rng.integers(16, 90, 4000), "sex": rng.choice(["f", "m"], 4000)})
    weighted = fuse(recipient, donor, on=["age", "sex"], impute=["z"], donor_weight="w", method="neural_draw")
    share = (weighted.data["z"] == "heavy").mean()
    assert 0.87 < share < 0.95
    unweighted = fuse(recipient, donor, on=["age", "sex"], impute=["z"], method="neural_draw")
    assert 0.44 < (unweighted.data["z"] == "heavy").mean() < 0.56


def test_seeded_and_classes_respected(pair) -> None:
    recipient, donor, _ = pair
    recipient, donor = recipient.iloc[:1500], donor.iloc[:800]
    common = dict(on=["age", "region"], impute=Z, donor_weight="weight", donation_classes=["sex"], method="neural_draw")
    first = fuse(recipient, donor, seed=7, **common)
    again = fuse(recipient, donor, seed=7, **common)
    other = fuse(recipient, donor, seed=8, **common)
    assert np.array_equal(first.donor_index, again.donor_index)
    assert not np.array_equal(first.donor_index, other.donor_index)
    assert (donor["sex"].to_numpy()[first.donor_index] == recipient["sex"].to_numpy()).all()


def test_level_draw_and_numeric_missing_values(pair) -> None:
    recipient, donor, _ = pair
    donor = donor.assign(hours=donor["hours"].where(donor["status"] == "work"))  # not asked of non-workers
    result = fuse(
        recipient, donor, on=X, impute=["status", "hours"], donor_weight="weight", method="neural_draw",
        draw="level", target="hours",
    )
    assert result.diagnostics.extra["target"] == "hours"
    assert weighted_tvd(result.data["status"], donor["status"], None, donor["weight"]) < 0.03
    missing_share = np.average(donor["hours"].isna(), weights=donor["weight"])
    assert abs(result.data["hours"].isna().mean() - missing_share) < 0.03
    assert (result.data["hours"].isna() == (result.data["status"] != "work")).all()


def test_numeric_inputs_are_ranked_and_scaled() -> None:
    donor = pd.DataFrame({"income": [0.0, 0.0, 10.0, 1e6], "group": ["a", "b", "a", "b"]})
    recipient = pd.DataFrame({"income": [np.nan, 5.0, 2e6], "group": ["a", "c", "b"]})
    inputs = neural.NetworkInputs.fit(recipient, donor, ["income", "group"], np.ones(4))
    x_rec, x_don = inputs.recipients(np.arange(3)), inputs.donors
    # income: rank, signed log, missing flag; group: one-hot on the levels of both sides (a, b, c).
    assert x_don.shape == (4, 6) and x_rec.shape == (3, 6) and x_don.dtype == np.float32
    ranks = x_don[:, 0] / np.sqrt(12.0) + 0.5
    assert np.allclose(ranks, [0.25, 0.25, 0.625, 0.875])  # mid-ranks, ties share one
    assert x_rec[0, 2] == 1.0 and x_rec[0, 0] == 0.0  # missing: flagged, centred
    assert x_rec[2, 0] == pytest.approx(0.5 * np.sqrt(12.0))  # beyond the donors: the top rank
    # group levels in order of appearance, recipient first: a, c, b; no donor has c.
    assert x_rec[1, 3:].tolist() == [0.0, 1.0, 0.0] and x_don[:, 3:].sum(axis=0).tolist() == [2.0, 0.0, 2.0]


def test_bad_options_and_threads_restored(pair) -> None:
    import torch

    recipient, donor, _ = pair
    recipient, donor = recipient.iloc[:200], donor.iloc[:200]
    with pytest.raises(ValueError, match="draw must be one of"):
        fuse(recipient, donor, on=X, impute=Z, method="neural_draw", draw="mode")
    with pytest.raises(ValueError, match="k must be at least 1"):
        fuse(recipient, donor, on=X, impute=Z, method="neural_draw", k=0)
    with pytest.raises(ValueError, match="target 'income' is not one of the imputed"):
        fuse(recipient, donor, on=X, impute=Z, method="neural_draw", target="income")
    before = torch.get_num_threads()
    fuse(recipient, donor, on=X, impute=Z, method="neural_draw", epochs=5)
    assert torch.get_num_threads() == before


def test_recipient_inputs_by_block_are_the_rows_of_the_whole() -> None:
    rng = np.random.default_rng(5)
    donor = pd.DataFrame({"income": rng.lognormal(9, 1, 300), "group": rng.choice(["a", "b"], 300),
                          "count": pd.array(rng.integers(0, 4, 300), dtype="Int64")})
    recipient = pd.DataFrame({"income": np.where(rng.random(900) < 0.1, np.nan, rng.lognormal(9, 1, 900)),
                              "group": rng.choice(["a", "b", "c"], 900),
                              "count": pd.array(rng.integers(0, 6, 900), dtype="Int64")})
    inputs = neural.NetworkInputs.fit(recipient, donor, ["income", "group", "count"], rng.uniform(0.5, 2, 300))
    whole = inputs.recipients(np.arange(900))
    assert whole.shape == (900, 3 + 3 + 2) and inputs.donors.shape == (300, 8)
    rows = rng.permutation(900)[:250]
    np.testing.assert_array_equal(inputs.recipients(rows), whole[rows])
    np.testing.assert_array_equal(inputs.recipients(np.arange(0)), whole[:0])


@pytest.mark.parametrize("draw", ["match", "level"])
def test_recipients_go_from_inputs_to_donors_a_block_at_a_time(pair, monkeypatch, draw) -> None:
    """A register larger than a block is fused a block at a time, and fused as well as at once."""
    recipient, donor, _ = pair
    common = dict(on=["age", "region"], impute=Z, donor_weight="weight", donation_classes=["sex"],
                  method="neural_draw", draw=draw, seed=4)
    at_once = fuse(recipient, donor, **common)
    sizes: list[int] = []
    whole_rows = neural.NetworkInputs.recipients

    def recorded(self, rows):
        sizes.append(len(rows))
        return whole_rows(self, rows)

    monkeypatch.setattr(neural, "RECIPIENT_BLOCK", 300)
    monkeypatch.setattr(neural.NetworkInputs, "recipients", recorded)
    blocked = fuse(recipient, donor, **common)
    # every recipient once, never more than a block's inputs at a time
    assert max(sizes) == 300 and sum(sizes) == len(recipient)
    assert (donor["sex"].to_numpy()[blocked.donor_index] == recipient["sex"].to_numpy()).all()
    assert (blocked.data[Z].to_numpy() == donor[Z].to_numpy()[blocked.donor_index]).all()
    assert not np.array_equal(blocked.donor_index, at_once.donor_index)  # other streams of draws...
    for result in (blocked, at_once):  # ...from one conditional distribution
        assert result.diagnostics.mean_x_by_z_tvd < 0.06
        assert weighted_tvd(result.data["status"], donor["status"], None, donor["weight"]) < 0.03
    assert abs(blocked.diagnostics.mean_x_by_z_tvd - at_once.diagnostics.mean_x_by_z_tvd) < 0.02


def test_inputs_laid_out_by_the_donors_alone_are_the_same_for_any_recipients() -> None:
    """With ``donors_only`` the donors' matrix does not depend on the recipients (a numeric column
    always flagged, a categorical one on the donors' levels), and a level the donors lack sets no input."""
    rng = np.random.default_rng(6)
    donor = pd.DataFrame({"income": rng.lognormal(9, 1, 200), "group": rng.choice(["a", "b"], 200)})
    some = pd.DataFrame({"income": rng.lognormal(9, 1, 50), "group": rng.choice(["b", "a"], 50)})
    other = pd.DataFrame({"income": np.r_[np.nan, rng.lognormal(9, 1, 49)], "group": ["c", *rng.choice(["a"], 49)]})
    weights = rng.uniform(0.5, 2, 200)
    first = neural.NetworkInputs.fit(some, donor, ["income", "group"], weights, donors_only=True)
    second = neural.NetworkInputs.fit(other, donor, ["income", "group"], weights, donors_only=True)
    np.testing.assert_array_equal(first.donors, second.donors)
    assert first.donors.shape == (200, 3 + 2)
    x = second.recipients(np.arange(50))
    assert (x[0, 3:] == 0).all() and x[0, 2] == 1.0  # level "c": no input; the missing income flagged
    assert (x[1:, 3:].sum(axis=1) == 1).all()
    # the layout from both sides differs as soon as the recipients bring a level
    assert neural.NetworkInputs.fit(other, donor, ["income", "group"], weights).donors.shape != first.donors.shape


def test_a_network_cache_trains_once_for_one_set_of_donors(pair, monkeypatch) -> None:
    """Fusions of other recipients with the same donors take the first fusion's network; their draws
    stay their own."""
    recipient, donor, _ = pair
    trained = count_trainings(monkeypatch)
    cache = neural.NetworkCache()
    common = dict(on=X, impute=Z, donor_weight="weight", method="neural_draw", networks=cache)
    first = fuse(recipient.iloc[:2000], donor, seed=1, **common)
    second = fuse(recipient.iloc[2000:], donor, seed=2, **common)
    assert len(trained) == 1 and cache.hits == 1
    assert first.diagnostics.extra["best_epoch"] == second.diagnostics.extra["best_epoch"]
    fuse(recipient.iloc[2000:], donor.iloc[:-10], seed=2, **common)  # other donors: a network of their own
    assert len(trained) == 2
    for result in (first, second):
        assert result.diagnostics.mean_x_by_z_tvd < 0.07


def test_training_steps_every_parameter_at_once_with_the_single_tensor_arithmetic(monkeypatch) -> None:
    """Adam's multi-tensor step (one call for every parameter) trains the network the per-parameter
    loop trains, bit for bit: the matched data do not depend on which the optimiser runs."""
    import torch

    rng = np.random.default_rng(2)
    x = rng.normal(size=(600, 12)).astype(np.float32)
    heads = [neural.Head(name=f"z{k}", codes=rng.integers(0, k, size=600), n_levels=k, binned=False) for k in (3, 5)]
    weights = rng.uniform(0.5, 2.0, size=600)
    options = dict(hidden=16, layers=2, dropout=0.0, epochs=8, batch_size=64, lr=3e-3, weight_decay=1e-4,
                   patience=3, validation=0.2, refit=True, threads=1)
    adam = torch.optim.Adam
    asked: list[object] = []

    def recording(*args, **kwargs):
        asked.append(kwargs.get("foreach"))
        return adam(*args, **kwargs)

    def single_tensor(*args, **kwargs):
        return adam(*args, **{**kwargs, "foreach": False})

    monkeypatch.setattr(torch.optim, "Adam", recording)
    multi, _ = neural.fit_network(x, heads, weights, 7, **options)
    assert asked and all(foreach is True for foreach in asked)
    monkeypatch.setattr(torch.optim, "Adam", single_tensor)
    single, _ = neural.fit_network(x, heads, weights, 7, **options)
    for (name, a), (_, b) in zip(multi.state_dict().items(), single.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_a_batch_loss_gathers_every_head_at_once_and_is_the_per_head_sum_bit_for_bit() -> None:
    """The loss gathers a batch's codes of every head in one index and totals its weights once; the
    loss and every gradient are those of the per-head sum (each head's own gather and weight total)."""
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(4)
    heads = [neural.Head(name=f"z{k}", codes=rng.integers(0, k, size=500), n_levels=k, binned=False)
             for k in (2, 4, 7)]
    x = torch.from_numpy(rng.normal(size=(500, 9)).astype(np.float32))
    weights = torch.from_numpy(rng.uniform(0.5, 2.0, size=500).astype(np.float32))
    rows = torch.from_numpy(rng.choice(500, size=77, replace=False))
    torch.manual_seed(0)
    net = neural._network(9, 8, 2, heads, 0.0)

    def per_head_gradients() -> tuple[torch.Tensor, list[torch.Tensor]]:
        net.zero_grad()
        outputs = net(x[rows])
        w = weights[rows]
        total = 0.0
        for out, head in zip(outputs, heads, strict=True):
            y = torch.from_numpy(head.codes)[rows]
            total = total + (F.cross_entropy(out, y, reduction="none") * w).sum() / w.sum()
        total.backward()
        return total.detach(), [p.grad.clone() for p in net.parameters()]

    expected, expected_grads = per_head_gradients()
    net.zero_grad()
    targets = torch.from_numpy(np.stack([h.codes for h in heads]))
    loss = neural._loss(net, x, targets, weights, rows)
    loss.backward()
    assert torch.equal(loss.detach(), expected)
    for got, want in zip((p.grad for p in net.parameters()), expected_grads, strict=True):
        assert torch.equal(got, want)


def test_held_out_rows_keep_a_record_with_its_copies_and_are_the_rows_alone_without() -> None:
    import torch

    alone = neural.held_out_rows(500, 0.2, torch.Generator().manual_seed(4))
    assert torch.equal(alone, torch.randperm(500, generator=torch.Generator().manual_seed(4))[:100])
    copies = np.random.default_rng(0).integers(0, 300, 500)  # 500 rows, some records copied
    copies = pd.factorize(copies)[0]
    held = neural.held_out_rows(500, 0.2, torch.Generator().manual_seed(4), copies).numpy()
    held_records = set(copies[held])
    assert len(held_records) == round(0.2 * (copies.max() + 1))
    kept = np.setdiff1d(np.arange(500), held)
    assert held_records.isdisjoint(copies[kept])  # no record on both sides
    assert neural.held_out_rows(40, 0.2, torch.Generator(), np.arange(40) % 19) is None  # 19 records: too few


def test_a_bootstrap_draws_copies_stop_the_training_where_the_delivered_records_do(pair) -> None:
    from synth_assets.matching.resample import resample_survey

    _, donor, _ = pair

    def best_epoch(table: pd.DataFrame, copies: np.ndarray | None) -> int:
        weights = table["weight"].to_numpy()
        heads = [neural.target_head(z, table[z], weights, 10) for z in Z]
        inputs = neural.NetworkInputs.fit(table, table, X, weights)
        _, training = neural.fit_network(
            inputs.donors, heads, weights, 0, hidden=64, layers=2, dropout=0.0, epochs=200, batch_size=256,
            lr=3e-3, weight_decay=1e-4, patience=10, validation=0.2, refit=False, threads=1, copies=copies)
        return training.best_epoch

    drawn = resample_survey(donor.assign(hid=np.arange(len(donor))), np.random.default_rng(0), weight="weight",
                            household_id="hid", copies_column="copy_of")
    delivered = best_epoch(donor, None)
    together = best_epoch(drawn, pd.factorize(drawn["copy_of"])[0])
    # rows held out alone, their copies trained on: the held-out loss keeps falling as the rows are learnt
    alone = best_epoch(drawn, None)
    assert alone >= 2 * together
    assert together <= delivered + 10  # no longer than the survey as delivered, give or take the patience


def test_fuse_hands_the_donors_copies_to_the_network(pair, monkeypatch) -> None:
    recipient, donor, _ = pair
    seen: list[np.ndarray | None] = []
    fit_network = neural.fit_network

    def recorded(*args, **kwargs):
        seen.append(kwargs.get("copies"))
        return fit_network(*args, **kwargs)

    monkeypatch.setattr(neural, "fit_network", recorded)
    doubled = pd.concat([donor, donor], ignore_index=True).assign(copy_of=np.tile(np.arange(len(donor)), 2))
    fuse(recipient.iloc[:200], doubled, on=X, impute=Z, donor_weight="weight", method="neural_draw", seed=1,
         donor_copies="copy_of", epochs=3)
    fuse(recipient.iloc[:200], donor, on=X, impute=Z, donor_weight="weight", method="neural_draw", seed=1, epochs=3)
    assert seen[1] is None
    assert seen[0] is not None and (seen[0] == np.tile(np.arange(len(donor)), 2)).all()
    with pytest.raises(ValueError, match="'copy_of'.*missing values"):
        fuse(recipient.iloc[:200], doubled.assign(copy_of=doubled["copy_of"].where(doubled.index > 0)), on=X,
             impute=Z, donor_weight="weight", method="neural_draw", donor_copies="copy_of")
