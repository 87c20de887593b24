"""Calibration to the register: targets with small cells merged, selection, weights, residuals."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from synth_assets.calibration import (
    CalibrationError,
    CalibrationSpec,
    InsufficientCandidates,
    Margin,
    calibrated_population,
    merge_small_cells,
    rake,
    register_targets,
    select_households,
)

SPEC = CalibrationSpec(
    margins=(Margin("person", ("region", "sex", "age")), Margin("household", ("region", "size"))),
    totals=("income",),
    bands={"age": (0, 15, 65)},
    min_cell=10,
)


def population(n_households: int, seed: int, *, large_share: float = 0.3, id_start: int = 1) -> pd.DataFrame:
    """Households of 1-5 persons in two regions; ``large_share`` of them with 4-5 members."""
    rng = np.random.default_rng(seed)
    large = rng.random(n_households) < large_share
    size = np.where(large, rng.integers(4, 6, n_households), rng.integers(1, 4, n_households))
    household = np.repeat(np.arange(id_start, id_start + n_households), size)
    region = np.repeat(rng.choice(["north", "south"], n_households, p=[0.6, 0.4]), size)
    age = rng.integers(0, 90, len(household))
    income = np.where(age >= 18, rng.lognormal(10, 1, len(household)), 0.0) * (rng.random(len(household)) < 0.7)
    return pd.DataFrame({
        "household_id": household,
        "region": pd.Categorical(region, categories=["north", "south"]),
        "sex": pd.Categorical(rng.choice(["female", "male"], len(household)), categories=["female", "male"]),
        "age": age, "size": np.repeat(size, size), "income": income,
    })


def households_like(structures: pd.DataFrame, seed: int) -> pd.DataFrame:
    """One household per row of ``structures``, of that region and size (a model's draw given them)."""
    pool = population(2_000, seed=seed % 1000, id_start=50_000)
    heads = pool.drop_duplicates("household_id")
    chosen = [heads.loc[(heads["region"] == r) & (heads["size"] == n), "household_id"].iloc[i]
              for i, (r, n) in enumerate(zip(structures["region"], structures["size"]))]
    return pool[pool["household_id"].isin(chosen)]


def test_small_cells_are_merged_along_the_last_variable_first():
    index = pd.MultiIndex.from_product([["a", "b"], ["0-14", "15-64", "65+"]], names=["region", "age"])
    counts = pd.Series([50, 40, 3, 20, 4, 5], index=index)
    groups = merge_small_cells(counts, 10)
    # a/65+ (3) joins its only neighbour a/15-64; in b, 4 and 5 merge together and reach 9 < 10,
    # so they join b/0-14
    assert groups[("a", "65+")] == groups[("a", "15-64")] != groups[("a", "0-14")]
    assert groups[("b", "15-64")] == groups[("b", "65+")] == groups[("b", "0-14")]
    sizes = counts.groupby(groups.to_numpy()).sum()
    assert (sizes >= 10).all()


def test_register_targets_reproduce_no_small_count():
    register = population(400, seed=1)
    targets = register_targets(register, SPEC, "household_id")
    counts = targets.controls[targets.controls["kind"] == "count"]
    assert (counts["target"] >= SPEC.min_cell).all(), counts
    assert targets.persons == len(register)
    assert targets.households == register["household_id"].nunique()
    total = targets.controls.set_index("control")
    assert total.at["total:income", "target"] == pytest.approx(register["income"].sum())
    assert total.at["nonzero:income", "target"] == (register["income"] != 0).sum()
    # every cell of the cross product belongs to exactly one control
    cells = [key for c in counts["cells"] for key in json.loads(c)]
    assert len(cells) == len(set(cells)) == 2 * 2 * 3 + 2 * 5


def test_register_targets_of_a_register_on_disk_read_a_row_group_at_a_time_are_those_of_the_frame(
        tmp_path, monkeypatch):
    """``calibration_targets`` reads the stored register in parts of whole households: the same controls
    and targets as the register whole (a household straddling two row groups counted once, an
    unbanded integer's levels gathered over the parts, quantile bands from their whole column, the
    amounts top-coded first), and no read of more than a row group but the one-column quantile."""
    from synth_assets.calibration.tails import top_code
    from synth_assets.common.frames import ParquetTable, write_rows

    register = population(400, seed=4)
    register.loc[register.index[-1], "income"] = 1e9  # beyond the top-coding threshold below
    spec = replace(SPEC, margins=(*SPEC.margins, Margin("household", ("size",))), quantiles={"income": 3})
    path = tmp_path / "register.parquet"
    write_rows(register, path, row_group_rows=97)  # 97 rows: households cut across row groups
    groups, reads = [], []
    frames, read = ParquetTable.frames, ParquetTable.read
    monkeypatch.setattr(ParquetTable, "frames", lambda self, columns=None: (
        groups.append(len(f)) or f for f in frames(self, columns)))
    monkeypatch.setattr(ParquetTable, "read", lambda self, columns=None: reads.append(columns) or read(self, columns))
    thresholds = {"income": 100_000.0}
    stored = register_targets(ParquetTable(path), spec, "household_id", top_coding=thresholds)
    whole = register_targets(top_code(register, thresholds)[0], spec, "household_id")
    assert len(groups) > 5 and max(groups) == 97 and reads == [["income"]]
    pd.testing.assert_frame_equal(stored.controls.drop(columns="target"), whole.controls.drop(columns="target"))
    np.testing.assert_allclose(stored.controls["target"], whole.controls["target"], rtol=1e-12)
    assert stored.households == register["household_id"].nunique()
    assert stored.controls.set_index("control").at["total:income", "target"] < 1e9  # top-coded


def test_selection_meets_the_register_from_a_biased_surplus():
    register = population(600, seed=2, large_share=0.3)
    # the candidates over-represent small households and the north: calibration must undo it
    candidates = population(2400, seed=3, large_share=0.1, id_start=10_000)
    targets = register_targets(register, SPEC, "household_id")
    result = select_households(candidates, targets, "household_id", seed=0)
    residuals = result.residuals
    assert result.within_tolerance, residuals[~residuals["within"]]
    households = residuals[residuals["margin"] == "households by region x size"]
    assert (households["difference"] == 0).all()  # the stratifying margin is exact
    released = result.data.drop_duplicates("household_id")["size"].value_counts(normalize=True).sort_index()
    truth = register.drop_duplicates("household_id")["size"].value_counts(normalize=True).sort_index()
    assert np.abs(released - truth).sum() / 2 < 0.005
    uncalibrated = candidates.drop_duplicates("household_id")["size"].value_counts(normalize=True).sort_index()
    assert np.abs(uncalibrated - truth).sum() / 2 > 0.1  # the test's bias is real
    # chosen households are whole and unedited candidate households
    merged = result.data.drop(columns="calibration_weight").merge(candidates, how="left", indicator=True)
    assert (merged["_merge"] == "both").all()
    # weights meet every control, income total included
    weighted = targets.residuals(result.data, "household_id", result.data["calibration_weight"].to_numpy())
    assert weighted["relative"].abs().max() < 1e-6
    assert result.data.groupby("household_id")["calibration_weight"].nunique().max() == 1


def test_a_margin_with_bands_of_its_own_meets_the_register_in_them():
    """The spec's wide age bands leave the ages within them to the candidates (here skewed to each
    band's young end); a national margin of 5-year bands of its own brings them to the register's."""
    register = population(600, seed=2)
    candidates = population(2400, seed=3, id_start=10_000)
    adults = candidates["age"].between(15, 64)  # squeezed to 15-64's young end, still inside 15-64
    candidates.loc[adults, "age"] = 15 + ((candidates.loc[adults, "age"] - 15) / 50) ** 2 * 50 // 1
    fine = tuple(float(e) for e in range(0, 90, 5))
    national = Margin("person", ("age",), (("age", fine),))
    assert national.name == "persons by age (age cut at " + ", ".join(f"{e:g}" for e in fine) + ")"
    single_years = Margin("person", ("age", "sex"), (("age", tuple(float(e) for e in range(91))),))
    assert single_years.name == "persons by age x sex (age in single units from 0 to 89, then 90+)"

    def five_year_tvd(data: pd.DataFrame) -> float:
        cut = [pd.cut(d["age"], [*fine, 200], right=False).value_counts(normalize=True) for d in (data, register)]
        return float((cut[0] - cut[1]).abs().sum() / 2)

    results = {}
    for name, spec in (("wide", SPEC), ("fine", replace(SPEC, margins=(*SPEC.margins, national)))):
        targets = register_targets(register, spec, "household_id")
        results[name] = select_households(candidates, targets, "household_id", seed=0)
        assert results[name].within_tolerance, results[name].residuals[~results[name].residuals["within"]]
    assert national.name in set(register_targets(register, replace(SPEC, margins=(*SPEC.margins, national)),
                                                 "household_id").controls["margin"])
    assert five_year_tvd(results["wide"].data) > 0.1  # the skew survives the wide bands
    assert five_year_tvd(results["fine"].data) < 0.02


def test_too_few_candidates_is_an_error_naming_the_cell():
    register = population(600, seed=2)
    candidates = population(300, seed=3, id_start=10_000)
    targets = register_targets(register, SPEC, "household_id")
    with pytest.raises(InsufficientCandidates, match=r"region=.*size=.*short"):
        select_households(candidates, targets, "household_id")


def test_calibrated_population_draws_more_until_every_stratum_is_covered():
    register = population(600, seed=2)
    targets = register_targets(register, SPEC, "household_id")
    calls = []

    def draw(persons: int, seed: int) -> pd.DataFrame:
        calls.append(persons)
        return population(max(persons // 6, 1), seed=seed, id_start=10_000)  # too few per call

    result = calibrated_population(draw, targets, "household_id", surplus=2.0, seed=0)
    assert len(calls) > 1
    assert result.within_tolerance
    assert result.data["household_id"].drop_duplicates().size == targets.households
    assert (result.data["household_id"] >= 10_000).all()  # renumbered ids stay synthetic


def test_a_generated_cell_missing_from_the_targets_is_named():
    register = population(300, seed=2)
    targets = register_targets(register, SPEC, "household_id")
    candidates = population(900, seed=3, id_start=10_000)
    candidates["region"] = candidates["region"].cat.add_categories(["east"])
    candidates.loc[candidates.index[:5], "region"] = "east"
    with pytest.raises(CalibrationError, match="region=east"):
        select_households(candidates, targets, "household_id")


def test_raking_matches_iterative_proportional_fitting():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, 500)
    b = rng.integers(0, 4, 500)
    design = np.column_stack([a == k for k in range(3)] + [b == k for k in range(4)]).astype(float)
    targets = np.array([200.0, 150, 150, 100, 120, 130, 150])
    result = rake(design, targets)
    assert result.converged
    # classical IPF (Deming & Stephan) on the same margins gives the same weights
    w = np.ones(500)
    for _ in range(500):
        for k in range(3):
            w[a == k] *= targets[k] / w[a == k].sum()
        for k in range(4):
            w[b == k] *= targets[3 + k] / w[b == k].sum()
    np.testing.assert_allclose(result.weights, w, rtol=1e-6)


def test_raking_meets_counts_and_amount_totals_in_euros():
    """Household and person counts beside income totals in euros: unscaled, the Newton system was
    so ill-conditioned that the search stopped unconverged on this design; scaled by the targets, a
    few steps (a 300,000-person release's weights: 41 steps before, 6 now, the same weights)."""
    rng = np.random.default_rng(2)
    n = 6000
    size = rng.integers(1, 7, n)
    columns = [np.eye(30)[rng.integers(0, 30, n)]]  # a household margin
    for _ in range(3):  # person margins: each household's members spread over 15 cells
        members = np.repeat(np.arange(n), size)
        columns.append(np.bincount(members * 15 + rng.integers(0, 15, len(members)), minlength=n * 15)
                       .reshape(n, 15).astype(float))
    earners = rng.random((n, 3)) < 0.5
    columns += [rng.lognormal(10, 1.5, (n, 3)) * earners * size[:, None], earners * size[:, None]]
    design = np.hstack(columns)
    targets = np.exp(rng.normal(0, 0.05, n)) @ design  # weights that meet them exist
    result = rake(design, targets)
    assert result.converged and result.iterations <= 10, result
    np.testing.assert_allclose(result.weights @ design, targets, rtol=1e-8)
    assert (result.weights > 0).all()
    # the Hessian summed a few rows at a time (bounded memory): the same steps, the same weights
    pieces = rake(design, targets, hessian_rows=777)
    assert pieces.iterations == result.iterations
    np.testing.assert_allclose(pieces.weights, result.weights, rtol=1e-8)  # both within the 1e-9 tolerance


def test_the_newton_hessian_is_the_same_sum_on_any_number_of_threads():
    # pieces of rows side by side on threads, added up in order: bit for bit the one-thread sum
    import scipy.sparse as sp

    from synth_assets.calibration.weights import _hessian

    rng = np.random.default_rng(3)
    design = sp.random(5_000, 40, density=0.1, random_state=4, format="csr") * 1000.0
    w = rng.lognormal(0, 1, 5_000)
    one = _hessian(design, w, rows=700, threads=1)
    np.testing.assert_allclose(one, design.T.toarray() @ (design.toarray() * w[:, None]), rtol=1e-12)
    for threads in (2, 3, None):
        assert np.array_equal(_hessian(design, w, rows=700, threads=threads), one)


def scarce_cell_design() -> tuple[np.ndarray, np.ndarray]:
    """Two margins over 800 units (3 and 4 cells, adding up to one total); the fourth cell of the
    second, about 32 units, asks 1.8 times their number: raking weighs some of them beyond 2."""
    rng = np.random.default_rng(3)
    n = 800
    a = rng.integers(0, 3, n)
    b = np.where(rng.random(n) < 0.04, 3, rng.integers(0, 3, n))
    design = np.column_stack([a == k for k in range(3)] + [b == k for k in range(4)]).astype(float)
    counts = design.sum(axis=0)
    targets = np.concatenate([counts[:3] * [1.25, 1.0, 0.8], counts[3:6] * 0.97, [counts[6] * 1.8]])
    targets[:3] *= targets[3:].sum() / targets[:3].sum()
    return design, targets


def test_bounded_raking_keeps_every_weight_within_its_bounds_and_meets_the_controls():
    """The logit distance: where raking weighs some units of a scarce cell beyond 2 (those that
    another margin raises too), bounds of (0.5, 2) move the cell's weight to its other units, the
    controls still met; bounds no weighting can meet leave it unconverged."""
    design, targets = scarce_cell_design()
    unbounded = rake(design, targets)
    assert unbounded.converged and unbounded.weights.max() > 2.0  # the case bounds are for
    bounded = rake(design, targets, bounds=(0.5, 2.0))
    assert bounded.converged, bounded
    assert bounded.weights.min() > 0.5 and bounded.weights.max() < 2.0
    np.testing.assert_allclose(bounded.weights @ design, targets, rtol=1e-8)
    # no bounds that hold the scarce cell's units below 1.5 can give it 1.8 times their number
    infeasible = rake(design, targets, bounds=(0.5, 1.5))
    assert not infeasible.converged and infeasible.max_relative_residual > 1e-3
    # wide bounds give raking's weights back (the logit distance tends to the exponential one)
    np.testing.assert_allclose(rake(design, targets, bounds=(1e-6, 1e6)).weights, unbounded.weights, rtol=1e-3)


def test_bounded_weights_a_thousandth_off_are_kept_and_further_off_are_raked_without_bounds(caplog):
    """A scarce cell asking 1.8 times its units' number: bounds just under 1.8 leave it 2.8e-4 short,
    kept (raking without bounds would stretch a few weights to meet the last digits); bounds of 1.79
    leave it 5.6e-3 short, beyond a thousandth: raked without bounds, exact, and the log says so."""
    import scipy.sparse as sp

    from synth_assets.calibration import selection

    design, targets = scarce_cell_design()
    with caplog.at_level("INFO", logger="synth_assets.calibration"):
        near = selection._weights(sp.csr_matrix(design), targets, (0.5, 1.7995))
    assert not near.converged and near.max_relative_residual <= selection.BOUNDED_RESIDUAL
    assert near.iterations < 20  # ended once its steps stopped halving the residual, not after 100
    assert near.weights.max() <= 1.7995 and "weights within [0.5, 1.7995] meet every control to" in caplog.text
    with caplog.at_level("WARNING", logger="synth_assets.calibration"):
        far = selection._weights(sp.csr_matrix(design), targets, (0.5, 1.79))
    assert far.converged and far.weights.max() > 1.79
    assert "no weights within [0.5, 1.79] meet the controls" in caplog.text


def test_bounds_no_weighting_meets_fall_back_to_raking_with_a_warning(caplog):
    """The selection's weights: within the spec's bounds when they can meet the controls; bounds too
    tight for what a short search (two batches of 64 swaps) leaves off give raking's weights, and
    the log says so."""
    register = population(600, seed=2, large_share=0.3)
    candidates = population(2400, seed=3, large_share=0.1, id_start=10_000)
    targets = register_targets(register, SPEC, "household_id")
    result = select_households(candidates, targets, "household_id", seed=0)
    weights = result.data["calibration_weight"]
    assert SPEC.weight_bounds == (0.5, 2.0) and weights.min() > 0.5 and weights.max() < 2.0
    tight = register_targets(register, replace(SPEC, weight_bounds=(0.99, 1.01)), "household_id")
    with caplog.at_level("WARNING", logger="synth_assets.calibration"):
        fallback = select_households(candidates, tight, "household_id", seed=0, batch=64, max_batches=2)
    assert "no weights within [0.99, 1.01] meet the controls" in caplog.text
    met = tight.residuals(fallback.data, "household_id", fallback.data["calibration_weight"].to_numpy())
    assert met["relative"].abs().max() < 1e-6
    assert not fallback.data["calibration_weight"].between(0.99, 1.01).all()


def test_controls_left_beyond_their_tolerance_are_searched_again(monkeypatch):
    """The chi-square search weighs controls by size, the gate by tolerance: the repair rounds
    weigh the controls still beyond their tolerance more. Searches cut short (two batches of
    64 swaps) leave many beyond; with the repair rounds most are brought within."""
    import synth_assets.calibration.selection as selection

    register = population(600, seed=2, large_share=0.3)
    candidates = population(2400, seed=3, large_share=0.1, id_start=10_000)
    targets = register_targets(register, SPEC, "household_id")

    def beyond(rounds: int) -> int:
        monkeypatch.setattr(selection, "REPAIR_ROUNDS", rounds)
        return sum(
            int((~select_households(candidates, targets, "household_id", seed=seed, batch=64, max_batches=2)
                 .residuals["within"]).sum())
            for seed in range(4)
        )

    without, repaired = beyond(0), beyond(4)
    assert without >= 20
    assert repaired <= without / 4


def test_a_selection_beyond_tolerance_gets_one_more_draw_to_choose_from(monkeypatch):
    import synth_assets.calibration.population as module

    register = population(600, seed=2)
    targets = register_targets(register, SPEC, "household_id")
    draws, selections = [], []
    real_select = module.select_households

    def select(candidates, *args, **kwargs):
        result = real_select(candidates, *args, **kwargs)
        selections.append(len(candidates))
        if len(selections) == 1:  # the first selection misses a control
            result.residuals.loc[result.residuals.index[0], "within"] = False
        return result

    def draw(persons: int, seed: int) -> pd.DataFrame:
        draws.append(seed)
        return population(1500, seed=seed % 1000, id_start=10_000)

    monkeypatch.setattr(module, "select_households", select)
    result = calibrated_population(draw, targets, "household_id", seed=0)
    assert len(draws) == 2 and selections[1] > selections[0]  # chosen again from both draws
    assert result.within_tolerance


def test_a_national_household_margin_holds_the_structure_that_small_areas_merge():
    """Forty small regions: their region x size cells are merged (a region's 4- and 5-person
    households, say, form one stratum), so a model that draws too few 5-person households
    moves the national size table. The national size margin holds it (the catalog's
    ``[household_type, household_size]`` margin, for the same reason)."""
    rng = np.random.default_rng(5)

    def households(n: int, p_size: list[float], id_start: int) -> pd.DataFrame:
        size = rng.choice(np.arange(1, 6), n, p=p_size)
        region = np.repeat(rng.choice([f"r{k:02d}" for k in range(40)], n), size)
        ids = np.repeat(np.arange(id_start, id_start + n), size)
        return pd.DataFrame({"household_id": ids, "region": region, "size": np.repeat(size, size),
                             "sex": rng.choice(["female", "male"], len(ids)), "age": rng.integers(0, 90, len(ids))})

    register = households(1200, [0.3, 0.3, 0.15, 0.13, 0.12], 1)
    candidates = households(6000, [0.3, 0.3, 0.15, 0.2, 0.05], 100_000)  # 5-person households scarce
    local = CalibrationSpec(margins=(Margin("household", ("region", "size")), Margin("person", ("sex", "age"))),
                            bands={"age": (0, 15, 65)}, min_cell=10)
    national = replace(local, margins=(*local.margins, Margin("household", ("size",))))

    def size_tvd(spec: CalibrationSpec) -> float:
        result = select_households(candidates, register_targets(register, spec, "household_id"), "household_id")
        released = result.data.drop_duplicates("household_id")["size"].value_counts(normalize=True)
        truth = register.drop_duplicates("household_id")["size"].value_counts(normalize=True)
        return float(released.sub(truth, fill_value=0).abs().sum() / 2)

    assert size_tvd(local) > 0.01  # the merged strata let the model's size mix through
    assert size_tvd(national) < 0.003


def test_a_stratum_a_few_households_short_gets_a_draw_sized_to_its_shortfall():
    """Four households missing among hundreds drawn need a fraction of a draw, not a whole one."""
    register = population(600, seed=2)
    targets = register_targets(register, SPEC, "household_id")
    sizes = []

    def draw(persons: int, seed: int) -> pd.DataFrame:
        sizes.append(persons)
        households = max(persons // 3, 1)
        drawn = population(households, seed=seed % 1000, id_start=10_000)
        if len(sizes) == 1:  # the first draw leaves the south's 5-person households 4 short
            south5 = drawn.loc[(drawn["region"] == "south") & (drawn["size"] == 5), "household_id"].unique()
            target = int((register.drop_duplicates("household_id").query("region == 'south' and size == 5")).shape[0])
            drop = south5[: max(len(south5) - target + 4, 0)]
            drawn = drawn[~drawn["household_id"].isin(drop)]
        return drawn

    result = calibrated_population(draw, targets, "household_id", surplus=3.0, seed=0)
    assert result.within_tolerance
    assert len(sizes) == 2 and sizes[1] < sizes[0] / 2  # a top-up, not a second whole draw


def test_a_short_stratum_gets_households_drawn_given_its_structure():
    """With ``draw_like``, the households a stratum lacks are drawn given its structure (a few
    households), not by another draw of the whole population of which a few land in it."""
    register = population(600, seed=2)
    targets = register_targets(register, SPEC, "household_id")
    sizes: list[int] = []
    asked: list[pd.DataFrame] = []

    def draw(persons: int, seed: int) -> pd.DataFrame:
        sizes.append(persons)
        drawn = population(max(persons // 3, 1), seed=seed % 1000, id_start=10_000)
        south5 = drawn.loc[(drawn["region"] == "south") & (drawn["size"] == 5), "household_id"].unique()
        target = int((register.drop_duplicates("household_id").query("region == 'south' and size == 5")).shape[0])
        return drawn[~drawn["household_id"].isin(south5[: max(len(south5) - target + 4, 0)])]  # 4 short

    def draw_like(structures: pd.DataFrame, seed: int) -> pd.DataFrame:
        asked.append(structures)
        return households_like(structures, seed)

    result = calibrated_population(draw, targets, "household_id", surplus=3.0, seed=0, draw_like=draw_like)
    assert result.within_tolerance
    assert len(sizes) == 1  # no second draw of the population
    assert len(asked) == 1 and set(asked[0].columns) == {"region", "size"}
    # the short stratum's structure only, about twice its deficit
    assert set(zip(asked[0]["region"], asked[0]["size"])) == {("south", 5)} and 8 <= len(asked[0]) <= 13

    # a draw_like that brings nothing falls back to a sized draw of the population
    sizes.clear()
    result = calibrated_population(draw, targets, "household_id", surplus=3.0, seed=0,
                                   draw_like=lambda structures, seed: register.iloc[:0])
    assert result.within_tolerance and len(sizes) == 2 and sizes[1] < sizes[0] / 2


def test_a_stratum_without_any_candidate_gets_its_structure_from_its_cells():
    """A structure the surplus never drew (no candidate at all in the stratum) is drawn given its
    structure, written back from the stratum's cell keys, not by whole draws of the population."""
    register = population(600, seed=2)
    targets = register_targets(register, SPEC, "household_id")
    sizes: list[int] = []
    asked: list[pd.DataFrame] = []

    def draw(persons: int, seed: int) -> pd.DataFrame:
        sizes.append(persons)
        drawn = population(max(persons // 3, 1), seed=seed % 1000, id_start=10_000)
        south5 = drawn.loc[(drawn["region"] == "south") & (drawn["size"] == 5), "household_id"]
        return drawn[~drawn["household_id"].isin(south5)]  # the model never draws a southern 5

    def draw_like(structures: pd.DataFrame, seed: int) -> pd.DataFrame:
        asked.append(structures)
        return households_like(structures, seed)

    result = calibrated_population(draw, targets, "household_id", surplus=3.0, seed=0, draw_like=draw_like)
    assert result.within_tolerance
    assert len(sizes) == 1  # no whole draw more
    structures = asked[0]
    assert set(zip(structures["region"], structures["size"])) == {("south", 5)}
    # written back with the candidates' dtypes: the region a category of the same levels, the size an integer
    assert structures["region"].dtype == register["region"].dtype and structures["size"].dtype == np.int64
    south5 = register.drop_duplicates("household_id").query("region == 'south' and size == 5").shape[0]
    assert len(structures) == 2 * south5 + 5


def test_cells_are_written_back_as_rows_of_their_values():
    from synth_assets.calibration.margins import cell_keys, rows_of_cells

    frame = pd.DataFrame({"region": pd.Categorical(["north", "south"], categories=["north", "south"]),
                          "size": np.array([1, 5], dtype=np.int64), "kind": ["a", "b"]})
    keys = list(cell_keys(frame, ["region", "size", "kind"], {}))
    rows = rows_of_cells([keys[1], keys[0]], ["region", "size", "kind"], frame, {})
    pd.testing.assert_frame_equal(rows, frame.iloc[[1, 0]].reset_index(drop=True))
    # a cell that names no value of the columns (an unknown region, a size of 2.5) is left out
    odd = rows_of_cells(["west\x1f1\x1fa", "north\x1f2.5\x1fa", keys[0]], ["region", "size", "kind"], frame, {})
    assert odd["region"].tolist() == ["north"] and odd["size"].tolist() == [1] and odd["size"].dtype == np.int64
    # a banded variable's cell is a range, not a value: nothing written back
    assert rows_of_cells(keys, ["region", "size", "kind"], frame, {"size": (0, 3)}).empty


def test_regions_targets_add_up_and_their_candidates_are_chosen_from_together(tmp_path):
    """A region's targets are the register's margins of its households (national bands): its strata's
    counts; regions' draws joined give one table, households renumbered after the earlier region's
    and persons 1..n; choosing from the joined candidates meets the national margins."""
    from synth_assets.calibration.regions import join_regions, region_rows, regional_targets
    from synth_assets.calibration.selection import candidate_shortage
    from synth_assets.common.frames import ParquetStack

    register = population(600, seed=2)
    national = register_targets(register, SPEC, "household_id")
    parts = {region: regional_targets(register, national, "household_id", "region", [region])
             for region in ("north", "south")}
    assert sum(t.persons for t in parts.values()) == national.persons
    assert sum(t.households for t in parts.values()) == national.households
    assert parts["north"].spec.bands["age"] == national.spec.bands["age"]
    # each region's candidates: enough in every stratum of its own, not of the other's
    drawn = {region: population(1_800, seed=seed, id_start=10_000) for region, seed in (("north", 5), ("south", 6))}
    drawn = {region: frame[frame["region"] == region] for region, frame in drawn.items()}
    assert candidate_shortage(drawn["north"], parts["north"], "household_id") is None
    assert candidate_shortage(drawn["north"], national, "household_id") is not None  # no southern household
    tables = []
    for region, frame in drawn.items():
        stack = ParquetStack(tmp_path)
        stack.append(frame.assign(person_id=np.arange(len(frame)), replicate=1))
        tables.append((region, stack.finish()))
    joined = join_regions(tables, "household_id", "person_id").read()
    assert joined["person_id"].tolist() == list(range(1, len(joined) + 1))
    assert (joined.groupby("household_id")["region"].nunique() == 1).all()  # no id shared by two regions
    assert joined["household_id"].nunique() == sum(frame["household_id"].nunique() for frame in drawn.values())
    north = joined["region"] == "north"
    assert set(joined.loc[north, "household_id"]) == set(drawn["north"]["household_id"])  # the first region's kept
    assert joined.loc[~north, "household_id"].min() > joined.loc[north, "household_id"].max()
    candidates = pd.concat(region_rows(tables, 1, "household_id"), ignore_index=True)
    result = select_households(candidates, national, "household_id", seed=0)
    assert result.within_tolerance


def test_a_regions_view_of_a_stored_table_holds_its_rows(tmp_path):
    """A region's rows read from the file (compared as text, as ``in_region``): those of the frame."""
    from synth_assets.calibration.regions import in_region, region_table
    from synth_assets.common.frames import ParquetTable, write_rows

    register = population(600, seed=2)
    register["code"] = register["household_id"] % 7  # a region variable stored as numbers
    write_rows(register, tmp_path / "register.parquet", row_group_rows=100)
    stored = ParquetTable(tmp_path / "register.parquet")
    for variable, values in (("region", ["north"]), ("code", ["3", "5"])):
        expected = register.loc[in_region(register, variable, values)].reset_index(drop=True)
        got = region_table(stored, variable, values).read()
        assert 0 < len(got) < len(register)
        pd.testing.assert_frame_equal(got, expected, check_categorical=False)
    assert region_table(stored.select(["age"]), "region", ["north"]).num_rows == len(register)  # no such column


def test_the_selection_names_its_phases_after_the_search():
    register = population(400, seed=3)
    candidates = population(1_500, seed=4, id_start=10_000)
    lines: list[str] = []
    result = select_households(candidates, register_targets(register, SPEC, "household_id"), "household_id",
                               progress=lines.append)
    chosen = next(i for i, line in enumerate(lines) if "households chosen" in line)
    assert f"{result.households:,} households chosen" in lines[chosen]
    assert "weighting" in lines[chosen + 1]


def test_raking_stops_at_newtons_floor_when_the_tolerance_is_beyond_it(monkeypatch):
    """A tolerance below what floating point reaches on a design (here 1e-18; on a 1.2-million-person
    replicate, 1e-9 against a floor of 4e-8): the steps stop once three in a row have not halved the
    worst residual, unconverged, where they ran to ``max_iterations`` (100 Hessians, 91 s there) for
    weights that no longer changed."""
    import synth_assets.calibration.weights as weights

    rng = np.random.default_rng(5)
    n = 4000
    columns = [np.eye(25)[rng.integers(0, 25, n)], np.eye(40)[rng.integers(0, 40, n)],
               rng.lognormal(8, 1.2, (n, 1))]
    design = np.hstack(columns)
    targets = np.exp(rng.normal(0, 0.05, n)) @ design
    stopped = rake(design, targets, tolerance=1e-18)
    assert not stopped.converged and stopped.iterations < 20, stopped
    assert stopped.max_relative_residual < weights.STALL_BELOW
    monkeypatch.setattr(weights, "STALL_ITERATIONS", 10**6)  # as before: on to max_iterations
    hundred = rake(design, targets, tolerance=1e-18)
    assert hundred.iterations == 100 and not hundred.converged
    np.testing.assert_allclose(stopped.weights, hundred.weights, rtol=1e-10)
    # a reachable tolerance: converged, the steps it always took
    assert rake(design, targets).converged


def test_bounded_raking_stops_where_its_steps_no_longer_move_the_weights(monkeypatch):
    """Bounds no weights meet (a scarce cell asking 1.8 times its units' number, each held below 1.5):
    the residual sits on a plateau far above a thousandth while the steps move no weight; the search
    ends a few steps after it gets there, with the weights the hundred steps would give, where it ran
    all hundred (on a 50,000-person replicate, 27 s of the 32 the weighting took)."""
    import synth_assets.calibration.weights as weights

    design, targets = scarce_cell_design()
    stopped = rake(design, targets, bounds=(0.5, 1.5))
    assert not stopped.converged and stopped.max_relative_residual > 1e-3
    assert stopped.iterations < 30, stopped
    monkeypatch.setattr(weights, "STALL_ITERATIONS", 10**6)  # as before: on to max_iterations
    hundred = rake(design, targets, bounds=(0.5, 1.5))
    assert hundred.iterations == 100
    np.testing.assert_allclose(stopped.weights, hundred.weights, atol=1e-5)
    assert stopped.max_relative_residual == pytest.approx(hundred.max_relative_residual, rel=1e-4)


def test_the_surplus_by_default_follows_the_registers_size(monkeypatch):
    """Without a surplus, a draw is the register's size's (3 times a small register's persons, 2 times
    from a million on); a surplus given wins."""
    from synth_assets.calibration import population as population_module

    assert population_module.default_surplus(50_000) == 3.0
    assert population_module.default_surplus(999_999) == 3.0
    assert population_module.default_surplus(1_000_000) == 2.0
    assert population_module.default_surplus(12_000_000) == 2.0
    register = population(600, seed=2)
    targets = register_targets(register, SPEC, "household_id")
    sizes: list[int] = []

    def draw(persons: int, seed: int) -> pd.DataFrame:
        sizes.append(persons)
        return population(max(persons // 3, 1), seed=seed % 1000, id_start=10_000)

    calibrated_population(draw, targets, "household_id", seed=0)
    assert sizes[0] == int(np.ceil(3.0 * targets.persons))
    # a register of this size treated as a large one: the large one's surplus
    monkeypatch.setattr(population_module, "SURPLUS_BY_REGISTER_PERSONS", ((0, 2.5),))
    sizes.clear()
    calibrated_population(draw, targets, "household_id", seed=0)
    assert sizes[0] == int(np.ceil(2.5 * targets.persons))
    sizes.clear()
    calibrated_population(draw, targets, "household_id", surplus=4.0, seed=0)
    assert sizes[0] == int(np.ceil(4.0 * targets.persons))
