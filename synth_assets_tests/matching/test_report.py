"""fusion_diagnostics and truth_comparison: distances to the donor, Fréchet bounds, truth tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from synth_assets.matching import frechet_bounds, fuse
from synth_assets.matching.report import DonorSpec, cross_source_pairs, fusion_diagnostics, truth_comparison
from synth_assets_tests.matching.data import X, population, survey_pair


@pytest.fixture(scope="module")
def chain():
    """Register (X, income) fused with a status survey, then with a second survey holding 'sector'."""
    recipient, donor, truth = survey_pair(3000, 1500, seed=11)
    first = fuse(recipient, donor, on=X, impute=["status", "hours"], donor_weight="weight", recipient_weight="weight")
    second_donor = population(1200, seed=99)
    second_donor["sector"] = np.where(second_donor["status"] == "work", "private", "none")
    second_donor = second_donor.drop(columns=["income", "hours", "annual_hours"])
    second = fuse(first.data, second_donor, on=X + ["status"], impute=["sector"], donor_weight="weight",
                  recipient_weight="weight")
    donors = {
        "labour": DonorSpec(donor, "weight", X, ["status", "hours"]),
        "sectors": (second_donor, "weight", X + ["status"], ["sector"]),
    }
    return recipient, second.data, donors, first, truth


def test_distances_to_the_donor_are_those_of_fuse(chain) -> None:
    recipient, matched, donors, first, _ = chain
    report = fusion_diagnostics(recipient, matched, donors, recipient_weight="weight", pairs={})
    labour = report["labour"]
    assert labour.rows == len(recipient) and labour.donors == len(donors["labour"].frame)
    for z in ("status", "hours"):
        assert labour.marginal[z] == pytest.approx(first.diagnostics.marginal[z])
    assert labour.mean_x_by_z_tvd == pytest.approx(first.diagnostics.mean_x_by_z_tvd)
    assert set(report["sectors"].marginal) == {"sector"}
    json.dumps(report.to_dict())  # JSON-ready for asset metadata


def test_bounds_cia_and_matched_shares(chain) -> None:
    recipient, matched, donors, _, truth = chain
    report = fusion_diagnostics(
        recipient, matched, donors, recipient_weight="weight",
        pairs={"labour": [("income", "status")], "sectors": [("hours", "sector")]},
        x_cells=["age", "sex"], truth=truth.assign(sector=np.where(truth["status"] == "work", "private", "none")),
    )
    bounds = report["labour"].pairs[0]
    cells = bounds.cells
    assert bounds.y_source == "register" and bounds.x_cells == ["age", "sex"]
    assert list(cells.columns) == ["low_u", "up_u", "cia", "low_cx", "up_cx", "matched", "within", "truth"]
    tol = 1e-12
    assert (cells.low_u <= cells.low_cx + tol).all() and (cells.up_cx <= cells.up_u + tol).all()
    assert ((cells.low_cx <= cells.cia + tol) & (cells.cia <= cells.up_cx + tol)).all()
    assert cells.cia.sum() == pytest.approx(1.0) and cells.matched.sum() == pytest.approx(1.0)
    assert cells.truth.sum() == pytest.approx(1.0)
    # A distance hot deck reproduces the CIA: its shares lie within the bounds, close to the CIA estimate.
    assert cells.within.all()
    assert np.abs(cells.matched - cells.cia).max() < 0.03
    assert bounds.width_conditional < bounds.width_unconditional
    # Y from the survey fused before.
    assert report["sectors"].pairs[0].y_source == "labour"
    # Every reported cell of income x status: 5 income quintiles x 3 status levels.
    assert len(cells) == 15


def test_bounds_by_hand_and_a_matched_share_outside() -> None:
    """The two-cell example of test_frechet_bounds_by_hand, as files."""

    def rows(x: str, v: str, n: int, name: str) -> pd.DataFrame:
        return pd.DataFrame({"x": [x] * n, name: [v] * n})

    base = pd.concat([rows("young", "low", 30, "y"), rows("young", "high", 10, "y"),
                      rows("old", "low", 10, "y"), rows("old", "high", 50, "y")], ignore_index=True)
    donor = pd.concat([rows("young", "work", 40, "z"), rows("young", "rest", 20, "z"),
                       rows("old", "work", 10, "z"), rows("old", "rest", 30, "z")], ignore_index=True)
    # A matched file that gives work to every 'low' person (all the young ones among them, and the old).
    matched = base.assign(z=np.where(base["y"] == "low", "work", "rest"))
    report = fusion_diagnostics(
        base, matched, {"s": DonorSpec(donor, None, ["x"], ["z"])}, pairs={"s": [("y", "z")]}, x_cells=["x"],
        min_donors_per_cell=1,
    )
    cells = report["s"].pairs[0].cells
    x_y = pd.DataFrame({"low": [30.0, 10.0], "high": [10.0, 50.0]}, index=["young", "old"])
    x_z = pd.DataFrame({"work": [40.0, 10.0], "rest": [20.0, 30.0]}, index=["young", "old"])
    expected = frechet_bounds(x_y, x_z, x_table=pd.Series([40.0, 60.0], index=["young", "old"]))
    row = cells.loc[("low", "work")]
    assert row.low_cx == pytest.approx(expected.loc[("low", "work"), "low_cx"])
    assert row.up_cx == pytest.approx(expected.loc[("low", "work"), "up_cx"])
    assert row.cia == pytest.approx(expected.loc[("low", "work"), "cia"])
    assert row.matched == pytest.approx(0.4)
    # P(low, work) can be at most 0.4 * min(.75, 2/3) + 0.6 * min(1/6, .25) = 0.3667 < 0.4.
    assert not row.within
    assert "**no**" in report.to_markdown()


def test_default_pairs_skip_ids_and_report_renders(chain) -> None:
    recipient, matched, donors, _, _ = chain
    with_id = recipient.assign(person_id=np.arange(len(recipient)))
    report = fusion_diagnostics(with_id, matched.assign(person_id=np.arange(len(recipient))), donors,
                                recipient_weight="weight", max_pairs=2)
    for survey in report.surveys:
        assert len(survey.pairs) == 2
        assert all(p.y != "person_id" and p.y != "weight" for p in survey.pairs)
    assert {p.y for p in report["labour"].pairs} == {"income"}
    assert report["sectors"].pairs[0].y in {"income", "status", "hours"}
    text = report.to_markdown()
    assert "### labour" in text and "### sectors" in text and "mean width given X" in text
    png = report.plot_png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_diagnostics_input_errors(chain) -> None:
    recipient, matched, donors, _, _ = chain
    with pytest.raises(ValueError, match="base_before has 10 rows but matched has 3000"):
        fusion_diagnostics(recipient.iloc[:10], matched, donors)
    with pytest.raises(ValueError, match="neither a register variable nor imputed before it"):
        fusion_diagnostics(recipient, matched, donors, pairs={"labour": [("sector", "status")]})
    with pytest.raises(ValueError, match="'sector' is not one of its imputed variables"):
        fusion_diagnostics(recipient, matched, donors, pairs={"labour": [("income", "sector")]})
    with pytest.raises(ValueError, match="donor 'labour' has no column 'sector'"):
        fusion_diagnostics(recipient, matched, {"labour": (donors["labour"].frame, "weight", X, ["sector"])})


def test_truth_comparison() -> None:
    rng = np.random.default_rng(0)
    truth = population(4000, seed=5).assign(pid=np.arange(4000))
    assert truth_comparison(truth, truth, [("income", "status")])["tvd"].iloc[0] == 0.0
    shuffled = truth.assign(status=rng.permutation(truth["status"].to_numpy()))
    table = truth_comparison(shuffled, truth, [("income", "status"), ("age", "hours")])
    assert table.loc[0, "tvd"] > 0.1 and table.loc[0, "cramers_v_matched"] < 0.1 < table.loc[0, "cramers_v_truth"]
    # Alignment by key: the truth in another order gives the same answer.
    by_key = truth_comparison(shuffled, truth.sample(frac=1.0, random_state=1), [("income", "status")], key="pid")
    assert by_key.loc[0, "tvd"] == pytest.approx(table.loc[0, "tvd"])
    # Rows outside a survey's universe (missing in the matched file) are left out.
    partial = shuffled.assign(status=shuffled["status"].where(shuffled["age"] < 60))
    assert truth_comparison(partial, truth, [("income", "status")]).loc[0, "rows"] == (truth["age"] < 60).sum()
    groups = {"register": ["income"], "a": ["status", "hours"], "b": ["annual_hours"]}
    assert [p[:2] for p in cross_source_pairs(groups)] == [
        ("income", "status"), ("income", "hours"), ("income", "annual_hours"),
        ("status", "annual_hours"), ("hours", "annual_hours"),
    ]
    every = truth_comparison(truth, truth, groups=groups)
    assert len(every) == 5 and (every["tvd"] == 0).all() and every.loc[0, "sources"] == "register × a"
    with pytest.raises(ValueError, match="either pairs or groups"):
        truth_comparison(truth, truth)
    with pytest.raises(ValueError, match="give key="):
        truth_comparison(truth.iloc[:10], truth, [("income", "status")])


def test_demo_population_end_to_end(tmp_path) -> None:
    """Every catalog survey fused by neural_draw through the pipeline's fuse_sources, then reported."""
    from pathlib import Path

    from synth_assets.catalog import load_catalog
    from synth_assets.demo import generate_demo
    from synth_assets.matching.sources import fuse_sources

    generate_demo(tmp_path, persons=4000, waves=(2026,), seed=3)
    catalog = load_catalog(Path(__file__).resolve().parents[2] / "data" / "catalog.yaml")
    truth = pd.read_parquet(tmp_path / "truth" / "population_2026.parquet")
    register = truth[list(catalog.register.variables)]
    donors = {}
    for name, source in catalog.surveys.items():
        links = pd.read_parquet(tmp_path / "truth" / "samples" / f"{name}_2026.parquet")
        frame = truth.iloc[links["person_id"].to_numpy() - 1][["household_id", *source.common, *source.specific]]
        donors[name] = ("2026", frame.assign(**{source.weight_column: links["weight"].to_numpy()}))
    matched, fusions = fuse_sources(catalog, register, donors, methods={n: "neural_draw" for n in donors}, seed=0)
    specs = {
        f.survey: DonorSpec(donors[f.survey][1], catalog.sources[f.survey].weight_column, f.on, f.imputed,
                            catalog.sources[f.survey].universe)
        for f in fusions
    }
    report = fusion_diagnostics(register, matched, specs, register_y=catalog.register.specific, truth=truth)
    assert [s.survey for s in report.surveys] == list(catalog.surveys)
    assert all(len(s.pairs) == 3 for s in report.surveys)
    lfs = report["lfs"]
    assert lfs.rows == truth.eval(catalog.sources["lfs"].universe).sum()
    groups = {"register": catalog.register.specific, **{n: s.specific for n, s in catalog.surveys.items()}}
    table = truth_comparison(matched, truth, groups=groups)
    assert len(table) == len(cross_source_pairs(groups))
    assert table["tvd"].between(0, 1).all() and table["tvd"].mean() < 0.3
